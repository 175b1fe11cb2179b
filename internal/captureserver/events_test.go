package captureserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// newFakeClock returns a clock that tests move by hand.
func newFakeClock() *audiotest.Clock {
	return audiotest.NewClock(time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC))
}

// advance moves clk forward by d and returns its new time.
func advance(clk *audiotest.Clock, d time.Duration) time.Time {
	clk.Advance(d)
	return clk.Now()
}

// supHandler is a supervisor service that takes media and discards it.
type supHandler struct{}

func (supHandler) StartMonitor(context.Context, *relay.Peer, *relay.StartMonitor) (*relay.SessionStatus, error) {
	return nil, &relay.Error{Code: relay.CodeBadRequest, Message: "a supervisor"}
}
func (supHandler) StopMonitor(context.Context, *relay.Peer, *relay.StopMonitor) (*relay.SessionStatus, error) {
	return nil, &relay.Error{Code: relay.CodeBadRequest, Message: "a supervisor"}
}
func (supHandler) Status(context.Context, *relay.Peer) (any, error) { return map[string]int{}, nil }
func (supHandler) Media(*relay.Peer, *relay.MediaFrame) error       { return nil }
func (supHandler) Closed(*relay.Peer, error)                        {}

// tlsSupervisor starts a supervisor service with the server certificate of
// a quickstart set; it returns its address, the dial configuration of a
// capture server of the same set, and the supervisor certificate's
// subject and fingerprint.
func tlsSupervisor(t *testing.T) (addr string, dial *tls.Config, subject, fp string) {
	t.Helper()
	dir := t.TempDir()
	if err := smtls.Quickstart(dir, smtls.QuickstartOptions{}); err != nil {
		t.Fatal(err)
	}
	scfg, err := smtls.ServerConfig(dir, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if dial, err = smtls.ClientConfig(dir, smtls.Options{}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, smtls.ServerFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := relay.NewServer(relay.ServerConfig{Handler: supHandler{}, Logger: slog.New(slog.DiscardHandler), Role: relay.RoleSupervisor})
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(tls.NewListener(ln, scfg)) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String(), dial, cert.Subject.String(), smtls.Fingerprint(cert.Raw)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func actions(lines []audit.Record) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.Action)
	}
	return out
}

func hasAction(lines []audit.Record, action string) bool {
	for _, l := range lines {
		if l.Action == action {
			return true
		}
	}
	return false
}

// fakeWorker returns a worker whose published figures the test sets
// (seen), installed as the server's only worker.
func fakeWorker(ts *testServer) *worker {
	w := &worker{s: ts.server}
	ts.workers = []*worker{w}
	return w
}

func (w *worker) setSeen(id string, packets uint64, last time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = map[string]sessionSeen{id: {packets: packets, last: last}}
}

// TestAuditStartStopEnd: the lines of a session's life on the member
// where it happens: accepted start, supervisor connected (the supervisor's
// real certificate), capture begun, stop, end (stopped), capture ended
// with the period's packets, supervisor disconnected; every line names
// the member. A second streaming period after 30 s of silence gets its
// own begin and end.
func TestAuditStartStopEnd(t *testing.T) {
	supAddr, dial, subject, fp := tlsSupervisor(t)
	clk := newFakeClock()
	ts := newTestServerWith(t, t.TempDir(), testOptions{clock: clk.Now, grace: 10 * time.Minute, tls: dial})
	w := fakeWorker(ts)
	alice := peerWithCert(t, "alice")
	req := startReq
	req.Supervisor = supAddr
	st, err := ts.StartMonitor(context.Background(), alice, &req)
	if err != nil {
		t.Fatal(err)
	}
	id := st.Session
	waitUntil(t, "supervisor-connected", func() bool { return hasAction(ts.auditLines(t), audit.ActionSupervisorConnected) })

	now := advance(clk, time.Second)
	w.setSeen(id, 10, now)
	ts.tick(now)
	// Silence for 30 s ends the period; the next packet begins another.
	now = advance(clk, 31*time.Second)
	ts.tick(now)
	now = advance(clk, time.Second)
	w.setSeen(id, 25, now)
	ts.tick(now)
	if _, err := ts.StopMonitor(context.Background(), alice, &relay.StopMonitor{Session: id}); err != nil {
		t.Fatal(err)
	}
	ts.tick(advance(clk, time.Second))
	waitUntil(t, "supervisor-disconnected", func() bool { return hasAction(ts.auditLines(t), audit.ActionSupervisorDisconnected) })

	lines := ts.auditLines(t)
	// The supervisor connection closes on its own goroutine as soon as
	// the session is removed, which is before the stop's line is written
	// (the line records what was done): its line comes anywhere after the
	// last capture period began; the others in this order.
	want := []string{"start", "supervisor-connected", "capture-begin", "capture-end", "capture-begin", "stop", "end", "capture-end"}
	got := actions(lines)
	disc := slices.Index(got, "supervisor-disconnected")
	if disc < 0 || disc < slices.Index(got, "supervisor-connected") || disc < 4 {
		t.Fatalf("actions %q: supervisor-disconnected missing or before the last capture period began", got)
	}
	rest := slices.Delete(slices.Clone(got), disc, disc+1)
	if strings.Join(rest, " ") != strings.Join(want, " ") {
		t.Fatalf("actions %q, want %q and supervisor-disconnected", got, want)
	}
	var ends []audit.Record
	for _, l := range lines {
		if l.Member != "test-1" {
			t.Errorf("line without the member: %+v", l)
		}
		switch l.Action {
		case audit.ActionSupervisorConnected:
			if l.Supervisor != supAddr || l.SupervisorSubject != subject || l.SupervisorFingerprint != fp || subject == "" {
				t.Errorf("supervisor-connected %+v, want %s %q %s", l, supAddr, subject, fp)
			}
		case audit.ActionSupervisorDisconnected:
			if l.Supervisor != supAddr || l.Reason == "" {
				t.Errorf("supervisor-disconnected %+v", l)
			}
		case audit.ActionCaptureEnd:
			ends = append(ends, l)
		case audit.ActionEnd:
			if l.Reason != audit.ReasonStopped || l.SessionID != id || l.Agent != "1001" {
				t.Errorf("end %+v", l)
			}
		}
		if l.Action != audit.ActionSupervisorConnected && l.Action != audit.ActionSupervisorDisconnected && l.SessionID != id {
			t.Errorf("line of another session: %+v", l)
		}
	}
	if len(ends) != 2 || ends[0].Packets != 10 || ends[1].Packets != 15 {
		t.Errorf("capture-end lines %+v, want 10 then 15 packets", ends)
	}
}

