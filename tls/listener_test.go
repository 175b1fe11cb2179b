package tls

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestLockoutRules(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	b := netip.MustParseAddr("192.0.2.2")
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	tests := []struct {
		name   string
		run    func(lo *Lockout, clk *fakeClock)
		src    netip.Addr
		locked bool
	}{
		{"two failures allowed", func(lo *Lockout, _ *fakeClock) { lo.Fail(a); lo.Fail(a) }, a, false},
		{"three failures lock", func(lo *Lockout, _ *fakeClock) { lo.Fail(a); lo.Fail(a); lo.Fail(a) }, a, true},
		{"mapped address is the same source", func(lo *Lockout, _ *fakeClock) { lo.Fail(a); lo.Fail(mapped); lo.Fail(a) }, mapped, true},
		{"other source unaffected", func(lo *Lockout, _ *fakeClock) { lo.Fail(a); lo.Fail(a); lo.Fail(a) }, b, false},
		{"success resets the count", func(lo *Lockout, _ *fakeClock) { lo.Fail(a); lo.Fail(a); lo.Succeed(a); lo.Fail(a); lo.Fail(a) }, a, false},
		{"lockout ends after duration", func(lo *Lockout, c *fakeClock) {
			lo.Fail(a)
			lo.Fail(a)
			lo.Fail(a)
			c.Advance(15 * time.Minute)
		}, a, false},
		{"lockout holds just before the end", func(lo *Lockout, c *fakeClock) {
			lo.Fail(a)
			lo.Fail(a)
			lo.Fail(a)
			c.Advance(15*time.Minute - time.Second)
		}, a, true},
		{"success does not lift a lockout", func(lo *Lockout, _ *fakeClock) { lo.Fail(a); lo.Fail(a); lo.Fail(a); lo.Succeed(a) }, a, true},
		{"stale failures are forgotten", func(lo *Lockout, c *fakeClock) {
			lo.Fail(a)
			lo.Fail(a)
			c.Advance(16 * time.Minute)
			lo.Fail(a)
		}, a, false},
		{"after a lockout the count starts again", func(lo *Lockout, c *fakeClock) {
			lo.Fail(a)
			lo.Fail(a)
			lo.Fail(a)
			c.Advance(15 * time.Minute)
			lo.Allow(a)
			lo.Fail(a)
		}, a, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			lo := NewLockout(LockoutConfig{Clock: clk})
			tc.run(lo, clk)
			err := lo.Allow(tc.src)
			if got := errors.Is(err, ErrLockedOut); got != tc.locked {
				t.Fatalf("locked = %v (%v), want %v", got, err, tc.locked)
			}
		})
	}
}

