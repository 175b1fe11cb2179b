package e2e

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
)

// scenarioCapture writes the named call-flow scenario's capture and returns
// its path and manifest; it skips when the scenario needs a codec this
// build lacks.
func scenarioCapture(t *testing.T, name string) (string, *gen.Manifest) {
	return writeScenario(t, name, gen.Scenario)
}

// writeScenario writes the scenario build returns for name.
func writeScenario(t *testing.T, name string, build func(string, uint64) (*gen.ScenarioSpec, error)) (string, *gen.Manifest) {
	t.Helper()
	spec, err := build(name, 1)
	if errors.Is(err, gen.ErrCodecUnavailable) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".pcap")
	if _, err := spec.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path, spec.Manifest
}

// listenTo checks pcm against the manifest for agent and reports the
// result the way the closing notes quote it.
func listenTo(t *testing.T, how string, m *gen.Manifest, agent string, pcm []int16) {
	t.Helper()
	res := gen.CheckListening(m, agent, pcm)
	t.Logf("%s %s agent %s: %d/%d windows right (%.2f s of audio, offset %v)",
		how, m.Scenario, agent, res.Right, res.Windows, float64(len(pcm))/8000, res.Offset)
	if !res.OK() {
		t.Errorf("%s: %s", how, res.String())
	}
}

// listenLive is listenTo for a live session: it allows the few windows
// around the events the supervisor itself counted (late packets, slips
// and stretches: disturbed), at most two windows per event and three in
// all, as a loaded machine may stall the relay; any other wrong window
// fails.
func listenLive(t *testing.T, how string, m *gen.Manifest, agent string, pcm []int16, disturbed int) {
	t.Helper()
	res := gen.CheckListening(m, agent, pcm)
	t.Logf("%s %s agent %s: %d/%d windows right (%.2f s of audio, offset %v)",
		how, m.Scenario, agent, res.Right, res.Windows, float64(len(pcm))/8000, res.Offset)
	if wrong := res.Windows - res.Right; res.Windows == 0 || wrong > min(2*disturbed, 3) {
		t.Errorf("%s: %s (the supervisor counted %d late packets, slips or stretches)", how, res.String(), disturbed)
	}
}

// TestScenariosListenOffline renders every call-flow scenario with smctl
// render, once per monitored agent with the agent's endpoints, and listens
// to the result: every leg the manifest says is active is heard, held legs
// are silent, and no other agent's or unrelated call's tone is there.
func TestScenariosListenOffline(t *testing.T) {
	for _, name := range gen.ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pcap, m := scenarioCapture(t, name)
			for _, mon := range m.Monitored {
				out := filepath.Join(t.TempDir(), mon.Agent+".wav")
				args := []string{"render", pcap, "--out", out}
				for _, e := range mon.Endpoints {
					args = append(args, "--endpoint", e)
				}
				so, se, code := runCmd(t, nil, "smctl", args...)
				if code != 0 {
					t.Fatalf("smctl %s exited %d: %s", strings.Join(args, " "), code, se)
				}
				listenTo(t, "offline", m, mon.Agent, readWAV(t, out))
				checkLoss(t, m, mon.Agent, so)
			}
		})
	}
}

// streamLine is smctl render's line for one stream.
var streamLine = regexp.MustCompile(`ssrc (0x[0-9a-f]+) \S+ \S+: (\d+) packets, (\d+) lost, (\d+) late`)

// checkLoss compares the packets and the loss smctl render reports per
// stream with what the generator did to each of the agent's legs: the
// packets it wrote (duplicates included) and the sequence numbers it
// dropped, so a reordered packet that arrived counts as received.
func checkLoss(t *testing.T, m *gen.Manifest, agent, stdout string) {
	t.Helper()
	type fig struct{ packets, lost, late int }
	got := map[string]fig{}
	for _, l := range streamLine.FindAllStringSubmatch(stdout, -1) {
		var f fig
		fmt.Sscan(l[2], &f.packets)
		fmt.Sscan(l[3], &f.lost)
		fmt.Sscan(l[4], &f.late)
		got[l[1]] = f
	}
	for _, leg := range m.Legs {
		want, ok := m.Expected[leg.Name]
		if leg.Agent != agent || !leg.Monitored || !ok {
			continue
		}
		g, ok := got[strings.ToLower(leg.SSRC)]
		if !ok {
			t.Errorf("leg %s (ssrc %s) has no stream in smctl render's report:\n%s", leg.Name, leg.SSRC, stdout)
			continue
		}
		if g.packets != want.Packets || g.lost != want.Lost {
			t.Errorf("leg %s: render reports %d packets, %d lost (%d late); the generator wrote %d, dropped %d (%d reordered, %d duplicated)",
				leg.Name, g.packets, g.lost, g.late, want.Packets, want.Lost, want.Reordered, want.Duplicates)
		}
	}
}

