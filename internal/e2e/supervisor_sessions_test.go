package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// TestTwoSessionsTwoFiles: agents 1001 and 1002 monitored to one
// smsupervisor with --output wav:DIR/{agent}-{session}.wav, from one
// generated capture where a third agent also talks: two files, named
// after their agent and session, each equal to the G.711 decode of its
// agent's RTP and holding no other agent's tone.
func TestTwoSessionsTwoFiles(t *testing.T) {
	sec := quickstart(t)
	// Calls start 1 s apart so that the second session is in place before
	// agent 1002's call begins; the far side of each monitored call is
	// silent, so each file is exactly its agent's stream.
	calls, err := gen.Build(gen.BuildConfig{Calls: 3, VLAN: 85, Priority: 5, Duration: 3 * time.Second,
		Spread: 3 * time.Second, AgentTone: 1000, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	calls[1].ToAgent.ToneHz = 0
	pcap, res := writeCalls(t, calls, 11)

	dir := t.TempDir()
	r := startReplay(t, sec, pcap, "wav:"+filepath.Join(dir, "{agent}-{session}.wav"),
		"--min-delay-ms", "300", "--max-delay-ms", "600")
	sessions := map[string]string{} // agent → session
	for _, a := range []struct{ agent, ep string }{{"1001", "10.10.0.1"}, {"1002", "10.10.0.2"}} {
		sessions[a.agent] = r.monitor(t, a.agent, a.ep)
	}
	r.srv.wait(t, 30*time.Second)
	time.Sleep(800 * time.Millisecond)

	// The supervisor's status: two open sessions with their agents, files
	// and streams.
	var st struct {
		Sessions []struct {
			ID       string   `json:"id"`
			Agent    string   `json:"agent"`
			State    string   `json:"state"`
			Output   string   `json:"output"`
			Servers  []string `json:"capture_servers"`
			WorstMOS float64  `json:"worst_mos"`
			Streams  []struct {
				Src   string `json:"src"`
				Codec string `json:"codec"`
				Lost  int    `json:"lost"`
			} `json:"streams"`
		} `json:"sessions"`
	}
	if so := r.supervisorStatus(t, &st); len(st.Sessions) != 2 {
		t.Fatalf("supervisor status %s: want 2 sessions", so)
	}
	for _, s := range st.Sessions {
		want := filepath.Join(dir, s.Agent+"-"+sessions[s.Agent]+".wav")
		if s.ID != sessions[s.Agent] || s.State != "open" || s.Output != want || len(s.Servers) != 1 || len(s.Streams) != 2 || s.WorstMOS < 3.4 {
			t.Errorf("session status %+v; want agent's session %s writing %s", s, sessions[s.Agent], want)
		}
	}
	if so, se, code := runCmd(t, nil, "smctl", "status", "--server", r.supAddr, "--security-dir", sec); code != 0 || !strings.Contains(so, "agent 1002") {
		t.Errorf("smctl status exited %d: %s%s", code, so, se)
	}
	r.sup.stop(t, syscall.SIGTERM)
	out := r.sup.stdout.String()
	if !strings.Contains(out, "smsupervisor: received ") || !strings.Contains(out, "session "+sessions["1002"]+" (agent 1002)") {
		t.Errorf("summary %q", out)
	}

	tones := map[string]float64{}
	for i := range calls {
		tones[calls[i].AgentID] = calls[i].FromAgent.ToneHz
	}
	for _, agent := range []string{"1001", "1002"} {
		path := filepath.Join(dir, agent+"-"+sessions[agent]+".wav")
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", path, fi.Mode().Perm())
		}
		want := sentPCM(t, res, agent)
		got := readWAV(t, path)
		off := checkAgentWAV(t, "agent "+agent, got, want)
		for other, hz := range tones {
			if other == agent {
				continue
			}
			if l, own := audiotest.ToneLevel(got, hz), audiotest.ToneLevel(got, tones[agent]); l*100 > own {
				t.Errorf("agent %s's file holds agent %s's %g Hz tone (level %.3g against %.3g)", agent, other, hz, l, own)
			}
		}
		t.Logf("agent %s: %s, %d samples, the agent's %d at %d", agent, filepath.Base(path), len(got), len(want), off)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 2 {
		t.Fatalf("files %v, want 2", files)
	}
}
