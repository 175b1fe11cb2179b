package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
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

	"github.com/silentmon/silentmon/filter"
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

// manualClock is a Clock that moves only when the test fires its next
// wait. Safe for concurrent use.
type manualClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []manualWait
	asked []time.Duration // every wait asked for, in order
}

type manualWait struct {
	at time.Time
	c  chan time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.asked = append(c.asked, d)
	c.waits = append(c.waits, manualWait{at: c.now.Add(d), c: ch})
	return ch
}

// pending returns how many waits have not fired.
func (c *manualClock) pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waits)
}

// waitsAsked returns the waits asked for so far.
func (c *manualClock) waitsAsked() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.asked...)
}

// next returns the time of the earliest pending wait.
func (c *manualClock) next() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var t time.Time
	for _, w := range c.waits {
		if t.IsZero() || w.at.Before(t) {
			t = w.at
		}
	}
	return t
}

// fireNext moves the clock to the earliest pending wait and fires every
// wait due then.
func (c *manualClock) fireNext() {
	at := c.next()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
	var rest []manualWait
	for _, w := range c.waits {
		if w.at.After(at) {
			rest = append(rest, w)
		} else {
			w.c <- at
		}
	}
	c.waits = rest
}

// runFor fires the clock's waits, one sender's at a time, until the next
// would be at or after end.
func (c *manualClock) runFor(t *testing.T, end time.Time) {
	t.Helper()
	for {
		waitFor(t, "the sender to wait", func() bool { return c.pending() == 1 })
		if !c.next().Before(end) {
			return
		}
		c.fireNext()
	}
}

// checkBackoff checks the waits a sender asked for: each at most the cap
// of 30 s, the last ones exactly 30 s (less the jitter).
func checkBackoff(t *testing.T, asked []time.Duration, jitter float64) {
	t.Helper()
	if len(asked) < 10 {
		t.Fatalf("only %d waits: %v", len(asked), asked)
	}
	for _, d := range asked {
		if d > DefaultRetryMax {
			t.Fatalf("a wait of %v, above the cap of %v: %v", d, DefaultRetryMax, asked)
		}
	}
	want := DefaultRetryMax - time.Duration(jitter*float64(DefaultRetryMax/2))
	if last := asked[len(asked)-1]; last != want {
		t.Fatalf("the back-off ends at %v, want %v: %v", last, want, asked)
	}
	for i := 1; i < len(asked); i++ {
		if asked[i] < asked[i-1] {
			t.Fatalf("the back-off shrank from %v to %v: %v", asked[i-1], asked[i], asked)
		}
	}
}

// TestForwarderBackoffDeadSupervisor: 200 sessions pointing at one
// supervisor address where nothing answers make one dialer, whose
// attempts back off exponentially: at most 10 dials in the first 10 s
// (simulated), with the least and the most jitter, and the wait grows to
// the 30 s cap and stays there. (The old forwarder dialed every 500 ms at
// most: 20 and more in 10 s.)
func TestForwarderBackoffDeadSupervisor(t *testing.T) {
	for _, jitter := range []float64{0, 0.999} {
		t.Run(fmt.Sprint("jitter=", jitter), func(t *testing.T) {
			clk := newManualClock()
			fw := NewForwarder(ForwarderConfig{Logger: quiet(), Clock: clk})
			defer fw.Close()
			fw.rand = func() float64 { return jitter }
			var dials atomic.Int32
			fw.dial = func(ctx context.Context, addr string) (net.Conn, error) {
				dials.Add(1)
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
			}
			const dead = "192.0.2.1:42228"
			var sessions []*filter.Session
			for i := range 200 {
				sessions = append(sessions, &filter.Session{ID: fmt.Sprintf("s%03d", i), Agent: "1001", Supervisor: dead})
			}
			fw.Sync(sessions)
			for _, x := range sessions {
				fw.Reach(x.Supervisor)
			}
			start := clk.Now()
			clk.runFor(t, start.Add(10*time.Second))
			n := dials.Load()
			t.Logf("%d dials in 10 s, waits %v", n, clk.waitsAsked())
			if n < 5 || n > 10 {
				t.Fatalf("%d dials in the first 10 s, want 5 to 10", n)
			}
			if st := fw.Stats(); len(st) != 1 || st[0].State != "connecting" || st[0].UnreachableSince.IsZero() {
				t.Fatalf("stats %+v, want one supervisor, unreachable", st)
			}
			clk.runFor(t, start.Add(5*time.Minute))
			checkBackoff(t, clk.waitsAsked(), jitter)
		})
	}
}