func TestLockoutConfigurableAndBounded(t *testing.T) {
	clk := newFakeClock()
	lo := NewLockout(LockoutConfig{Threshold: 5, Duration: time.Minute, Clock: clk, MaxSources: 4})
	a := netip.MustParseAddr("2001:db8::1")
	for i := 0; i < 4; i++ {
		if lo.Fail(a) {
			t.Fatalf("locked after %d failures, threshold 5", i+1)
		}
	}
	if !lo.Fail(a) {
		t.Fatal("not locked after 5 failures")
	}
	for i := 0; i < 100; i++ {
		lo.Fail(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	lo.mu.Lock()
	n := len(lo.m)
	lo.mu.Unlock()
	if n > 4 {
		t.Fatalf("tracking %d sources, bound 4", n)
	}
	clk.Advance(time.Minute)
	if err := lo.Allow(a); err != nil {
		t.Fatalf("after the 1-minute lockout: %v", err)
	}
	if st := lo.Stats(); st.Lockouts != 1 || st.Failures != 105 {
		t.Fatalf("stats %+v, want 1 lockout and 105 failures", st)
	}
}

// listenerSetup is a Listener on a loopback port over a fresh quickstart
// set, with an accept loop that answers one byte per accepted connection.
type listenerSetup struct {
	ln      *Listener
	dir     string
	good    *tls.Config
	noCert  *tls.Config
	clock   *fakeClock // the lockout's
	lockout *Lockout
}

// listen starts a Listener on a loopback port with the server
// configuration of the quickstart directory dir; the test's clean-up
// closes it.
func listen(t *testing.T, dir string, lo *Lockout, opts ListenOptions) *Listener {
	t.Helper()
	scfg, _, _ := configs(t, dir)
	return listenWith(t, scfg, lo, opts)
}

func listenWith(t *testing.T, scfg *tls.Config, lo *Lockout, opts ListenOptions) *Listener {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := ListenWith(inner, scfg, lo, opts)
	t.Cleanup(func() { ln.Close() })
	return ln
}

func newListenerSetup(t *testing.T, threshold int) *listenerSetup {
	t.Helper()
	return newListenerSetupWith(t, LockoutConfig{Threshold: threshold}, ListenOptions{HandshakeTimeout: 2 * time.Second}, Options{})
}

// newListenerSetupWith is newListenerSetup with the lockout's
// configuration (its Clock is the setup's fake clock), the listener's
// options, the options of ServerConfig, and changes to its result.
func newListenerSetupWith(t *testing.T, lcfg LockoutConfig, opts ListenOptions, sopts Options, adjust ...func(*tls.Config)) *listenerSetup {
	t.Helper()
	dir := quickDir(t, QuickstartOptions{})
	_, ccfg, noCert := configs(t, dir)
	scfg, err := ServerConfig(dir, sopts)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range adjust {
		f(scfg)
	}
	clk := newFakeClock()
	lcfg.Clock = clk
	lo := NewLockout(lcfg)
	ln := listenWith(t, scfg, lo, opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if _, ok := c.(*tls.Conn); !ok {
				panic("Accept returned a non-TLS connection")
			}
			c.Write([]byte{'A'})
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return &listenerSetup{ln: ln, dir: dir, good: ccfg, noCert: noCert, clock: clk, lockout: lo}
}

// try dials the listener from localAddr (nil: any) and reports whether
// the server accepted the connection (it answers 'A').
func (s *listenerSetup) try(t *testing.T, cfg *tls.Config, local net.Addr) bool {
	t.Helper()
	b, err := dialRead(cfg, s.ln.Addr().String(), local)
	return err == nil && b == 'A'
}

func TestListenerLockout(t *testing.T) {
	s := newListenerSetup(t, 0)
	if !s.try(t, s.good, nil) {
		t.Fatal("good client refused")
	}
	for i := 0; i < 3; i++ {
		if s.try(t, s.noCert, nil) {
			t.Fatalf("client without certificate accepted (attempt %d)", i+1)
		}
	}
	waitFor(t, func() bool { return s.lockout.Stats().Locked == 1 })
	if s.try(t, s.good, nil) {
		t.Fatal("good client accepted from a locked-out source")
	}
	// Another source (127.0.0.2 is loopback too) is unaffected.
	other := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	if !s.try(t, s.good, other) {
		t.Fatal("good client from another source refused")
	}
	s.clock.Advance(DefaultLockoutDuration)
	if !s.try(t, s.good, nil) {
		t.Fatal("good client refused after the lockout ended")
	}
	st := s.ln.Stats()
	if st.Failed != 3 || st.Refused != 1 || st.Accepted != 3 {
		t.Fatalf("listener stats %+v, want 3 failed, 1 refused, 3 accepted", st)
	}
}

// A client that connects and sends nothing must not hold up clients from
// other sources. (From its own source it takes one of the handshakes the
// source may have in progress.)
func TestListenerSlowClient(t *testing.T) {
	s := newListenerSetup(t, 0)
	for i := 0; i < 3; i++ {
		c := dialFrom(t, s.ln, loopback(2))
		defer c.Close()
	}
	waitFor(t, func() bool { return s.ln.Stats().InProgress == 3 })
	if !s.try(t, s.good, nil) {
		t.Fatal("good client refused while slow clients wait")
	}
}

func TestListenerThousandWithoutCertificate(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	// A high threshold so every attempt reaches the handshake.
	s := newListenerSetup(t, 1<<20)
	for i := 0; i < 1000; i++ {
		if s.try(t, s.noCert, nil) {
			t.Fatalf("attempt %d without certificate accepted", i)
		}
	}
	waitFor(t, func() bool { return s.ln.Stats().Failed == 1000 })
	if st := s.ln.Stats(); st.Accepted != 0 {
		t.Fatalf("stats %+v: connections without certificate were accepted", st)
	}
	s.ln.Close()
}

func TestListenerCloseEndsAccept(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ln := listen(t, quickDir(t, QuickstartOptions{}), nil, ListenOptions{})
	// A silent client mid-handshake must not delay Close.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() { _, err := ln.Accept(); errc <- err }()
	time.Sleep(20 * time.Millisecond)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCollectorAfterLockout(t *testing.T) {
	s := newListenerSetup(t, 0)
	for i := 0; i < 3; i++ {
		s.try(t, s.noCert, nil)
	}
	waitFor(t, func() bool { return s.lockout.Stats().Locked == 1 })
	s.try(t, s.good, nil)
	probe := dialFrom(t, s.ln, loopback(2))
	probe.Close()
	waitFor(t, func() bool { return s.ln.Stats().Probes == 1 })
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(s.lockout, s.ln))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			v := m.GetCounter().GetValue()
			if m.GetGauge() != nil {
				v = m.GetGauge().GetValue()
			}
			got[name] = v
		}
	}
	want := map[string]float64{
		"silentmon_tls_accepted_total":                       0,
		"silentmon_tls_auth_failures_total{no_certificate}":  3,
		"silentmon_tls_auth_failures_total{unknown_ca}":      0,
		"silentmon_tls_auth_failures_total{expired}":         0,
		"silentmon_tls_auth_failures_total{bad_certificate}": 0,
		"silentmon_tls_auth_failures_total{wrong_role}":      0,
		"silentmon_tls_refused_total{locked}":                1,
		"silentmon_tls_refused_total{source_limit}":          0,
		"silentmon_tls_refused_total{total_limit}":           0,
		"silentmon_tls_refused_total{table_full}":            0,
		"silentmon_tls_probes_total{closed_before_hello}":    1,
		"silentmon_tls_probes_total{not_tls}":                0,
		"silentmon_tls_handshake_errors_total{peer_alert}":   0,
		"silentmon_tls_handshake_errors_total{aborted}":      0,
		"silentmon_tls_handshake_errors_total{timeout}":      0,
		"silentmon_tls_handshake_errors_total{protocol}":     0,
		"silentmon_tls_handshakes_in_progress":               0,
		"silentmon_tls_lockouts_total":                       1,
		"silentmon_tls_locked_sources":                       1,
		"silentmon_tls_tracked_sources":                      1,
		"silentmon_tls_lockout_table_full_total":             0,
	}
	if len(got) != len(want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// loopback returns the address 127.0.0.n: every address of 127.0.0.0/8
// is local on Linux, so tests can dial from several sources.
func loopback(n byte) *net.TCPAddr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, n)} }

