package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
)

// sipScenarios are the call-flow scenarios written with their SIP
// signalling: every scenario of the playout issue, and those that only
// exist with SIP. The SRTP scenario is left out: its media cannot be
// played before SRTP decryption exists.
func sipScenarios() []string {
	names := append(gen.ScenarioNames(), gen.SIPScenarioNames()...)
	return slices.DeleteFunc(names, func(n string) bool { return strings.Contains(n, "srtp") })
}

// sipScenarioCapture writes the named scenario with its SIP signalling.
func sipScenarioCapture(t *testing.T, name string) (string, *gen.Manifest) {
	t.Helper()
	spec, err := gen.ScenarioWithSIP(name, 1)
	if err != nil {
		t.Skipf("skipping: %v", err)
	}
	path := filepath.Join(t.TempDir(), name+".pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := spec.Write(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, spec.Manifest
}

// TestSIPScenariosListenOffline: smctl render --agent ID, with no
// endpoint, finds each monitored agent's calls from the SIP and SDP in
// the capture and renders exactly that agent's audio: the listening test
// of the playout issue, on every scenario written with SIP.
func TestSIPScenariosListenOffline(t *testing.T) {
	for _, name := range sipScenarios() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pcap, m := sipScenarioCapture(t, name)
			for _, mon := range m.Monitored {
				out := filepath.Join(t.TempDir(), mon.Agent+".wav")
				_, se, code := runCmd(t, nil, "smctl", "render", pcap, "--out", out, "--agent", mon.Agent)
				if code != 0 {
					t.Fatalf("smctl render --agent %s exited %d: %s", mon.Agent, code, se)
				}
				listenTo(t, "offline by agent", m, mon.Agent, readWAV(t, out))
			}
		})
	}
}

// TestSIPScenariosListenLive replays every SIP scenario through smserver
// and monitors each agent with smctl monitor start --agent ID --wait
// alone: the capture server follows the SIP on its SPAN and streams the
// media the SDP names, which the supervisor writes to the agent's WAV.
func TestSIPScenariosListenLive(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: the live scenarios replay about 13 s each in real time")
	}
	sec := quickstart(t)
	for _, name := range sipScenarios() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pcap, m := sipScenarioCapture(t, name)
			dir := t.TempDir()
			r := startReplay(t, sec, pcap, "wav:"+filepath.Join(dir, "{agent}.wav"))
			for _, mon := range m.Monitored {
				_, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", r.srvAddr, "--security-dir", r.sec,
					"--agent", mon.Agent, "--wait", "--supervisor", r.supAddr)
				if code != 0 {
					t.Fatalf("smctl monitor start --agent %s --wait exited %d: %s", mon.Agent, code, se)
				}
			}
			r.srv.wait(t, 60*time.Second)
			time.Sleep(time.Second)
			disturbed := r.disturbances(t)
			r.sup.stop(t, syscall.SIGTERM)
			for _, mon := range m.Monitored {
				pcm := readWAV(t, filepath.Join(dir, mon.Agent+".wav"))
				res := gen.CheckListening(m, mon.Agent, pcm)
				t.Logf("live by agent %s agent %s: %d/%d windows right (%.2f s of audio, offset %v)",
					m.Scenario, mon.Agent, res.Right, res.Windows, float64(len(pcm))/8000, res.Offset)
				if wrong := res.Windows - res.Right; res.Windows == 0 || wrong > min(2*disturbed[mon.Agent], 3) {
					t.Errorf("live by agent: %s (the supervisor counted %d late packets, slips or stretches)", res.String(), disturbed[mon.Agent])
				}
			}
		})
	}
}
