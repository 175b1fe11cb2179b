package captureserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/relay"
	"github.com/silentmon/silentmon/relay/relaytest"
	smtls "github.com/silentmon/silentmon/tls"
)

// testServer is an smserver without capture or cluster, serving the relay
// protocol in plaintext on a loopback port, with an audit file.
type testServer struct {
	*server
	addr      string
	auditFile string
}

func newTestServer(t *testing.T, recordDir string) *testServer {
	return newTestServerWith(t, recordDir, testOptions{})
}

// testOptions vary a testServer.
type testOptions struct {
	clock     func() time.Time            // the session keeper's clock; nil: time.Now
	grace     time.Duration               // supervisor grace; 0: none (never ends)
	auditOpen audit.OpenFileFunc          // opens the audit file; nil: os.OpenFile
	node      func(*server) *cluster.Node // a cluster for the server, if not nil
	tls       *tls.Config                 // the forwarder's dial configuration
}

func newTestServerWith(t *testing.T, recordDir string, o testOptions) *testServer {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	cfg := &Config{RecordDir: recordDir, AuditFile: filepath.Join(t.TempDir(), "audit.jsonl"),
		Clock: o.clock, SupervisorGrace: o.grace}
	cfg.Name = "test-1"
	s := newServer(cfg, log)
	s.newForwarder(relay.DialConfig{TLS: o.tls})
	var err error
	if s.audit, err = audit.OpenWith(cfg.AuditFile, audit.Options{Member: cfg.Name, OpenFile: o.auditOpen}); err != nil {
		t.Fatal(err)
	}
	if o.node != nil {
		s.attachNode(o.node(s))
	}
	s.relay = relay.NewServer(relay.ServerConfig{Handler: s, Logger: log, Name: cfg.Name})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.relay.Serve(ln) }()
	t.Cleanup(func() {
		s.relay.Close()
		<-done
		if s.node != nil {
			s.node.Close()
		}
		s.fw.Close()
		s.rec.closeAll()
		s.audit.Close()
	})
	return &testServer{server: s, addr: ln.Addr().String(), auditFile: cfg.AuditFile}
}

