package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/relay"
	"github.com/silentmon/silentmon/relay/relaytest"
)

// TestRequestsSurviveCuts: smctl monitor start, status and monitor stop
// through a proxy that breaks the socket at each point of the request
// (at the connect, before the request, before the reply, after the
// reply), with a second --server behind it: smctl's exit code tells the
// truth, and the real smserver holds exactly the one session between
// start and stop, none after.
func TestRequestsSurviveCuts(t *testing.T) {
	pcap, _ := writeCapture(t, 1, time.Second)
	srvAddr := freeAddr(t)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--listen", srvAddr, "--insecure", "--metrics-listen", freeAddr(t))
	ctl := func(server string, args ...string) (string, string, int) {
		so, se, code := runCmd(t, nil, "smctl", append(args, "--server", server, "--insecure", "--timeout", "10s")...)
		return strings.TrimSpace(so), se, code
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, code := ctl(srvAddr, "status"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("smserver not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sessions := func() []string {
		so, se, code := ctl(srvAddr, "status", "--json")
		if code != 0 {
			t.Fatalf("status exited %d: %s", code, se)
		}
		var st struct {
			Sessions []struct {
				ID string `json:"id"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal([]byte(so), &st); err != nil {
			t.Fatalf("status --json: %v", err)
		}
		var ids []string
		for _, s := range st.Sessions {
			ids = append(ids, s.ID)
		}
		return ids
	}
	for _, at := range []relaytest.CutPoint{relaytest.CutAtConnect, relaytest.CutBeforeRequest, relaytest.CutBeforeReply, relaytest.CutAfterReply} {
		t.Run(at.String(), func(t *testing.T) {
			px := relaytest.NewCutProxy(t, srvAddr, at, relay.MsgStartMonitor, 1)
			id, se, code := ctl(px.Addr(), "monitor", "start", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9")
			if code != 0 {
				t.Fatalf("monitor start exited %d: %s", code, se)
			}
			if got := sessions(); len(got) != 1 || got[0] != id {
				t.Fatalf("sessions %v after the start, want exactly %s", got, id)
			}
			px = relaytest.NewCutProxy(t, srvAddr, at, relay.MsgStatus, 1)
			if _, se, code := ctl(px.Addr(), "status"); code != 0 {
				t.Fatalf("status exited %d: %s", code, se)
			}
			px = relaytest.NewCutProxy(t, srvAddr, at, relay.MsgStopMonitor, 1)
			so, se, code := ctl(px.Addr(), "monitor", "stop", "--session", id)
			if code != 0 || so != "stopped "+id {
				t.Fatalf("monitor stop exited %d, printed %q: %s", code, so, se)
			}
			if got := sessions(); len(got) != 0 {
				t.Fatalf("sessions %v after the stop", got)
			}
		})
	}
	// A path as a session id is refused by smctl (exit 2) and by the
	// server (exit 1 from a re-assertion is not reachable from smctl).
	if _, se, code := ctl(srvAddr, "monitor", "stop", "--session", "x/../../outside/pwned"); code != 2 || !strings.Contains(se, "x/../../outside/pwned") {
		t.Fatalf("stop of a path exited %d: %s", code, se)
	}
	if _, se, code := ctl(srvAddr, "monitor", "start", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9", "--for", "31d"); code != 2 {
		t.Fatalf("--for 31d exited %d: %s", code, se)
	}
	if _, se, code := ctl(srvAddr, "monitor", "start", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9", "--for", "800h"); code != 2 {
		t.Fatalf("--for 800h exited %d: %s", code, se)
	}
	srv.stop(t, syscall.SIGTERM)
}