// dialFrom opens a plain TCP connection to ln from local (nil: any); the
// test's clean-up closes it.
func dialFrom(t *testing.T, ln *Listener, local *net.TCPAddr) *net.TCPConn {
	t.Helper()
	var d net.Dialer
	if local != nil {
		d.LocalAddr = local
	}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// closedByServer reports whether the server closed c: a read returns an
// error other than the 10 s deadline.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	_, err := c.Read(b[:])
	return err != nil && !errors.Is(err, os.ErrDeadlineExceeded)
}

// clientHello returns the first record a crypto/tls client sends: its
// ClientHello.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tls.Client(a, &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12}).Handshake()
	}()
	defer func() { a.Close(); b.Close(); <-done }()
	hdr := make([]byte, 5)
	if _, err := io.ReadFull(b, hdr); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	if _, err := io.ReadFull(b, body); err != nil {
		t.Fatal(err)
	}
	return append(hdr, body...)
}

// outcomes sums every terminal counter: each connection ends in one.
func outcomes(st ListenerStats) uint64 {
	return st.Accepted + st.Failed + st.Refused + st.Probes + st.NotTLS +
		st.PeerAlerts + st.Aborted + st.Timeouts + st.ProtocolErrors
}

// Connections closed with RST or FIN before a whole ClientHello (port
// scans, load-balancer health checks) are probes: never counted, so they
// cannot lock their source out.
func TestProbeNotCounted(t *testing.T) {
	s := newListenerSetup(t, 0)
	hello := clientHello(t)
	var n uint64
	for i := 0; i < 10; i++ {
		for _, how := range []string{"RST", "FIN", "FIN after part of a ClientHello", "RST after part of a ClientHello"} {
			c := dialFrom(t, s.ln, nil)
			// The server has accepted it and waits for the ClientHello.
			waitFor(t, func() bool { return s.ln.Stats().InProgress == 1 })
			if strings.Contains(how, "part") {
				if _, err := c.Write(hello[:len(hello)/2]); err != nil {
					t.Fatal(err)
				}
			}
			if strings.HasPrefix(how, "RST") {
				c.SetLinger(0)
			}
			c.Close()
			n++
			waitFor(t, func() bool { st := s.ln.Stats(); return st.Probes == n && st.InProgress == 0 })
		}
	}
	if st := s.ln.Stats(); st.Failed != 0 || outcomes(st) != n {
		t.Fatalf("listener stats %+v, want %d probes and nothing else", st, n)
	}
	if st := s.lockout.Stats(); st.Failures != 0 || st.Locked != 0 {
		t.Fatalf("lockout stats %+v: probes were counted as failed authentications", st)
	}
	if !s.try(t, s.good, nil) {
		t.Fatal("good client refused after probes from its address")
	}
}

