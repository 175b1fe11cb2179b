package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/relay"
)

// agentsOf runs smctl agents --json at server and returns the agents by
// id, with their devices as "ADDRESS (LEARNED)".
func agentsOf(t *testing.T, sec, server string) map[string][]string {
	t.Helper()
	so, se, code := runCmd(t, nil, "smctl", "agents", "--server", server, "--security-dir", sec, "--json", "--timeout", "3s")
	if code != 0 {
		t.Logf("smctl agents --server %s exited %d: %s", server, code, se)
		return nil
	}
	var list struct {
		Agents []relay.AgentStatus `json:"agents"`
	}
	if err := json.Unmarshal([]byte(so), &list); err != nil {
		t.Fatalf("smctl agents --json: %v\n%s", err, so)
	}
	out := map[string][]string{}
	for _, a := range list.Agents {
		devs := []string{}
		for _, d := range a.Devices {
			devs = append(devs, d.Address+" ("+d.Learned+")")
		}
		out[a.ID] = devs
	}
	return out
}

// waitAgents polls smctl agents at server until ok accepts the list.
func waitAgents(t *testing.T, sec, server, what string, ok func(map[string][]string) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last map[string][]string
	for time.Now().Before(deadline) {
		if last = agentsOf(t, sec, server); last != nil && ok(last) {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("smctl agents --server %s never showed %s; last: %v", server, what, last)
}

// TestDirectorySharedInCluster: in a two-member cluster where only
// member A is given the directory file, smctl agents at member B lists
// every agent of it, with the directory's devices; once A has stopped, B
// still lists them.
func TestDirectorySharedInCluster(t *testing.T) {
	sec := quickstart(t)
	dir := t.TempDir()
	agents := filepath.Join(dir, "agents.yaml")
	if err := os.WriteFile(agents, []byte(`agents:
  - {id: "1001", name: "Alice Martin", team: Billing, extensions: ["5001"], phone_ip: 10.10.0.1}
  - {id: "1002", name: "Bob Chen", team: Billing, phone_ip: 10.10.0.2}
  - {id: "1003", name: "Chloe Durand", team: Sales, extensions: ["5003"]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pcap := filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap")
	aAddr, bAddr, aPeer, bPeer := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	a := start(t, "smserver", "--name", "sm-a", "--cluster-listen", aPeer, "--peer", bPeer, "--pcap", pcap,
		"--listen", aAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t), "--directory", agents)
	start(t, "smserver", "--name", "sm-b", "--cluster-listen", bPeer, "--peer", aPeer, "--pcap", pcap,
		"--listen", bAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, aAddr)
	waitReady(t, sec, bAddr)
	every := func(l map[string][]string) bool {
		return len(l) == 3 && slices.Contains(l["1001"], "10.10.0.1 (directory)") && slices.Contains(l["1002"], "10.10.0.2 (directory)") &&
			l["1003"] != nil
	}
	waitAgents(t, sec, bAddr, "the three agents of member A's directory", every)
	a.stop(t, syscall.SIGTERM)
	time.Sleep(time.Second)
	if l := agentsOf(t, sec, bAddr); !every(l) {
		t.Fatalf("after member A stopped, member B lists %v, want the three agents of A's directory", l)
	}
}

// TestCTIBindInCluster: smctl agents bind, with a certificate of the cti
// role, sent to member A binds agent 1001 to its phone; smctl monitor
// start --agent 1001 alone at member B (no endpoint, no SIP, no
// directory) is accepted and, with the capture replayed on B, the
// supervisor's WAV is agent 1001's audio; after smctl agents unbind at A,
// a new start for 1001 at B without --wait is refused as unknown.
func TestCTIBindInCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: replays a scenario in real time")
	}
	sec := quickstart(t)
	cti := filepath.Join(t.TempDir(), "cti")
	if _, se, code := runCmd(t, nil, "smctl", "certs", "quickstart", "--dir", cti, "--role", "cti",
		"--ca-dir", filepath.Join(sec, "ca"), "--password-file", filepath.Join(sec, "ca", "CtiosRoot.password")); code != 0 {
		t.Fatalf("smctl certs quickstart --role cti exited %d: %s", code, se)
	}
	pcap, m := scenarioCapture(t, "hold-resume")
	var phone string
	for _, mon := range m.Monitored {
		if mon.Agent == "1001" {
			for _, ep := range mon.Endpoints {
				if _, err := relay.ParseDevice(ep); err == nil {
					phone = ep
				}
			}
		}
	}
	if phone == "" {
		t.Fatalf("the scenario gives agent 1001 no phone address: %+v", m.Monitored)
	}
	dir := t.TempDir()
	supAddr, aAddr, bAddr, aPeer, bPeer := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	sup := start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "wav:"+filepath.Join(dir, "{agent}.wav"),
		"--metrics-listen", freeAddr(t))
	// A sees none of the calls (a capture of other traffic, replayed at
	// once); B replays the scenario once a session exists.
	start(t, "smserver", "--name", "sm-a", "--cluster-listen", aPeer, "--peer", bPeer,
		"--pcap", filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap"),
		"--listen", aAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	start(t, "smserver", "--name", "sm-b", "--cluster-listen", bPeer, "--peer", aPeer, "--pcap", pcap, "--pcap-wait-session",
		"--listen", bAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, aAddr)
	waitReady(t, sec, bAddr)

	so, se, code := runCmd(t, nil, "smctl", "agents", "bind", "--server", aAddr, "--security-dir", cti, "--agent", "1001", "--device", phone)
	if code != 0 || !strings.Contains(so, "agent 1001: devices ") {
		t.Fatalf("smctl agents bind exited %d: %s%s", code, so, se)
	}
	waitAgents(t, sec, bAddr, "agent 1001 bound by the CTI", func(l map[string][]string) bool {
		return len(l["1001"]) == 1 && strings.HasSuffix(l["1001"][0], "(cti)")
	})
	if _, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", bAddr, "--security-dir", sec,
		"--agent", "1001", "--supervisor", supAddr); code != 0 {
		t.Fatalf("smctl monitor start --agent 1001 at member B exited %d: %s", code, se)
	}
	time.Sleep(time.Duration(m.DurationMS)*time.Millisecond + 3*time.Second)
	disturbed := (&replay{sec: sec, supAddr: supAddr}).disturbances(t)
	sup.stop(t, syscall.SIGTERM)
	listenLive(t, "live, bound by the CTI at another member", m, "1001", readWAV(t, filepath.Join(dir, "1001.wav")), disturbed["1001"])

	if so, se, code := runCmd(t, nil, "smctl", "agents", "unbind", "--server", aAddr, "--security-dir", cti, "--agent", "1001"); code != 0 ||
		so != "agent 1001 has no bindings\n" {
		t.Fatalf("smctl agents unbind exited %d: %s%s", code, so, se)
	}
	waitAgents(t, sec, bAddr, "agent 1001 unbound", func(l map[string][]string) bool {
		return !slices.ContainsFunc(l["1001"], func(d string) bool { return strings.HasSuffix(d, "(cti)") })
	})
	_, se, code = runCmd(t, nil, "smctl", "monitor", "start", "--server", bAddr, "--security-dir", sec,
		"--agent", "1001", "--supervisor", supAddr)
	if code != 1 || !strings.Contains(se, "nothing is known about agent 1001") {
		t.Errorf("a start for agent 1001 after the unbind: exit %d, %s; want refused as unknown", code, se)
	}
}