// TestSupervisorGoneEndsSession: a session whose supervisor stays
// unreachable ends after the grace (injected clock), not before, with one
// end line "supervisor gone"; without a cluster the server ends it
// itself. A lifetime ends a session the same way.
func TestSupervisorGoneEndsSession(t *testing.T) {
	clk := newFakeClock()
	ts := newTestServerWith(t, t.TempDir(), testOptions{clock: clk.Now, grace: 10 * time.Minute})
	st, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &startReq) // 127.0.0.1:9: nothing listens
	if err != nil {
		t.Fatal(err)
	}
	ts.tick(advance(clk, time.Second))
	if s := ts.fw.Stats(); len(s) != 1 || s[0].UnreachableSince.IsZero() {
		t.Fatalf("forwarder %+v: want the supervisor tried and unreachable", s)
	}
	ts.tick(advance(clk, 9*time.Minute))
	if len(ts.filter.Sessions()) != 1 {
		t.Fatal("the session ended before the grace")
	}
	ts.tick(advance(clk, time.Minute+time.Second))
	if n := len(ts.filter.Sessions()); n != 0 {
		t.Fatalf("%d sessions after the grace", n)
	}
	ts.tick(advance(clk, time.Second))
	var ends []audit.Record
	for _, l := range ts.auditLines(t) {
		if l.Action == audit.ActionEnd {
			ends = append(ends, l)
		}
	}
	if len(ends) != 1 || ends[0].Reason != audit.ReasonSupervisorGone || ends[0].SessionID != st.Session || ends[0].Member != "test-1" {
		t.Fatalf("end lines %+v, want one supervisor gone", ends)
	}

	req := startReq
	req.ForMS = time.Minute.Milliseconds()
	ts2 := newTestServerWith(t, t.TempDir(), testOptions{clock: clk.Now, grace: time.Hour})
	if _, err := ts2.StartMonitor(context.Background(), &relay.Peer{}, &req); err != nil {
		t.Fatal(err)
	}
	// Until is set from the wall clock; move the keeper's past it.
	clk.Set(time.Now().Add(2 * time.Minute))
	ts2.tick(clk.Now())
	lines := ts2.auditLines(t)
	if len(ts2.filter.Sessions()) != 0 || len(lines) != 2 || lines[1].Action != audit.ActionEnd || lines[1].Reason != audit.ReasonLifetimeOver {
		t.Fatalf("after the lifetime: %d sessions, lines %+v", len(ts2.filter.Sessions()), lines)
	}
}