// Bytes that are not TLS are counted apart and never lock.
func TestListenerNotTLS(t *testing.T) {
	s := newListenerSetup(t, 1)
	for i := uint64(1); i <= 5; i++ {
		c := dialFrom(t, s.ln, nil)
		if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		if !closedByServer(c) {
			t.Fatal("plaintext connection left open")
		}
		waitFor(t, func() bool { return s.ln.Stats().NotTLS == i })
	}
	if st := s.lockout.Stats(); st.Failures != 0 {
		t.Fatalf("lockout stats %+v: plaintext counted as failed authentication", st)
	}
	if !s.try(t, s.good, nil) {
		t.Fatal("good client refused after plaintext from its address")
	}
}

// A client that refuses our certificate ends the handshake with an alert:
// that is not a failed authentication of the client (it is what a capture
// server does when told to dial an address our certificate does not
// name), so it must not lock the client's address out.
func TestPeerAlertNotCounted(t *testing.T) {
	s := newListenerSetup(t, 0)
	_, foreign, _ := configs(t, quickDir(t, QuickstartOptions{}))
	untrusting := s.good.Clone()
	untrusting.RootCAs = foreign.RootCAs // does not trust our CA
	wrongName := s.good.Clone()
	wrongName.ServerName = "not-this-server.example.net" // our certificate does not name it
	for _, cfg := range []*tls.Config{untrusting, wrongName} {
		for i := 0; i < 10; i++ {
			if s.try(t, cfg, nil) {
				t.Fatal("a client that refuses our certificate was accepted")
			}
		}
	}
	waitFor(t, func() bool { return s.ln.Stats().PeerAlerts == 20 })
	if st := s.ln.Stats(); st.Failed != 0 {
		t.Fatalf("listener stats %+v: peer alerts counted as failures", st)
	}
	if st := s.lockout.Stats(); st.Failures != 0 || st.Locked != 0 {
		t.Fatalf("lockout stats %+v: the client's alerts were counted", st)
	}
	if !s.try(t, s.good, nil) {
		t.Fatal("good client refused after alerts from its address")
	}
}

