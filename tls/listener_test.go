package tls

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
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

// listenerSetup starts a Listener with a quickstart set and an echo loop
// that answers one byte per accepted connection.
type listenerSetup struct {
	ln      *Listener
	good    *tls.Config
	noCert  *tls.Config
	clock   *fakeClock
	lockout *Lockout
}

// listen starts a Listener on a loopback port with the server
// configuration of the quickstart directory dir; the test's clean-up
// closes it.
func listen(t *testing.T, dir string, lo *Lockout, opts ListenOptions) *Listener {
	t.Helper()
	scfg, _, _ := configs(t, dir)
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
	dir := quickDir(t, QuickstartOptions{})
	_, ccfg, noCert := configs(t, dir)
	clk := newFakeClock()
	lo := NewLockout(LockoutConfig{Clock: clk, Threshold: threshold})
	ln := listen(t, dir, lo, ListenOptions{HandshakeTimeout: 2 * time.Second})
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
	return &listenerSetup{ln: ln, good: ccfg, noCert: noCert, clock: clk, lockout: lo}
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

// A client that connects and sends nothing must not hold up others.
func TestListenerSlowClient(t *testing.T) {
	s := newListenerSetup(t, 0)
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", s.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	start := time.Now()
	if !s.try(t, s.good, nil) {
		t.Fatal("good client refused while slow clients wait")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("good client waited %v behind silent ones", d)
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
		"silentmon_tls_handshakes_total{accepted}": 0,
		"silentmon_tls_handshakes_total{failed}":   3,
		"silentmon_tls_handshakes_total{refused}":  1,
		"silentmon_tls_handshakes_total{probe}":    0,
		"silentmon_tls_auth_failures_total":        3,
		"silentmon_tls_lockouts_total":             1,
		"silentmon_tls_locked_sources":             1,
	}
	if len(got) != len(want) {
		t.Errorf("metrics %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// A silent client that lets the handshake deadline pass is a failed
// authentication; one that closes before sending anything is a probe.
func TestListenerTimeoutAndProbe(t *testing.T) {
	lo := NewLockout(LockoutConfig{Clock: newFakeClock()})
	ln := listen(t, quickDir(t, QuickstartOptions{}), lo, ListenOptions{HandshakeTimeout: 50 * time.Millisecond})
	probe, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	probe.Close()
	waitFor(t, func() bool { return ln.Stats().Probes == 1 })
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, func() bool { return ln.Stats().Failed == 1 })
	if st := lo.Stats(); st.Failures != 1 {
		t.Fatalf("lockout stats %+v, want the timeout counted as one failure", st)
	}
	// The server closed the silent connection.
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := silent.Read(b[:]); err == nil {
		t.Fatal("silent connection still open after the handshake deadline")
	}
}
