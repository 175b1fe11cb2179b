package relay

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	smtls "github.com/silentmon/silentmon/tls"
)

// connEvents records a Forwarder's OnConnect and OnDisconnect calls.
type connEvents struct {
	mu     sync.Mutex
	events []string // "up ADDR SUBJECT FINGERPRINT" or "down ADDR ERR"
}

func (e *connEvents) up(addr string, cs *tls.ConnectionState) {
	subject, fp := smtls.PeerIdentity(cs)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, "up "+addr+" "+subject+" "+fp)
}

func (e *connEvents) down(addr string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	why := "<nil>"
	if err != nil {
		why = "error"
	}
	e.events = append(e.events, "down "+addr+" "+why)
}

func (e *connEvents) list() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.events...)
}

// serverIdentity returns the subject and fingerprint of the server
// certificate in a quickstart directory.
func serverIdentity(t *testing.T, dir string) (string, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, smtls.ServerFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.Subject.String(), smtls.Fingerprint(c.Raw)
}

// TestForwarderConnectHooks: OnConnect sees the supervisor's real
// certificate (quickstart set), OnDisconnect follows when the supervisor
// goes, and UnreachableSince is zero while connected and the time of the
// loss afterwards (injected clock).
func TestForwarderConnectHooks(t *testing.T) {
	dir := t.TempDir()
	if err := smtls.Quickstart(dir, smtls.QuickstartOptions{}); err != nil {
		t.Fatal(err)
	}
	scfg, err := smtls.ServerConfig(dir, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := smtls.ClientConfig(dir, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := NewServer(ServerConfig{Handler: &testHandler{}, Logger: quiet(), Role: RoleSupervisor})
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(tls.NewListener(ln, scfg)) }()

	var mu sync.Mutex
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ev := &connEvents{}
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Dial: DialConfig{TLS: ccfg}, Now: clock,
		OnConnect: ev.up, OnDisconnect: ev.down, HeartbeatInterval: 50 * time.Millisecond, HeartbeatRetries: 2})
	defer fw.Close()
	fw.Reach(addr)
	waitFor(t, "the connection", func() bool { return len(ev.list()) == 1 })
	subject, fp := serverIdentity(t, dir)
	if got, want := ev.list()[0], "up "+addr+" "+subject+" "+fp; got != want {
		t.Fatalf("OnConnect: %q, want %q", got, want)
	}
	if st := fw.Stats(); len(st) != 1 || st[0].State != "connected" || !st[0].UnreachableSince.IsZero() {
		t.Fatalf("stats while connected: %+v", st)
	}
	advance(time.Minute)
	lost := clock()
	srv.Close()
	<-done
	waitFor(t, "the disconnection", func() bool { return len(ev.list()) == 2 })
	if got := ev.list()[1]; got != "down "+addr+" error" {
		t.Fatalf("OnDisconnect: %q", got)
	}
	advance(time.Minute)
	if st := fw.Stats(); !st[0].UnreachableSince.Equal(lost) {
		t.Fatalf("unreachable since %v, want %v (the loss)", st[0].UnreachableSince, lost)
	}
	// Failed dials keep the first time.
	time.Sleep(100 * time.Millisecond)
	if st := fw.Stats(); !st[0].UnreachableSince.Equal(lost) || st[0].State == "connected" {
		t.Fatalf("after failed dials: %+v", st[0])
	}
}

// TestForwarderUnreachableFromFirstDial: a supervisor never reached is
// unreachable since the sender was made; Retain closing a connection that
// was up reports a nil error.
func TestForwarderUnreachableFromFirstDial(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ev := &connEvents{}
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Now: func() time.Time { return t0 }, OnConnect: ev.up, OnDisconnect: ev.down})
	defer fw.Close()
	dead := blackholeAddr(t)
	fw.Reach(dead)
	fw.Reach(dead) // once
	if st := fw.Stats(); len(st) != 1 || !st[0].UnreachableSince.Equal(t0) {
		t.Fatalf("stats: %+v", st)
	}

	_, addr := startServer(t, &testHandler{}, ServerConfig{Role: RoleSupervisor})
	fw.Reach(addr)
	waitFor(t, "the connection", func() bool { return len(ev.list()) == 1 })
	fw.Retain(nil)
	waitFor(t, "the close", func() bool { return len(ev.list()) == 2 })
	if got := ev.list(); got[0] != "up "+addr+"  " || got[1] != "down "+addr+" <nil>" {
		t.Fatalf("events %q", got)
	}
	if len(fw.Stats()) != 0 {
		t.Fatalf("Retain(nil) left %+v", fw.Stats())
	}
}

// blackholeAddr returns an address where nothing listens.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