// The lockout counts each way a client certificate can fail, under its
// reason.
func TestAuthFailureReasons(t *testing.T) {
	_, foreign, _ := configs(t, quickDir(t, QuickstartOptions{}))
	tests := []struct {
		name   string
		client func(s *listenerSetup) *tls.Config
		before func(serverClock *fakeClock)
		count  func(ListenerStats) uint64
		adjust func(*tls.Config)
	}{
		{"no certificate", func(s *listenerSetup) *tls.Config { return s.noCert }, nil,
			func(st ListenerStats) uint64 { return st.NoCertificate }, nil},
		{"another CA", func(s *listenerSetup) *tls.Config {
			c := s.good.Clone()
			c.Certificates = foreign.Certificates
			return c
		}, nil, func(st ListenerStats) uint64 { return st.UnknownCA }, nil},
		{"expired", func(s *listenerSetup) *tls.Config { return s.good },
			func(c *fakeClock) { c.Advance(20 * 365 * 24 * time.Hour) },
			func(st ListenerStats) uint64 { return st.Expired }, nil},
		{"refused by the configuration's role check", func(s *listenerSetup) *tls.Config { return s.good }, nil,
			func(st ListenerStats) uint64 { return st.WrongRole },
			func(c *tls.Config) {
				c.VerifyConnection = func(tls.ConnectionState) error { return errors.New("not the role this link needs") }
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			serverClock := newFakeClock()
			var adjust []func(*tls.Config)
			if tc.adjust != nil {
				adjust = append(adjust, tc.adjust)
			}
			type report struct{ subject, reason string }
			reports := make(chan report, 4)
			opts := ListenOptions{OnAuthFailure: func(src net.Addr, subject, reason string, err error) {
				reports <- report{subject, reason}
			}}
			s := newListenerSetupWith(t, LockoutConfig{Threshold: 1}, opts, Options{Clock: serverClock}, adjust...)
			if tc.before != nil {
				tc.before(serverClock)
			}
			if s.try(t, tc.client(s), nil) {
				t.Fatal("accepted")
			}
			waitFor(t, func() bool { return s.ln.Stats().Failed == 1 })
			if st := s.ln.Stats(); tc.count(st) != 1 {
				t.Fatalf("listener stats %+v: not counted under its reason", st)
			}
			if err := s.lockout.Allow(netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrLockedOut) {
				t.Fatalf("threshold 1, one failure: %v, want locked out", err)
			}
			// Reported once, with the reason; the subject only when the
			// certificate got past the CA check.
			select {
			case r := <-reports:
				if r.reason == "" || (tc.name == "refused by the configuration's role check") != strings.Contains(r.subject, "CN=") {
					t.Errorf("reported %+v", r)
				}
				t.Logf("reported %+v", r)
			case <-time.After(5 * time.Second):
				t.Fatal("OnAuthFailure not called")
			}
		})
	}
}

// 60 simultaneous handshakes without a certificate from one address: the
// handshakes in progress are capped at the failures the source has left,
// so no more than the threshold reach TLS and are counted.
func TestConcurrentBadHandshakesCapped(t *testing.T) {
	s := newListenerSetup(t, 0)
	const n = 60
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			dialRead(s.noCert, s.ln.Addr().String(), nil)
		}()
	}
	close(start)
	wg.Wait()
	waitFor(t, func() bool { st := s.ln.Stats(); return st.InProgress == 0 && outcomes(st) == n })
	st := s.ln.Stats()
	if st.Failed > DefaultLockoutThreshold || st.Accepted != 0 {
		t.Fatalf("listener stats %+v: more than %d handshakes reached TLS", st, DefaultLockoutThreshold)
	}
	if lst := s.lockout.Stats(); lst.Failures > DefaultLockoutThreshold || lst.Locked != 1 {
		t.Fatalf("lockout stats %+v, want at most %d failures and the source locked", lst, DefaultLockoutThreshold)
	}
	if st.RefusedLocked+st.RefusedSourceLimit < n-DefaultLockoutThreshold {
		t.Fatalf("listener stats %+v: the extra connections were not refused at once", st)
	}
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// logger.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// VerifyPeer refuses a verified certificate (wrong role): the connection
// is closed, logged once, and counted against its source.
func TestVerifyPeerCounted(t *testing.T) {
	var logs syncBuffer
	var calls atomic.Int32
	verify := func(cs *tls.ConnectionState) error {
		calls.Add(1)
		if len(cs.VerifiedChains) == 0 {
			return errors.New("VerifyPeer called without a verified chain")
		}
		return errors.New("the certificate does not carry the role this link needs")
	}
	s := newListenerSetupWith(t, LockoutConfig{}, ListenOptions{
		VerifyPeer: verify,
		Logger:     slog.New(slog.NewTextHandler(&logs, nil)),
	}, Options{})
	for i := 0; i < DefaultLockoutThreshold; i++ {
		if s.try(t, s.good, nil) {
			t.Fatal("a connection VerifyPeer refused was accepted")
		}
	}
	waitFor(t, func() bool { return s.lockout.Stats().Locked == 1 })
	if s.try(t, s.good, nil) {
		t.Fatal("accepted from a locked-out source")
	}
	st := s.ln.Stats()
	if st.WrongRole != DefaultLockoutThreshold || st.Failed != DefaultLockoutThreshold || st.Accepted != 0 || st.RefusedLocked != 1 {
		t.Fatalf("listener stats %+v, want %d wrong-role failures and 1 refusal", st, DefaultLockoutThreshold)
	}
	if calls.Load() != DefaultLockoutThreshold {
		t.Fatalf("VerifyPeer called %d times, want %d", calls.Load(), DefaultLockoutThreshold)
	}
	var lines int
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "refused after its certificate was verified") {
			lines++
			if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "source=127.0.0.1:") || !strings.Contains(l, "does not carry the role") {
				t.Errorf("log line %q lacks the level, the source or the error", l)
			}
		}
	}
	if lines != DefaultLockoutThreshold {
		t.Fatalf("%d log lines for %d refusals:\n%s", lines, DefaultLockoutThreshold, logs.String())
	}
}