// TestForwarderBackoffSurvivesRetain: a connection closed by Retain and
// opened again (sessions stopped and started) keeps the back-off of its
// address: 50 such cycles within one back-off make no new dial.
func TestForwarderBackoffSurvivesRetain(t *testing.T) {
	clk := newManualClock()
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Clock: clk})
	defer fw.Close()
	var dials atomic.Int32
	fw.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	}
	const dead = "192.0.2.1:42228"
	fw.Reach(dead)
	waitFor(t, "the first wait", func() bool { return len(clk.waitsAsked()) == 1 })
	for i := range 50 {
		fw.Retain(nil)
		fw.Reach(dead)
		waitFor(t, "the new sender's wait", func() bool { return len(clk.waitsAsked()) == i+2 })
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d dials, want 1: the back-off must outlive the connection", n)
	}
}

// TestForwarderBackoffHandshakeRefused: a supervisor whose certificate the
// capture server refuses (another CA) is retried with the same back-off:
// at most 10 handshakes in the first 10 s, waits growing to 30 s.
func TestForwarderBackoffHandshakeRefused(t *testing.T) {
	mine, theirs := t.TempDir(), t.TempDir()
	for _, dir := range []string{mine, theirs} {
		if err := smtls.Quickstart(dir, smtls.QuickstartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ccfg, err := smtls.ClientConfig(mine, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := smtls.ServerConfig(theirs, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tls.Server(c, scfg).Handshake()
				c.Close()
			}()
		}
	}()
	defer wg.Wait()
	defer ln.Close()

	clk := newManualClock()
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Clock: clk, Dial: DialConfig{TLS: ccfg}})
	defer fw.Close()
	fw.rand = func() float64 { return 0 }
	fw.Reach(ln.Addr().String())
	start := clk.Now()
	clk.runFor(t, start.Add(10*time.Second))
	if n := accepted.Load(); n < 5 || n > 10 {
		t.Fatalf("%d handshakes in the first 10 s, want 5 to 10", n)
	}
	if st := fw.Stats(); len(st) != 1 || !strings.Contains(st[0].LastError, "certificate") {
		t.Fatalf("stats %+v, want a certificate error", st)
	}
	clk.runFor(t, start.Add(5*time.Minute))
	checkBackoff(t, clk.waitsAsked(), 0)
}

// TestBackoffAfterLinkEnded: after a link to a supervisor ends (the
// service restarts), the waits between attempts stay at most
// RecentRetryMax for RecentlyUp, so it is heard again within about a
// second of its return; then they grow to RetryMax as for an address
// that was never up.
func TestBackoffAfterLinkEnded(t *testing.T) {
	clk := newManualClock()
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Clock: clk})
	defer fw.Close()
	fw.rand = func() float64 { return 0 }
	b := newBackoff()
	b.ended(fw, 3*time.Second) // a short link: counts as a failure
	var waits []time.Duration
	for range 200 {
		now := clk.Now()
		b.mu.Lock()
		wait := b.next.Sub(now)
		b.mu.Unlock()
		if wait > 0 {
			clk.mu.Lock()
			clk.now = now.Add(wait)
			clk.mu.Unlock()
		}
		waits = append(waits, wait)
		b.turn <- struct{}{}
		b.failed(fw)
	}
	var recent, later time.Duration
	for i, w := range waits {
		at := time.Duration(0)
		for _, x := range waits[:i] {
			at += x
		}
		if at < RecentlyUp-RecentRetryMax {
			recent = max(recent, w)
		} else {
			later = max(later, w)
		}
	}
	if recent > RecentRetryMax || recent == 0 {
		t.Errorf("waits in the minute after the link ended reached %v, want at most %v", recent, RecentRetryMax)
	}
	if later != DefaultRetryMax {
		t.Errorf("waits after that reached %v, want %v", later, DefaultRetryMax)
	}
}

