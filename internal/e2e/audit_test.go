package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/audit"
)

func readAudit(t *testing.T, path string) []audit.Record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l audit.Record
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		got = append(got, l)
	}
	return got
}

func waitAudit(t *testing.T, path, action string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, l := range readAudit(t, path) {
			if l.Action == action {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s line in the audit trail within 20 s: %+v", action, readAudit(t, path))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestAuditTrail: every monitor start and stop, accepted or refused, is a
// JSON line in smserver's audit file, with the client certificate's
// subject, written before the reply; the session's events on the member
// follow: the connection to the supervisor (with its certificate), the
// capture period with its packets, the end and why.
func TestAuditTrail(t *testing.T) {
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 1, 3*time.Second)
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	srvAddr, supAddr := freeAddr(t), freeAddr(t)
	sup := start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "null", "--metrics-listen", freeAddr(t))
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session", "--name", "capture-a",
		"--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t), "--audit-file", auditFile)
	waitReady(t, sec, srvAddr)
	ctl := func(args ...string) (string, int) {
		so, _, code := runCmd(t, nil, "smctl", append(args, "--server", srvAddr, "--security-dir", sec)...)
		return strings.TrimSpace(so), code
	}
	id, code := ctl("monitor", "start", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", supAddr)
	if code != 0 {
		t.Fatalf("monitor start exited %d", code)
	}
	waitAudit(t, auditFile, audit.ActionCaptureBegin)
	waitAudit(t, auditFile, audit.ActionSupervisorConnected)
	if _, code := ctl("monitor", "stop", "--session", "no-such-session"); code != 1 {
		t.Fatalf("stop of an unknown session exited %d, want 1", code)
	}
	if _, code := ctl("monitor", "stop", "--session", id); code != 0 {
		t.Fatalf("monitor stop exited %d", code)
	}
	waitAudit(t, auditFile, audit.ActionCaptureEnd)
	waitAudit(t, auditFile, audit.ActionSupervisorDisconnected)
	srv.stop(t, syscall.SIGTERM)
	sup.stop(t, syscall.SIGTERM)

	if fi, _ := os.Stat(auditFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", fi.Mode().Perm())
	}
	got := readAudit(t, auditFile)
	var requests, events []audit.Record
	for _, l := range got {
		if l.Member != "capture-a" {
			t.Errorf("line without the member's name: %+v", l)
		}
		if l.Action == audit.ActionStart || l.Action == audit.ActionStop {
			requests = append(requests, l)
		} else {
			events = append(events, l)
		}
	}
	want := []struct{ action, result, session string }{
		{"start", "accepted", id}, {"stop", "refused", "no-such-session"}, {"stop", "accepted", id},
	}
	if len(requests) != len(want) {
		t.Fatalf("audit file has %d requests, want %d: %+v", len(requests), len(want), got)
	}
	for i, w := range want {
		g := requests[i]
		if g.Action != w.action || g.Result != w.result || g.SessionID != w.session {
			t.Errorf("request %d: %s %s %s, want %s %s %s", i, g.Action, g.Result, g.SessionID, w.action, w.result, w.session)
		}
		if !strings.Contains(g.ClientSubject, "silentmon client") || len(g.ClientFingerprint) < 64 || !strings.HasPrefix(g.Source, "127.0.0.1:") {
			t.Errorf("request %d does not identify the client: %+v", i, g)
		}
	}
	if requests[0].Agent != "1001" || requests[0].Supervisor != supAddr || len(requests[0].Endpoints) != 1 || requests[0].Endpoints[0] != "10.10.0.1" {
		t.Errorf("start line: %+v", requests[0])
	}
	if requests[1].Reason == "" {
		t.Errorf("refused stop has no reason: %+v", requests[1])
	}
	// Each event once, in an order that makes sense: the start before
	// the capture, the stop before the end, the end before the capture's
	// end.
	pos := map[string]int{}
	for i, l := range got {
		if _, dup := pos[l.Action]; dup && l.Action != audit.ActionStop {
			t.Errorf("two %s lines: %+v", l.Action, got)
		}
		if _, seen := pos[l.Action]; !seen {
			pos[l.Action] = i
		}
		switch l.Action {
		case audit.ActionSupervisorConnected:
			if l.Supervisor != supAddr || !strings.Contains(l.SupervisorSubject, "silentmon") || len(l.SupervisorFingerprint) < 64 {
				t.Errorf("supervisor-connected does not identify the supervisor: %+v", l)
			}
		case audit.ActionCaptureEnd:
			if l.SessionID != id || l.Packets == 0 {
				t.Errorf("capture-end %+v: want the session's packets", l)
			}
		case audit.ActionEnd:
			if l.SessionID != id || l.Reason != audit.ReasonStopped {
				t.Errorf("end %+v, want %s stopped", l, id)
			}
		}
	}
	for _, a := range []string{"start", "capture-begin", "supervisor-connected", "stop", "end", "capture-end", "supervisor-disconnected"} {
		if _, ok := pos[a]; !ok {
			t.Errorf("no %s line: %+v", a, got)
		}
	}
	if !(pos["start"] < pos["capture-begin"] && pos["start"] < pos["supervisor-connected"] &&
		pos["capture-begin"] < pos["end"] && pos["end"] < pos["capture-end"]) {
		t.Errorf("events out of order: %v", pos)
	}
	t.Logf("%d lines: %d requests, %d events", len(got), len(requests), len(events))
}