// TestSupervisorGoneInCluster: in a cluster the owner ends the session
// through the cluster (every member learns "supervisor gone"); the line is
// written once, by the owner.
func TestSupervisorGoneInCluster(t *testing.T) {
	clk := newFakeClock()
	var node *cluster.Node
	ts := newTestServerWith(t, t.TempDir(), testOptions{clock: clk.Now, grace: 10 * time.Minute,
		node: func(s *server) *cluster.Node {
			var err error
			node, err = cluster.Start(cluster.Config{Name: s.cfg.Name, Listen: "127.0.0.1:0", Insecure: true,
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			return node
		}})
	var reasons []string
	var mu sync.Mutex
	cancel := node.SubscribeEnds(func(id, reason string) { mu.Lock(); reasons = append(reasons, reason); mu.Unlock() })
	defer cancel()
	st, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &startReq)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the session in the filter", func() bool { return len(ts.filter.Sessions()) == 1 })
	ts.tick(advance(clk, time.Second))
	ts.tick(advance(clk, 10*time.Minute+time.Second))
	waitUntil(t, "the cluster's end", func() bool { mu.Lock(); defer mu.Unlock(); return len(reasons) == 1 })
	if reasons[0] != cluster.ReasonSupervisorGone {
		t.Fatalf("cluster end reason %q", reasons[0])
	}
	if len(node.Sessions()) != 0 {
		t.Fatal("the cluster still has the session")
	}
	n := 0
	for _, l := range ts.auditLines(t) {
		if l.Action == audit.ActionEnd {
			n++
			if l.Reason != audit.ReasonSupervisorGone || l.SessionID != st.Session {
				t.Errorf("end %+v", l)
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d end lines, want 1", n)
	}
}

// failingFile is an audit file whose writes fail with ENOSPC while fail
// is set.
type failingFile struct {
	*os.File
	fail *atomic.Bool
}

func (f failingFile) Write(b []byte) (int, error) {
	if f.fail.Load() {
		return 0, &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return f.File.Write(b)
}

// TestStartRefusedWhenAuditFails: when the accepted start line cannot be
// written, the start is refused and no session is installed: nothing in
// the filter, no connection to the supervisor.
func TestStartRefusedWhenAuditFails(t *testing.T) {
	var fail atomic.Bool
	ts := newTestServerWith(t, t.TempDir(), testOptions{auditOpen: func(name string, flag int, perm fs.FileMode) (audit.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		if err != nil {
			return nil, err
		}
		return failingFile{f, &fail}, nil
	}})
	fail.Store(true)
	_, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &startReq)
	if !isCode(err, relay.CodeInternal) || !strings.Contains(err.Error(), "audit trail") {
		t.Fatalf("start with a full disk: %v", err)
	}
	if n := len(ts.filter.Sessions()); n != 0 {
		t.Fatalf("%d sessions installed", n)
	}
	if s := ts.fw.Stats(); len(s) != 0 {
		t.Fatalf("the forwarder reaches a supervisor: %+v", s)
	}
	fail.Store(false)
	if _, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &startReq); err != nil {
		t.Fatalf("start after recovery: %v", err)
	}
	if lines := ts.auditLines(t); len(lines) != 1 || lines[0].Result != audit.ResultAccepted {
		t.Fatalf("lines %+v, want the one accepted start", lines)
	}
}

// TestStartEndedByCluster: a start the cluster refuses with ErrEnded
// (its lifetime is over by the cluster's clock) is refused with a clear
// error, and its accepted line is followed by a refused one; no session
// is installed.
func TestStartEndedByCluster(t *testing.T) {
	ts := newTestServerWith(t, t.TempDir(), testOptions{node: func(s *server) *cluster.Node {
		node, err := cluster.Start(cluster.Config{Name: s.cfg.Name, Listen: "127.0.0.1:0", Insecure: true,
			Logger: slog.New(slog.DiscardHandler), Now: func() time.Time { return time.Now().Add(time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		return node
	}})
	req := startReq
	req.ForMS = time.Minute.Milliseconds()
	_, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &req)
	if !isCode(err, relay.CodeBadRequest) || !strings.Contains(err.Error(), "lifetime is over") {
		t.Fatalf("start: %v", err)
	}
	lines := ts.auditLines(t)
	if len(lines) != 2 || lines[0].Result != audit.ResultAccepted || lines[1].Result != audit.ResultRefused ||
		lines[0].SessionID != lines[1].SessionID || !strings.Contains(lines[1].Reason, "not installed") {
		t.Fatalf("lines %+v", lines)
	}
	if len(ts.filter.Sessions()) != 0 || len(ts.node.Sessions()) != 0 {
		t.Fatal("a session was installed")
	}
	if got := endedError("abc").Error(); got != "session abc was stopped; start a new one" {
		t.Fatalf("endedError: %q", got)
	}
}

// TestRecordBeginAudited: a recorded session's file is audited
// (record-begin, with the file) on the member that opens it.
func TestRecordBeginAudited(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	req := startReq
	req.Record = true
	st, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &req)
	if err != nil {
		t.Fatal(err)
	}
	lines := ts.auditLines(t)
	if len(lines) != 2 || lines[1].Action != audit.ActionRecordBegin || lines[1].SessionID != st.Session ||
		!strings.HasPrefix(lines[1].File, ts.cfg.RecordDir) {
		t.Fatalf("lines %+v", lines)
	}
}
