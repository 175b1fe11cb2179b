package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFirstRunSupervisorDown: a session whose supervisor service is not
// running says why, in three places: smserver logs a warning naming the
// supervisor and the reason, smctl status --json gives the session's
// supervisor_state, supervisor_error and supervisor_error_since (and its
// started time), and smctl status shows the link unreachable in the
// session's row with the error under it. (Before, the session stayed
// "connecting" with nothing logged above INFO and no reason anywhere.)
func TestFirstRunSupervisorDown(t *testing.T) {
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 1, time.Second)
	srvAddr, dead := freeAddr(t), freeAddr(t)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, srvAddr)
	before := time.Now().Add(-time.Second)
	so, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", sec,
		"--agent", "1001", "--endpoint", "10.0.0.1", "--supervisor", dead)
	if code != 0 {
		t.Fatalf("monitor start exited %d: %s", code, se)
	}
	id := strings.TrimSpace(so)
	want := "cannot connect to the supervisor at " + dead + ": connection refused"

	type session struct {
		ID         string `json:"id"`
		Started    string `json:"started"`
		Requester  string `json:"requester"`
		State      string `json:"supervisor_state"`
		Error      string `json:"supervisor_error"`
		ErrorSince string `json:"supervisor_error_since"`
	}
	var got session
	deadline := time.Now().Add(15 * time.Second)
	for got.Error == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no supervisor_error in status within 15 s: %+v", got)
		}
		time.Sleep(100 * time.Millisecond)
		so, se, code := runCmd(t, nil, "smctl", "status", "--json", "--server", srvAddr, "--security-dir", sec)
		if code != 0 {
			t.Fatalf("status exited %d: %s", code, se)
		}
		var st struct {
			Sessions []session `json:"sessions"`
		}
		if err := json.Unmarshal([]byte(so), &st); err != nil {
			t.Fatalf("status --json: %v: %s", err, so)
		}
		for _, x := range st.Sessions {
			if x.ID == id {
				got = x
			}
		}
	}
	since, serr := time.Parse(time.RFC3339, got.ErrorSince)
	started, sterr := time.Parse(time.RFC3339, got.Started)
	if got.State != "connecting" || got.Error != want || serr != nil || sterr != nil ||
		since.Before(before.Truncate(time.Second)) || started.Before(before.Truncate(time.Second)) || got.Requester == "" {
		t.Fatalf("session %+v, want supervisor_state connecting, supervisor_error %q, supervisor_error_since and started (RFC 3339) after %v, a requester",
			got, want, before)
	}

	so, se, code = runCmd(t, nil, "smctl", "status", "--server", srvAddr, "--security-dir", sec)
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, se)
	}
	var row string
	for _, l := range strings.Split(so, "\n") {
		if strings.HasPrefix(l, id+" ") {
			row = l
		}
	}
	if !strings.Contains(row, " "+dead+" ") || !strings.Contains(row, " unreachable ") || !strings.Contains(so, "\n  supervisor error: "+want+"\n") {
		t.Fatalf("status does not show the supervisor unreachable with its error in the session's row:\n%s", so)
	}

	srv.stop(t, syscall.SIGTERM)
	line := `level=WARN msg="supervisor unreachable" supervisor=` + dead + ` err="` + want + `"`
	if !strings.Contains(srv.stderr.String(), line) {
		t.Fatalf("smserver's log lacks %s:\n%s", line, srv.stderr.String())
	}
}