// TestScenariosListenLive replays every call-flow scenario through smserver
// at its recorded pace, monitors each of its agents to one smsupervisor
// over mutual TLS with the default jitter buffer, and listens to each
// session's own WAV file.
func TestScenariosListenLive(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: the live scenarios replay about 13 s each in real time")
	}
	sec := quickstart(t)
	for _, name := range gen.ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pcap, m := scenarioCapture(t, name)
			dir := t.TempDir()
			r := startReplay(t, sec, pcap, "wav:"+filepath.Join(dir, "{agent}.wav"))
			for _, mon := range m.Monitored {
				r.monitor(t, mon.Agent, mon.Endpoints...)
			}
			r.srv.wait(t, 60*time.Second)
			time.Sleep(time.Second) // the supervisor plays out its buffers
			disturbed := r.disturbances(t)
			r.sup.stop(t, syscall.SIGTERM)
			for _, mon := range m.Monitored {
				pcm := readWAV(t, filepath.Join(dir, mon.Agent+".wav"))
				res := gen.CheckListening(m, mon.Agent, pcm)
				t.Logf("live %s agent %s: %d/%d windows right (%.2f s of audio, offset %v)",
					m.Scenario, mon.Agent, res.Right, res.Windows, float64(len(pcm))/8000, res.Offset)
				// A machine that stalled the replay or the relay makes
				// packets late or moves the delay; the supervisor counts
				// each such event, and each may cost the windows around
				// it (at most two, at most three in all). Anything else
				// is a playout error.
				allowed := min(2*disturbed[mon.Agent], 3)
				if wrong := res.Windows - res.Right; res.Windows == 0 || wrong > allowed {
					t.Errorf("live: %s (the supervisor counted %d late packets, slips or stretches)", res.String(), disturbed[mon.Agent])
				} else if wrong > 0 {
					t.Logf("live: %d windows wrong after %d late packets, slips or stretches the supervisor counted: %s",
						wrong, disturbed[mon.Agent], res.String())
				}
			}
		})
	}
}

// disturbances returns, per agent, the late packets, slips and stretches
// the supervisor counted in the agent's open session: the events by which
// a stalled machine, not the call, changes what is heard.
func (r *replay) disturbances(t *testing.T) map[string]int {
	t.Helper()
	var st struct {
		Sessions []struct {
			Agent   string
			Streams []struct{ Late, Slips, Stretches int }
		}
	}
	r.supervisorStatus(t, &st)
	n := map[string]int{}
	for _, s := range st.Sessions {
		for _, x := range s.Streams {
			n[s.Agent] += x.Late + x.Slips + x.Stretches
		}
	}
	return n
}

// TestCleanLiveCallPhaseContinuous monitors a clean 20 s call live with the
// default jitter buffer (40 ms) and compares the supervisor's WAV with
// smctl render's offline decode of the same capture, sample by sample: a
// call where nothing is lost or late is played without a slip, a stretch
// or concealment, so without a click or a phase jump, from start to end.
// If the machine stalled the relay long enough to make a packet late, the
// test says so and checks only that the status counted it.
func TestCleanLiveCallPhaseContinuous(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: replays 20 s in real time")
	}
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 4, 20*time.Second)
	dir := t.TempDir()
	ref := filepath.Join(dir, "offline.wav")
	if _, se, code := runCmd(t, nil, "smctl", "render", pcap, "--out", ref, "--endpoint", "10.10.0.1"); code != 0 {
		t.Fatalf("smctl render exited %d: %s", code, se)
	}
	live := filepath.Join(dir, "live.wav")
	r := startReplay(t, sec, pcap, "wav:"+live)
	r.monitor(t, "1001", "10.10.0.1")
	r.srv.wait(t, 60*time.Second)
	time.Sleep(500 * time.Millisecond)
	var st struct {
		Streams []struct {
			Direction                               string
			Lost, Late, Concealed, Slips, Stretches uint64
			TargetMs                                float64 `json:"target_ms"`
		} `json:"streams"`
	}
	r.supervisorStatus(t, &st)
	r.sup.stop(t, syscall.SIGTERM)
	var late, concealed uint64
	for _, x := range st.Streams {
		late += x.Late + x.Lost
		// A stream's end looks like a loss until 60 ms pass: up to
		// three 20 ms frames of its tail are concealed (written only
		// while the other side still plays).
		concealed += max(x.Concealed, 3) - 3 + x.Slips + x.Stretches
		if x.TargetMs > 60 {
			t.Logf("stream %s played with %.1f ms of delay", x.Direction, x.TargetMs)
		}
	}
	got, want := readWAV(t, live), readWAV(t, ref)
	d := -1
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			d = i
			break
		}
	}
	t.Logf("live %d samples, offline %d; first difference at %d; late or lost %d, concealed (besides the tails), slipped or stretched %d",
		len(got), len(want), d, late, concealed)
	if late > 0 {
		if concealed == 0 && d >= 0 {
			t.Errorf("the live output differs from the offline decode at %.3f s but no concealment was counted", float64(d)/8000)
		}
		t.Logf("the relay delivered %d packets late on this machine; the output was concealed there", late)
		return
	}
	if d >= 0 || concealed != 0 {
		t.Errorf("no packet was late or lost, yet the live output differs from the offline decode at sample %d (%.3f s) with %d frames concealed, slipped or stretched",
			d, float64(d)/8000, concealed)
	}
	if n := len(want) - len(got); n > 80*8 || n < -80*8 {
		t.Errorf("live output %d samples, offline %d", len(got), len(want))
	}
}
