package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
)

// sipScenarios are the call-flow scenarios written with their SIP
// signalling: every scenario of the playout issue, and those that only
// exist with SIP (SDES-SRTP included: the SDP's keys decrypt it).
func sipScenarios() []string {
	return append(gen.ScenarioNames(), gen.SIPScenarioNames()...)
}

// sipScenarioCapture writes the named scenario with its SIP signalling.
func sipScenarioCapture(t *testing.T, name string) (string, *gen.Manifest) {
	return writeScenario(t, name, gen.ScenarioWithSIP)
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
				listenLive(t, "live by agent", m, mon.Agent, readWAV(t, filepath.Join(dir, mon.Agent+".wav")), disturbed[mon.Agent])
			}
		})
	}
}

// TestMonitorByDirectory: with an agent directory, smctl monitor start
// --agent 1001 alone is enough: the capture server takes the agent's
// phone from the directory, and the WAV is exactly the decode of agent
// 1001's RTP. An agent neither the directory nor the SIP knows is refused
// with a sentence saying what is missing.
func TestMonitorByDirectory(t *testing.T) {
	sec := quickstart(t)
	pcap, res := writeCapture(t, 5, 3*time.Second)
	dir := t.TempDir()
	agents := filepath.Join(dir, "agents.yaml")
	if err := os.WriteFile(agents, []byte(`agents:
  - {id: "1001", name: "Alice Martin", team: Billing, extensions: ["5001"], phone_ip: 10.10.0.1}
  - {id: "1002", name: "Bob Chen", team: Billing, phone_ip: 10.10.0.2}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	wav := filepath.Join(dir, "out.wav")
	supAddr, srvAddr := freeAddr(t), freeAddr(t)
	sup := start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "wav:"+wav,
		"--metrics-listen", freeAddr(t), "--min-delay-ms", "300", "--max-delay-ms", "600")
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--exit-after-replay", "--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t), "--directory", agents)
	waitReady(t, sec, srvAddr)
	_, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", sec,
		"--agent", "9999", "--supervisor", supAddr)
	if code != 1 || !strings.Contains(se, "nothing is known about agent 9999") {
		t.Errorf("unknown agent: exit %d, %s", code, se)
	}
	if _, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", sec,
		"--agent", "1001", "--supervisor", supAddr); code != 0 {
		t.Fatalf("smctl monitor start --agent 1001 exited %d: %s", code, se)
	}
	srv.wait(t, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	sup.stop(t, syscall.SIGTERM)
	checkAgentWAV(t, "agent 1001 from the directory", readWAV(t, wav), sentPCM(t, res, "1001"))
}

// TestMonitorByNameAndExtension: the directory maps agent "alice" to
// extension 1001; in a consult-and-retrieve call flow with SIP, one
// session started with --agent alice and one with --extension 1001 alone
// (a session for alice, accepted without --wait since the directory
// knows the extension) both hear exactly extension 1001's calls, consult
// and retrieve included.
func TestMonitorByNameAndExtension(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: replays 12 s in real time")
	}
	sec := quickstart(t)
	pcap, m := sipScenarioCapture(t, "consult-retrieve")
	dir := t.TempDir()
	agents := filepath.Join(dir, "agents.csv")
	if err := os.WriteFile(agents, []byte("id,name,team,extensions\nalice,Alice Martin,Billing,1001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	supAddr, srvAddr := freeAddr(t), freeAddr(t)
	sup := start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "wav:"+filepath.Join(dir, "{agent}.wav"),
		"--metrics-listen", freeAddr(t))
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--exit-after-replay", "--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t), "--directory", agents)
	waitReady(t, sec, srvAddr)
	// --extension 1001 alone needs no --wait: the directory knows the
	// extension, and the session is alice's.
	for _, how := range [][]string{{"--agent", "alice"}, {"--extension", "1001"}} {
		args := append([]string{"monitor", "start", "--server", srvAddr, "--security-dir", sec, "--supervisor", supAddr, "--json"}, how...)
		so, se, code := runCmd(t, nil, "smctl", args...)
		if code != 0 {
			t.Fatalf("smctl %s exited %d: %s", strings.Join(args, " "), code, se)
		}
		var st struct{ Agent string }
		if err := json.Unmarshal([]byte(so), &st); err != nil || st.Agent != "alice" {
			t.Fatalf("smctl %s: agent %q (%v), want alice\n%s", strings.Join(args, " "), st.Agent, err, so)
		}
	}
	// smctl agents shows alice from the directory, in a call the SIP
	// found, monitored by both sessions.
	var found string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && found == "" {
		so, se, code := runCmd(t, nil, "smctl", "agents", "--server", srvAddr, "--security-dir", sec, "--json")
		if code != 0 {
			t.Fatalf("smctl agents exited %d: %s", code, se)
		}
		var list struct {
			Agents []struct {
				ID, Name, Team, State string
				Extensions            []string
				Calls                 []struct{ Local []string }
				Monitored             []string `json:"monitored_by_sessions"`
			}
		}
		if err := json.Unmarshal([]byte(so), &list); err != nil {
			t.Fatalf("smctl agents --json: %v\n%s", err, so)
		}
		for _, a := range list.Agents {
			if a.ID == "alice" && a.Name == "Alice Martin" && a.Team == "Billing" && len(a.Monitored) == 2 &&
				(a.State == "talking" || a.State == "held") && len(a.Calls) > 0 && len(a.Calls[0].Local) > 0 {
				found = so
			}
		}
		if found == "" {
			time.Sleep(300 * time.Millisecond)
		}
	}
	if found == "" {
		t.Errorf("smctl agents never showed alice in a call, monitored by both sessions")
	}
	if so, _, code := runCmd(t, nil, "smctl", "agents", "--server", srvAddr, "--security-dir", sec); code != 0 || !strings.Contains(so, "alice") {
		t.Errorf("smctl agents table: exit %d\n%s", code, so)
	} else {
		t.Logf("smctl agents:\n%s", so)
	}
	srv.wait(t, 60*time.Second)
	time.Sleep(time.Second)
	sup.stop(t, syscall.SIGTERM)
	// Both sessions are alice's: the supervisor writes the second one
	// after the first with a number.
	for _, name := range []string{"alice", "alice-1"} {
		listenTo(t, "live, session "+name, m, "1001", readWAV(t, filepath.Join(dir, name+".wav")))
	}
}