// ptHandler records the session notices and media frames a supervisor
// gets, in arrival order: "STATE:SESSION:TYPES" (TYPES as the notice's
// JSON) and "media:SESSION".
type ptHandler struct {
	testHandler
	emu    sync.Mutex
	events []string
}

func (h *ptHandler) Session(p *Peer, n *SessionNotice) error {
	b, _ := json.Marshal(n.PayloadTypes)
	h.emu.Lock()
	h.events = append(h.events, n.State+":"+n.Session+":"+string(b))
	h.emu.Unlock()
	return nil
}

func (h *ptHandler) Media(p *Peer, f *MediaFrame) error {
	h.emu.Lock()
	h.events = append(h.events, "media:"+string(f.Session))
	h.emu.Unlock()
	return h.testHandler.Media(p, f)
}

func (h *ptHandler) snapshot() []string {
	h.emu.Lock()
	defer h.emu.Unlock()
	return append([]string(nil), h.events...)
}

// TestForwarderSendsPayloadTypes: a session's payload types go with its
// started notice; a change is sent in a codecs notice before the next
// media, once; setting the same types again sends nothing; a session
// without types is announced without them.
func TestForwarderSendsPayloadTypes(t *testing.T) {
	h := &ptHandler{}
	_, addr := startServer(t, h, ServerConfig{Role: RoleSupervisor})
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Name: "cap-1"})
	defer fw.Close()
	one := &filter.Session{ID: "one", Agent: "1001", Supervisor: addr}
	two := &filter.Session{ID: "two", Agent: "1002", Supervisor: addr}
	fw.SetPayloadTypes(map[string]map[uint8]string{"one": {96: "G729/8000", 101: "telephone-event/8000"}})
	send := func(from, n int) {
		for i := from; i < from+n; i++ {
			fw.Forward(one, mediaPacket(uint16(i)))
			fw.Forward(two, mediaPacket(uint16(i)))
		}
		waitFor(t, "media", func() bool { return h.count() == 2*(from+n) })
	}
	send(0, 5)
	fw.SetPayloadTypes(map[string]map[uint8]string{"one": {97: "G729/8000", 101: "telephone-event/8000"}, "two": {}})
	send(5, 5)
	fw.SetPayloadTypes(map[string]map[uint8]string{"one": {97: "G729/8000", 101: "telephone-event/8000"}})
	send(10, 5)
	var notices []string
	firstMedia := map[string]int{}
	ev := h.snapshot()
	for i, e := range ev {
		if id, ok := strings.CutPrefix(e, "media:"); ok {
			if _, seen := firstMedia[id]; !seen {
				firstMedia[id] = i
			}
			continue
		}
		notices = append(notices, e)
	}
	want := []string{
		`started:one:{"96":"G729/8000","101":"telephone-event/8000"}`,
		`started:two:{}`,
		`codecs:one:{"97":"G729/8000","101":"telephone-event/8000"}`,
	}
	slices.Sort(want)
	slices.Sort(notices)
	if !slices.Equal(notices, want) {
		t.Fatalf("notices %q, want %q (events %q)", notices, want, ev)
	}
	for _, id := range []string{"one", "two"} {
		if i := slices.IndexFunc(ev, func(e string) bool { return strings.HasPrefix(e, "started:"+id+":") }); i > firstMedia[id] {
			t.Fatalf("session %s announced after its first media: %q", id, ev)
		}
	}
	// The codecs notice comes after the first batch of media and before
	// the second batch's.
	c := slices.Index(ev, want[0])
	if n := strings.Count(strings.Join(ev[:c], " "), "media:one"); n == 0 || c == len(ev)-1 {
		t.Fatalf("codecs notice at %d of %q: want it between the session's media", c, ev)
	}
}
