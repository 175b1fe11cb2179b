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

// TestAuditTrail: every monitor start and stop, accepted or refused, is a
// JSON line in smserver's audit file, with the client certificate's
// subject, written before the reply.
func TestAuditTrail(t *testing.T) {
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 1, time.Second)
	auditFile := filepath.Join(t.TempDir(), "audit.jsonl")
	srvAddr := freeAddr(t)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t), "--audit-file", auditFile)
	waitReady(t, sec, srvAddr)
	ctl := func(args ...string) (string, int) {
		so, _, code := runCmd(t, nil, "smctl", append(args, "--server", srvAddr, "--security-dir", sec)...)
		return strings.TrimSpace(so), code
	}
	id, code := ctl("monitor", "start", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9")
	if code != 0 {
		t.Fatalf("monitor start exited %d", code)
	}
	if _, code := ctl("monitor", "stop", "--session", "no-such-session"); code != 1 {
		t.Fatalf("stop of an unknown session exited %d, want 1", code)
	}
	if _, code := ctl("monitor", "stop", "--session", id); code != 0 {
		t.Fatalf("monitor stop exited %d", code)
	}
	// The lines are on disk before the replies: no wait needed.
	f, err := os.Open(auditFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %v, want 0600", fi.Mode().Perm())
	}
	var got []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l audit.Record
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		got = append(got, l)
	}
	want := []struct{ action, result, session string }{
		{"start", "accepted", id}, {"stop", "refused", "no-such-session"}, {"stop", "accepted", id},
	}
	if len(got) != len(want) {
		t.Fatalf("audit file has %d lines, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Action != w.action || g.Result != w.result || g.SessionID != w.session {
			t.Errorf("line %d: %s %s %s, want %s %s %s", i, g.Action, g.Result, g.SessionID, w.action, w.result, w.session)
		}
		if !strings.Contains(g.ClientSubject, "silentmon client") || len(g.ClientFingerprint) < 64 || !strings.HasPrefix(g.Source, "127.0.0.1:") {
			t.Errorf("line %d does not identify the client: %+v", i, g)
		}
	}
	if got[0].Agent != "1001" || got[0].Supervisor != "127.0.0.1:9" || len(got[0].Endpoints) != 1 || got[0].Endpoints[0] != "10.10.0.1" {
		t.Errorf("start line: %+v", got[0])
	}
	if got[1].Reason == "" {
		t.Errorf("refused stop has no reason: %+v", got[1])
	}
	srv.stop(t, syscall.SIGTERM)
}