// A source may have MaxHandshakesPerSource handshakes in progress; more
// are closed at once, and other sources are unaffected.
func TestListenerPerSourceLimit(t *testing.T) {
	s := newListenerSetupWith(t, LockoutConfig{Threshold: 1 << 20},
		ListenOptions{HandshakeTimeout: time.Minute, MaxHandshakesPerSource: 2}, Options{})
	var silent []*net.TCPConn
	for i := 1; i <= 5; i++ {
		c := dialFrom(t, s.ln, loopback(2))
		waitFor(t, func() bool { st := s.ln.Stats(); return uint64(st.InProgress)+st.Refused == uint64(i) })
		silent = append(silent, c)
	}
	if st := s.ln.Stats(); st.InProgress != 2 || st.RefusedSourceLimit != 3 {
		t.Fatalf("listener stats %+v, want 2 in progress and 3 refused for the source limit", st)
	}
	for _, c := range silent[2:] {
		if !closedByServer(c) {
			t.Fatal("a connection beyond the source's limit was left open")
		}
	}
	if !s.try(t, s.good, loopback(3)) {
		t.Fatal("good client from another source refused")
	}
	if s.try(t, s.good, loopback(2)) {
		t.Fatal("a third handshake from the busy source was let through")
	}
	silent[0].Close()
	waitFor(t, func() bool { return s.ln.Stats().InProgress == 1 })
	if !s.try(t, s.good, loopback(2)) {
		t.Fatal("good client refused once its source had room")
	}
}

// MaxHandshakes bounds the handshakes in progress from all sources; a
// connection beyond it is closed at once.
func TestListenerTotalLimit(t *testing.T) {
	s := newListenerSetupWith(t, LockoutConfig{},
		ListenOptions{HandshakeTimeout: time.Minute, MaxHandshakes: 3}, Options{})
	var silent []*net.TCPConn
	for i := byte(2); i <= 4; i++ {
		silent = append(silent, dialFrom(t, s.ln, loopback(i)))
	}
	waitFor(t, func() bool { return s.ln.Stats().InProgress == 3 })
	extra := dialFrom(t, s.ln, loopback(5))
	if !closedByServer(extra) {
		t.Fatal("a connection beyond MaxHandshakes was left open")
	}
	if st := s.ln.Stats(); st.RefusedTotalLimit != 1 || st.Refused != 1 {
		t.Fatalf("listener stats %+v, want 1 refusal for the total limit", st)
	}
	silent[0].Close()
	waitFor(t, func() bool { return s.ln.Stats().InProgress == 2 })
	if !s.try(t, s.good, loopback(5)) {
		t.Fatal("good client refused once a handshake slot was free")
	}
}

