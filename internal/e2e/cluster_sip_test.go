package e2e

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

// TestSIPSeenByAnotherMember: in a two-member cluster where only member
// B's SPAN carries the agents' SIP and RTP, member A answers as if it saw
// them: smctl agents at A shows agent 1001 in its call, with the device
// the call's SDP gave, and smctl monitor start --agent 1001 at A, without
// --wait and without endpoints, is accepted (the agent is known to B's
// SIP) and B captures the session's media.
func TestSIPSeenByAnotherMember(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: replays a scenario in real time")
	}
	sec := quickstart(t)
	pcap, m := sipScenarioCapture(t, "sip-inbound-outbound")
	supAddr, aAddr, bAddr, aPeer, bPeer := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "wav:"+filepath.Join(t.TempDir(), "{agent}.wav"),
		"--metrics-listen", freeAddr(t))
	start(t, "smserver", "--name", "sm-a", "--cluster-listen", aPeer, "--peer", bPeer,
		"--pcap", filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap"),
		"--listen", aAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, aAddr)
	start(t, "smserver", "--name", "sm-b", "--cluster-listen", bPeer, "--peer", aPeer, "--pcap", pcap,
		"--listen", bAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))

	// smctl agents at A: agent 1001 in a call B's SPAN carries.
	deadline := time.Now().Add(time.Duration(m.DurationMS)*time.Millisecond + 10*time.Second)
	var last string
	inCall := false
	for !inCall && time.Now().Before(deadline) {
		so, _, code := runCmd(t, nil, "smctl", "agents", "--server", aAddr, "--security-dir", sec, "--json", "--timeout", "3s")
		last = so
		var list struct {
			Agents []relay.AgentStatus `json:"agents"`
		}
		if code == 0 && json.Unmarshal([]byte(so), &list) == nil {
			for _, a := range list.Agents {
				if a.ID == "1001" && len(a.Calls) > 0 && a.State != relay.AgentIdle && a.State != relay.AgentUnknown &&
					slices.ContainsFunc(a.Devices, func(d relay.AgentDevice) bool { return d.Learned == relay.DeviceFromCall }) {
					inCall = true
				}
			}
		}
		if !inCall {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !inCall {
		t.Fatalf("smctl agents at member A never showed agent 1001 in the call member B's SPAN carries; last answer:\n%s", last)
	}

	// A start at A naming no endpoint and without --wait: known from B.
	so, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", aAddr, "--security-dir", sec,
		"--agent", "1001", "--supervisor", supAddr, "--json")
	if code != 0 {
		t.Fatalf("smctl monitor start --agent 1001 at member A exited %d: %s", code, se)
	}
	var st relay.SessionStatus
	if err := json.Unmarshal([]byte(so), &st); err != nil || st.Session == "" {
		t.Fatalf("smctl monitor start --json: %v\n%s", err, so)
	}

	// B, whose SPAN carries the call, captures the session.
	deadline = time.Now().Add(30 * time.Second)
	for {
		out, _, code := runCmd(t, nil, "smctl", "status", "--server", bAddr, "--security-dir", sec, "--json")
		var s status.ServerStatus
		if code == 0 && json.Unmarshal([]byte(out), &s) == nil {
			for _, x := range s.Sessions {
				if x.ID == st.Session && x.Packets > 0 {
					t.Logf("member B captured %d packets of session %s started at member A", x.Packets, st.Session)
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("member B never captured session %s started at member A; last status:\n%s", st.Session, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
}