func (ts *testServer) auditLines(t *testing.T) []audit.Record {
	t.Helper()
	f, err := os.Open(ts.auditFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []audit.Record
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r audit.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func dialClient(t *testing.T, servers ...string) *relay.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := relay.Dial(ctx, relay.ClientConfig{Servers: servers, Name: "test", Logger: slog.New(slog.DiscardHandler),
		RequestTimeout: 10 * time.Second, DialRetry: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

var startReq = relay.StartMonitor{Agent: "1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9"}

// TestRequestsSurviveCuts: a start, a stop and a status request through a
// proxy that breaks the connection at every point of the request; the
// client sends it again (same idempotency key) and gets the truth: one
// session made, then stopped, never a duplicate or a refusal of what
// happened; the audit trail holds one accepted start and one accepted
// stop.
func TestRequestsSurviveCuts(t *testing.T) {
	for _, at := range []relaytest.CutPoint{relaytest.CutAtConnect, relaytest.CutBeforeRequest, relaytest.CutBeforeReply, relaytest.CutAfterReply} {
		for _, msg := range []relay.MsgType{relay.MsgStartMonitor, relay.MsgStopMonitor, relay.MsgStatus} {
			t.Run(at.String()+"/"+msg.String(), func(t *testing.T) {
				ts := newTestServer(t, t.TempDir())
				px := relaytest.NewCutProxy(t, ts.addr, at, msg, 1)
				cl := dialClient(t, px.Addr())
				ctx := context.Background()
				st, err := cl.StartMonitor(ctx, startReq)
				if err != nil {
					t.Fatalf("start: %v", err)
				}
				if ss := ts.filter.Sessions(); len(ss) != 1 || ss[0].ID != st.Session {
					t.Fatalf("sessions after start %v, want exactly %s", ss, st.Session)
				}
				if len(st.Session) != 32 {
					t.Errorf("session id %q is not 128 bits in hex", st.Session)
				}
				if _, err := cl.Status(ctx); err != nil {
					t.Fatalf("status: %v", err)
				}
				sst, err := cl.StopMonitor(ctx, st.Session)
				if err != nil {
					t.Fatalf("stop: %v", err)
				}
				if sst.State != relay.SessionStopped || sst.Session != st.Session {
					t.Fatalf("stop answered %+v", sst)
				}
				if n := len(ts.filter.Sessions()); n != 0 {
					t.Fatalf("%d sessions left after the stop", n)
				}
				lines := ts.auditLines(t)
				if len(lines) != 3 || lines[0].Action != audit.ActionStart || lines[0].Result != audit.ResultAccepted ||
					lines[1].Action != audit.ActionStop || lines[1].Result != audit.ResultAccepted ||
					lines[2].Action != audit.ActionEnd || lines[2].Reason != audit.ReasonStopped ||
					lines[0].SessionID != st.Session || lines[1].SessionID != st.Session || lines[2].SessionID != st.Session {
					t.Fatalf("audit trail %+v, want one accepted start, one accepted stop and one end of %s", lines, st.Session)
				}
			})
		}
	}
}

// TestStartRetryOnAnotherServer: the first server does the start but its
// reply is lost; the retry on the second finds nothing to repeat only if
// the session is not shared. With one filter behind both addresses (two
// listeners of one server), the retry returns the same session.
func TestStartRetryOnAnotherServer(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go ts.relay.Serve(ln)
	px := relaytest.NewCutProxy(t, ts.addr, relaytest.CutBeforeReply, relay.MsgStartMonitor, 1)
	cl := dialClient(t, px.Addr(), ln.Addr().String())
	// Make sure the client is on the proxy first.
	for cl.Server() != px.Addr() {
		cl.Close()
		cl = dialClient(t, px.Addr(), ln.Addr().String())
	}
	st, err := cl.StartMonitor(context.Background(), startReq)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Server() == px.Addr() {
		t.Errorf("client stayed on the server whose connection broke")
	}
	if ss := ts.filter.Sessions(); len(ss) != 1 || ss[0].ID != st.Session {
		t.Fatalf("sessions %v, want exactly %s", ss, st.Session)
	}
}

// TestIdempotencyKey: the same key from the same requester returns the
// same session; from another identity, or for another request, it is
// refused.
func TestIdempotencyKey(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	alice, bob := peerWithCert(t, "alice"), peerWithCert(t, "bob")
	ctx := context.Background()
	req := startReq
	req.IdempotencyKey = relay.NewIdempotencyKey()
	a, err := ts.StartMonitor(ctx, alice, &req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ts.StartMonitor(ctx, alice, &req)
	if err != nil || again.Session != a.Session {
		t.Fatalf("repeated start: %+v, %v; want session %s", again, err, a.Session)
	}
	if _, err := ts.StartMonitor(ctx, bob, &req); !isCode(err, relay.CodeBadRequest) {
		t.Fatalf("another identity's key: %v, want bad-request", err)
	}
	other := req
	other.Agent = "1002"
	if _, err := ts.StartMonitor(ctx, alice, &other); !isCode(err, relay.CodeBadRequest) {
		t.Fatalf("key re-used for another agent: %v, want bad-request", err)
	}
	if n := len(ts.filter.Sessions()); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	lines := ts.auditLines(t)
	if len(lines) != 3 || lines[0].Result != audit.ResultAccepted || lines[0].RequestID != req.IdempotencyKey ||
		lines[1].Result != audit.ResultRefused || lines[2].Result != audit.ResultRefused {
		t.Fatalf("audit %+v, want accepted then two refused", lines)
	}
}

func isCode(err error, code string) bool {
	var e *relay.Error
	return errors.As(err, &e) && e.Code == code
}

// peerWithCert returns a peer presenting a fresh self-signed client
// certificate with common name cn and no role.
func peerWithCert(t *testing.T, cn string) *relay.Peer {
	t.Helper()
	return peerWithRoles(t, cn)
}

// mustNormalize returns NormalizeFingerprint of fp, which must be one.
func mustNormalize(t *testing.T, fp string) string {
	t.Helper()
	norm, ok := NormalizeFingerprint(fp)
	if !ok {
		t.Fatalf("%q is not a fingerprint", fp)
	}
	return norm
}

// TestHijackRefused: a session id taken from status cannot be taken over
// (re-asserted) or stopped by another identity; an unknown client-chosen
// id makes no session; the owner and an administrator may stop.
func TestHijackRefused(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	alice, mallory, admin := peerWithCert(t, "alice"), peerWithCert(t, "mallory"), peerWithCert(t, "admin")
	_, adminFP := smtls.PeerIdentity(admin.TLS)
	ts.admins[mustNormalize(t, strings.ToLower(strings.ReplaceAll(adminFP, ":", "")))] = true
	ctx := context.Background()
	st, err := ts.StartMonitor(ctx, alice, &startReq)
	if err != nil {
		t.Fatal(err)
	}
	hijack := startReq
	hijack.Session, hijack.Supervisor = st.Session, "10.9.9.9:42228"
	if _, err := ts.StartMonitor(ctx, mallory, &hijack); !isCode(err, relay.CodeUnauthorized) {
		t.Fatalf("re-assertion by another identity: %v, want unauthorized", err)
	}
	if _, err := ts.StopMonitor(ctx, mallory, &relay.StopMonitor{Session: st.Session}); !isCode(err, relay.CodeUnauthorized) {
		t.Fatalf("stop by another identity: %v, want unauthorized", err)
	}
	chosen := startReq
	chosen.Session = "my-own-id"
	if _, err := ts.StartMonitor(ctx, alice, &chosen); !isCode(err, relay.CodeUnknown) {
		t.Fatalf("client-chosen new id: %v, want unknown-session", err)
	}
	if ss := ts.filter.Sessions(); len(ss) != 1 || ss[0].Supervisor != startReq.Supervisor || ss[0].ID != st.Session {
		t.Fatalf("sessions %v, want alice's untouched", ss)
	}
	// The owner re-asserts.
	own := startReq
	own.Session = st.Session
	if got, err := ts.StartMonitor(ctx, alice, &own); err != nil || got.Session != st.Session {
		t.Fatalf("re-assertion by the owner: %+v, %v", got, err)
	}
	// An administrator stops; a second session is stopped by its owner.
	if _, err := ts.StopMonitor(ctx, admin, &relay.StopMonitor{Session: st.Session}); err != nil {
		t.Fatalf("stop by an administrator: %v", err)
	}
	st2, err := ts.StartMonitor(ctx, alice, &startReq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.StopMonitor(ctx, alice, &relay.StopMonitor{Session: st2.Session}); err != nil {
		t.Fatalf("stop by the owner: %v", err)
	}
	// The owner's repeated stop is answered truthfully; mallory's is not
	// told anything.
	if got, err := ts.StopMonitor(ctx, alice, &relay.StopMonitor{Session: st2.Session, Retry: true}); err != nil || got.State != relay.SessionStopped || !got.AlreadyStopped {
		t.Fatalf("repeated stop by the owner: %+v, %v", got, err)
	}
	if _, err := ts.StopMonitor(ctx, mallory, &relay.StopMonitor{Session: st2.Session}); !isCode(err, relay.CodeUnknown) {
		t.Fatalf("stop of a stopped session by another identity: %v, want unknown-session", err)
	}
	var refused []string
	for _, l := range ts.auditLines(t) {
		if l.Result == audit.ResultRefused {
			if !strings.Contains(l.ClientSubject, "mallory") && !strings.Contains(l.Reason, "choose") {
				t.Errorf("refused line not mallory's nor the chosen id's: %+v", l)
			}
			if l.Reason == "" {
				t.Errorf("refused line without a reason: %+v", l)
			}
			refused = append(refused, l.Action)
		}
	}
	if strings.Join(refused, ",") != "start,stop,start,stop" {
		t.Fatalf("refused audit lines %v, want start,stop,start,stop", refused)
	}
}

// TestInsecureAnyoneStops: without TLS there is no identity; any client
// may stop any session.
func TestInsecureAnyoneStops(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	ctx := context.Background()
	p := &relay.Peer{}
	st, err := ts.StartMonitor(ctx, p, &startReq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.StopMonitor(ctx, &relay.Peer{}, &relay.StopMonitor{Session: st.Session}); err != nil {
		t.Fatal(err)
	}
}

// TestBadIDsRefused: ids and names from the wire are checked before use;
// a path in a session id makes no file anywhere.
func TestBadIDsRefused(t *testing.T) {
	base := t.TempDir()
	recDir := filepath.Join(base, "rec", "dir")
	ts := newTestServer(t, recDir)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  relay.StartMonitor
	}{
		{"traversal session id", relay.StartMonitor{Session: "x/../../outside/pwned", Agent: "1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9", Record: true}},
		{"dot-dot session id", relay.StartMonitor{Session: "..", Agent: "1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9", Record: true}},
		{"traversal key", relay.StartMonitor{IdempotencyKey: "../k", Agent: "1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9"}},
		{"slash in agent", relay.StartMonitor{Agent: "../../1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9", Record: true}},
		{"long agent", relay.StartMonitor{Agent: strings.Repeat("a", 65), Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9"}},
		{"bad supervisor host", relay.StartMonitor{Agent: "1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "a/b:9"}},
		{"bad supervisor port", relay.StartMonitor{Agent: "1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "sup:99999"}},
		{"negative lifetime", relay.StartMonitor{Agent: "1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9", ForMS: -1}},
		{"lifetime too long", relay.StartMonitor{Agent: "1001", Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9", ForMS: (31 * 24 * time.Hour).Milliseconds()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ts.StartMonitor(ctx, &relay.Peer{}, &tc.req); !isCode(err, relay.CodeBadRequest) {
				t.Fatalf("%v, want bad-request", err)
			}
		})
	}
	if _, err := ts.StopMonitor(ctx, &relay.Peer{}, &relay.StopMonitor{Session: "x/../../outside/pwned"}); !isCode(err, relay.CodeBadRequest) {
		t.Fatalf("stop of a path: %v, want bad-request", err)
	}
	if n := len(ts.filter.Sessions()); n != 0 {
		t.Fatalf("%d sessions made", n)
	}
	filepath.WalkDir(base, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("file made: %s", path)
		}
		return nil
	})
	for _, l := range ts.auditLines(t) {
		if l.Result != audit.ResultRefused || strings.Contains(l.SessionID, "/") {
			t.Errorf("audit line %+v", l)
		}
	}
}

// TestLifetime: for_ms sets Until on the accepting server.
func TestLifetime(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	req := startReq
	req.ForMS = (8 * time.Hour).Milliseconds()
	before := time.Now()
	st, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &req)
	if err != nil {
		t.Fatal(err)
	}
	sess, _ := ts.filter.Session(st.Session)
	if d := sess.Until.Sub(before); d < 8*time.Hour || d > 8*time.Hour+time.Minute {
		t.Fatalf("Until %v is %v after the request, want 8h", sess.Until, d)
	}
	if st.Until == "" || sess.Started.IsZero() {
		t.Fatalf("reply %+v, session %+v", st, sess)
	}
}

// TestRecordUnusable: a start with --record is refused (and audited
// refused) when the record directory cannot take a file.
func TestRecordUnusable(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	readOnly := filepath.Join(base, "ro")
	os.Mkdir(readOnly, 0o500)
	t.Cleanup(func() { os.Chmod(readOnly, 0o700) })
	for _, tc := range []struct{ name, dir, want string }{
		{"not a directory", file, "not a directory"},
		{"under a file", filepath.Join(file, "rec"), "cannot be made"},
		{"not writable", readOnly, "not writable"},
		{"none", "", "no record directory"},
		{"read-only file system", "/proc", "not writable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "not writable" && os.Geteuid() == 0 {
				t.Skip("root writes to a 0500 directory")
			}
			ts := newTestServer(t, tc.dir)
			req := startReq
			req.Record = true
			_, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &req)
			if !isCode(err, relay.CodeBadRequest) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want bad-request saying %q", err, tc.want)
			}
			if n := len(ts.filter.Sessions()); n != 0 {
				t.Fatalf("%d sessions made", n)
			}
			lines := ts.auditLines(t)
			if len(lines) != 1 || lines[0].Result != audit.ResultRefused || !strings.Contains(lines[0].Reason, tc.want) {
				t.Fatalf("audit %+v, want one refused start", lines)
			}
			// Without --record the same member takes the session.
			if _, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &startReq); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRecordFailureShown: a recording whose writes fail is logged once,
// counted, and shown failed in status with the reason.
func TestRecordFailureShown(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	req := startReq
	req.Record = true
	st, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &req)
	if err != nil {
		t.Fatal(err)
	}
	rec := ts.rec.get(st.Session)
	if rec == nil {
		t.Fatal("no recorder")
	}
	if got := ts.rec.states()[st.Session]; got != "ok" {
		t.Fatalf("state %q, want ok", got)
	}
	rec.mu.Lock()
	rec.f.Close() // the next write fails, as on a full or lost disk
	rec.mu.Unlock()
	frame := make([]byte, 60)
	for i := 0; i < 3; i++ {
		rec.write(frame, capture.LinkEthernet, &capture.Info{Timestamp: time.Now(), Length: len(frame)})
	}
	if n := ts.rec.failures.Load(); n != 1 {
		t.Fatalf("failures %d, want 1", n)
	}
	var found bool
	for _, x := range ts.status().Sessions {
		if x.ID == st.Session {
			found = true
			if !strings.HasPrefix(x.RecordingState, "failed: ") {
				t.Fatalf("status recording %q, want failed with the reason", x.RecordingState)
			}
		}
	}
	if !found {
		t.Fatal("session not in status")
	}
}