// When the lockout's table is full, a new source is refused; the locked
// source stays locked.
func TestListenerTableFull(t *testing.T) {
	s := newListenerSetupWith(t, LockoutConfig{MaxSources: 2},
		ListenOptions{HandshakeTimeout: time.Minute}, Options{})
	for i := 0; i < DefaultLockoutThreshold; i++ {
		s.try(t, s.noCert, loopback(2))
	}
	waitFor(t, func() bool { return s.lockout.Stats().Locked == 1 })
	silent := dialFrom(t, s.ln, loopback(3)) // the second entry
	waitFor(t, func() bool { return s.ln.Stats().InProgress == 1 })
	if s.try(t, s.good, loopback(4)) {
		t.Fatal("a new source was let in with the table full")
	}
	if s.try(t, s.good, loopback(2)) {
		t.Fatal("the locked source was let in")
	}
	st := s.ln.Stats()
	if st.RefusedTableFull != 1 || st.RefusedLocked != 1 {
		t.Fatalf("listener stats %+v, want 1 table-full and 1 locked refusal", st)
	}
	silent.Close()
	waitFor(t, func() bool { return s.ln.Stats().Probes == 1 })
	if !s.try(t, s.good, loopback(4)) {
		t.Fatal("good client refused once the table had room")
	}
	if err := s.lockout.Allow(netip.MustParseAddr("127.0.0.2")); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("the locked source was forgotten: %v", err)
	}
}

// 500 silent connections from a few sources must not delay the login of
// a client from another source: each source keeps at most its allowance
// of handshakes in progress, the rest are closed at once. The deadline is
// a minute, so only the caps can make room.
func TestSilentFloodDoesNotDelayOthers(t *testing.T) {
	s := newListenerSetupWith(t, LockoutConfig{}, ListenOptions{HandshakeTimeout: time.Minute}, Options{})
	const n, sources = 500, 5
	for i := 0; i < n; i++ {
		dialFrom(t, s.ln, loopback(byte(2+i%sources)))
	}
	waitFor(t, func() bool { st := s.ln.Stats(); return uint64(st.InProgress)+st.Refused == n })
	if st := s.ln.Stats(); st.InProgress != sources*DefaultLockoutThreshold {
		t.Fatalf("listener stats %+v, want %d handshakes in progress", st, sources*DefaultLockoutThreshold)
	}
	if !s.try(t, s.good, loopback(1)) {
		t.Fatal("good client did not complete its login during the flood")
	}
}

// The handshake deadline covers a client that sends nothing and one that
// trickles its ClientHello; neither is a failed authentication.
func TestListenerDeadline(t *testing.T) {
	hello := clientHello(t)
	for _, tc := range []struct {
		name  string
		write func(c net.Conn)
	}{
		{"silent", func(net.Conn) {}},
		{"one byte at a time", func(c net.Conn) {
			for _, b := range hello {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo := NewLockout(LockoutConfig{Clock: newFakeClock(), Threshold: 1})
			ln := listen(t, quickDir(t, QuickstartOptions{}), lo, ListenOptions{HandshakeTimeout: 200 * time.Millisecond})
			c := dialFrom(t, ln, nil)
			done := make(chan struct{})
			go func() { defer close(done); tc.write(c) }()
			if !closedByServer(c) {
				t.Fatal("connection still open after the handshake deadline")
			}
			c.Close()
			<-done
			waitFor(t, func() bool { return ln.Stats().Timeouts == 1 })
			if st := ln.Stats(); st.Failed != 0 || outcomes(st) != 1 {
				t.Fatalf("listener stats %+v, want one timeout", st)
			}
			if st := lo.Stats(); st.Failures != 0 {
				t.Fatalf("lockout stats %+v: a timeout counted as failed authentication", st)
			}
		})
	}
}

// A client that sends its ClientHello and closes once it has the server's
// answer, without an alert, never tried a certificate: not counted.
func TestListenerAbortedNotCounted(t *testing.T) {
	s := newListenerSetup(t, 1)
	hello := clientHello(t)
	for i := uint64(1); i <= 3; i++ {
		c := dialFrom(t, s.ln, nil)
		if _, err := c.Write(hello); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		if _, err := io.ReadFull(c, b[:]); err != nil {
			t.Fatalf("no answer to the ClientHello: %v", err)
		}
		c.Close()
		waitFor(t, func() bool { return s.ln.Stats().Aborted == i })
	}
	if st := s.lockout.Stats(); st.Failures != 0 {
		t.Fatalf("lockout stats %+v: abandoned handshakes counted", st)
	}
	if !s.try(t, s.good, nil) {
		t.Fatal("good client refused after abandoned handshakes")
	}
}
