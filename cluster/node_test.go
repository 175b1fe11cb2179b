package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"

	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/silentmon/silentmon/filter"
)

func TestMain(m *testing.M) {
	if memberMain() || supervisorMain() {
		return
	}
	goleak.VerifyTestMain(m)
}

// trio is three members on loopback with mutual-TLS routes, each seeded
// with one other: A→B, B→C, C→A. Gossip completes the mesh.
type trio struct {
	ca    *testCA
	ports [3]int
	names [3]string
	nodes [3]*Node
	logs  [3]*syncBuffer
	ttl   time.Duration
	// offset is added to the wall clock of every member: the injected
	// cluster clock, advanced by tests.
	offset atomic.Int64
}

func (tr *trio) now() time.Time { return time.Now().Add(time.Duration(tr.offset.Load())) }

func newTrio(t testing.TB, ttl, refresh time.Duration) *trio {
	t.Helper()
	tr := &trio{ca: newTestCA(t, "site CA"), ttl: ttl}
	for i := range 3 {
		tr.ports[i] = freePort(t, "127.0.0.1")
		tr.names[i] = string(rune('A' + i))
	}
	for i := range 3 {
		tr.start(t, i, refresh)
	}
	t.Cleanup(func() {
		for _, n := range tr.nodes {
			if n != nil {
				n.Close()
			}
		}
	})
	return tr
}

func (tr *trio) start(t testing.TB, i int, refresh time.Duration) {
	t.Helper()
	srv, cli := tr.ca.tlsPair(t, "member-"+tr.names[i])
	tr.logs[i] = &syncBuffer{}
	n, err := Start(Config{
		Name:       tr.names[i],
		Listen:     "127.0.0.1:" + strconv.Itoa(tr.ports[i]),
		Peers:      []string{"127.0.0.1:" + strconv.Itoa(tr.ports[(i+1)%3])},
		TLS:        srv,
		ClientTLS:  cli,
		SessionTTL: tr.ttl,
		Refresh:    refresh,
		Logger:     testLogger(t, tr.logs[i]),
		Now:        tr.now,
	})
	if err != nil {
		t.Fatalf("start member %s: %v", tr.names[i], err)
	}
	tr.nodes[i] = n
}

func (tr *trio) waitMesh(t testing.TB) {
	t.Helper()
	waitFor(t, 15*time.Second, "a full mesh of routes", func() bool {
		for _, n := range tr.nodes {
			if n.srv.NumRoutes() != 2 {
				return false
			}
		}
		return true
	})
}

func TestTrioAnnounceWithdraw(t *testing.T) {
	tr := newTrio(t, 3*time.Second, 500*time.Millisecond)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]

	// The mesh is built by gossip: every route is TLS.
	for i, n := range tr.nodes {
		st := n.Status()
		if !st.TLS || len(st.Routes) != 2 {
			t.Fatalf("member %s: TLS %v, %d routes; want TLS with 2 routes", tr.names[i], st.TLS, len(st.Routes))
		}
	}

	notified := make(chan string, 16)
	cancel := c.Subscribe(func(ss []*filter.Session) { notified <- ids(ss) })
	defer cancel()
	if got := <-notified; got != "" {
		t.Fatalf("first notification = %q, want the empty set", got)
	}

	if err := a.Announce(session("s1", "1001", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "s1 on B and C", func() bool { return hasSession(b, "s1") && hasSession(c, "s1") })
	if got := <-notified; got != "s1" {
		t.Fatalf("C notified %q, want s1", got)
	}
	if o, _ := c.Owner("s1"); o != "A" {
		t.Fatalf("owner of s1 on C = %q, want A", o)
	}

	// A stop on a member that does not own the session ends it everywhere
	// within one second.
	start := time.Now()
	if err := b.Withdraw("s1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "s1 gone from A and C", func() bool { return !hasSession(a, "s1") && !hasSession(c, "s1") })
	t.Logf("withdraw on B reached A and C in %v", time.Since(start))

	// The owner's refreshes must not bring it back.
	time.Sleep(1200 * time.Millisecond)
	for i, n := range tr.nodes {
		if hasSession(n, "s1") {
			t.Fatalf("s1 came back on member %s after the withdraw", tr.names[i])
		}
	}
	if err := c.Withdraw("s1"); !errors.Is(err, ErrUnknownSession) {
		t.Fatalf("second withdraw: %v, want ErrUnknownSession", err)
	}
}

// arrivals records when each session ID first appears on a member.
type arrivals struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func watch(n *Node) (*arrivals, func()) {
	a := &arrivals{seen: make(map[string]time.Time)}
	cancel := n.Subscribe(func(ss []*filter.Session) {
		now := time.Now()
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, s := range ss {
			if _, ok := a.seen[s.ID]; !ok {
				a.seen[s.ID] = now
			}
		}
	})
	return a, cancel
}

func (a *arrivals) at(id string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.seen[id]
	return t, ok
}

// TestAnnounceLatency measures how long a session announced on A takes to
// reach both B and C, over 1,000 announces one after the other.
func TestAnnounceLatency(t *testing.T) {
	tr := newTrio(t, 5*time.Second, time.Second)
	tr.waitMesh(t)
	a := tr.nodes[0]
	wb, cb := watch(tr.nodes[1])
	defer cb()
	wc, cc := watch(tr.nodes[2])
	defer cc()

	const n = 1000
	lat := make([]time.Duration, 0, n)
	for i := range n {
		id := fmt.Sprintf("lat-%04d", i)
		start := time.Now()
		if err := a.Announce(session(id, "agent"+strconv.Itoa(i), "10.1.0.1")); err != nil {
			t.Fatal(err)
		}
		var tb, tc time.Time
		waitFor(t, 2*time.Second, id+" on B and C", func() bool {
			var okb, okc bool
			tb, okb = wb.at(id)
			tc, okc = wc.at(id)
			return okb && okc
		})
		lat = append(lat, max(tb.Sub(start), tc.Sub(start)))
	}
	slices.Sort(lat)
	p50, p99, worst := lat[n/2], lat[n*99/100], lat[n-1]
	t.Logf("announce on A → present on B and C, %d announces: p50 %v, p99 %v, max %v", n, p50, p99, worst)
	if p99 > time.Second {
		t.Errorf("p99 %v above one second", p99)
	}
	if got := len(tr.nodes[2].Sessions()); got != n {
		t.Errorf("C holds %d sessions, want %d", got, n)
	}
}

// TestRestartFetchesSnapshot: a restarted member gets the sessions from
// the others at once, not at the next refresh, and learns of withdrawals
// made while it was down.
func TestRestartFetchesSnapshot(t *testing.T) {
	// A refresh interval far longer than the test: only a snapshot can
	// bring the sessions to the restarted member.
	tr := newTrio(t, 2*time.Minute, time.Minute)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]
	for _, id := range []string{"s1", "s2"} {
		if err := a.Announce(session(id, "1001", "10.0.0.5")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Second, "s1,s2 on C", func() bool { return ids(c.Sessions()) == "s1,s2" })
	c.ReportCapturing([]string{"s1"})
	waitFor(t, time.Second, "A to see C capturing s1", func() bool {
		for _, s := range a.Status().Sessions {
			if s.ID == "s1" && slices.Equal(s.CapturedBy, []string{"C"}) {
				return true
			}
		}
		return false
	})

	c.Close()
	tr.nodes[2] = nil
	if err := b.Withdraw("s2"); err != nil {
		t.Fatal(err)
	}
	if err := b.Announce(session("s3", "1003", "10.0.0.6")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tr.start(t, 2, time.Minute)
	c = tr.nodes[2]
	waitFor(t, 10*time.Second, "restarted C to hold s1,s3", func() bool { return ids(c.Sessions()) == "s1,s3" })
	t.Logf("restarted member holds the sessions %v after Start", time.Since(start))
	if st := c.Stats(); st.Snapshots == 0 {
		t.Errorf("restarted member fetched no snapshot: %+v", st)
	}
	if o, _ := c.Owner("s3"); o != "B" {
		t.Errorf("owner of s3 on C = %q, want B", o)
	}
}

// TestOwnerDeathAndAdoption: a dead owner's sessions do not end. The live
// member with the smallest name adopts them after the TTL (B here, A being
// the dead one), without the session ever leaving any live member's set;
// a session a client re-asserts elsewhere first simply moves. The dead
// member, restarted, gets the sessions back from a snapshot.
func TestOwnerDeathAndAdoption(t *testing.T) {
	const ttl, refresh = 1500 * time.Millisecond, 300 * time.Millisecond
	tr := newTrio(t, ttl, refresh)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]
	for _, id := range []string{"dies", "moves"} {
		if err := a.Announce(session(id, "1001", "10.0.0.5")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Second, "sessions on B and C", func() bool {
		return ids(b.Sessions()) == "dies,moves" && ids(c.Sessions()) == "dies,moves"
	})
	orig := b.Sessions()[0]
	a.Close()
	tr.nodes[0] = nil
	killed := time.Now()
	// Failover: the client re-asserts "moves" on C.
	if err := c.Announce(session("moves", "1001", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	// Watch B and C: the sessions must never leave either set.
	var gaps atomic.Int32
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if ids(b.Sessions()) != "dies,moves" || ids(c.Sessions()) != "dies,moves" {
				gaps.Add(1)
			}
		}
	}()
	waitFor(t, 3*ttl, "B to adopt dies, seen from C", func() bool {
		o, _ := c.Owner("dies")
		return o == "B"
	})
	adopted := time.Since(killed)
	t.Logf("owner killed: B adopted its session %v later (TTL %v, refresh %v)", adopted, ttl, refresh)
	if adopted < ttl-refresh-100*time.Millisecond || adopted > 2*ttl {
		t.Errorf("adopted %v after the owner died, want between TTL-refresh and 2×TTL", adopted)
	}
	if line := logLine(tr.logs[1], "adopted session dies of agent 1001 from member A, silent for"); line == "" {
		t.Errorf("B did not log the adoption:\n%s", tr.logs[1])
	}
	time.Sleep(2 * ttl) // stable: nobody else adopts, nothing expires
	close(stop)
	<-watched
	if g := gaps.Load(); g != 0 {
		t.Fatalf("a session left B's or C's set %d times after its owner died", g)
	}
	for _, tc := range []struct{ id, owner, prev string }{{"dies", "B", "A"}, {"moves", "C", "A"}} {
		for _, n := range []*Node{b, c} {
			i := slices.IndexFunc(n.Status().Sessions, func(s SessionStatus) bool { return s.ID == tc.id })
			ss := n.Status().Sessions[i]
			if ss.Owner != tc.owner || ss.PreviousOwner != tc.prev {
				t.Errorf("%s on %s: owner %s (previous %s), want %s (previous %s)", tc.id, n.Name(), ss.Owner, ss.PreviousOwner, tc.owner, tc.prev)
			}
		}
	}
	if s := b.Sessions()[0]; s != orig {
		t.Errorf("the adopter replaced the session value: %+v, was %+v", s, orig)
	}
	if st := b.Stats(); st.Adopted != 1 || st.Ended != 0 {
		t.Errorf("B's stats %+v, want 1 adopted, 0 ended", st)
	}
	var state []string
	for _, m := range c.Status().Members {
		if m.Name == "A" {
			state = append(state, m.State)
		}
	}
	if !slices.Equal(state, []string{"unreachable"}) {
		t.Errorf("A listed on C as %v, want unreachable", state)
	}

	// A restarts and holds both sessions again, from a snapshot, owned by
	// their adopters.
	restart := time.Now()
	tr.start(t, 0, refresh)
	a = tr.nodes[0]
	waitFor(t, 10*time.Second, "restarted A to hold dies,moves", func() bool { return ids(a.Sessions()) == "dies,moves" })
	t.Logf("restarted A holds the sessions %v after Start", time.Since(restart))
	time.Sleep(ttl)
	for _, id := range []string{"dies", "moves"} {
		o1, _ := a.Owner(id)
		o2, _ := c.Owner(id)
		if o1 != o2 || o1 == "A" {
			t.Errorf("%s: owner %q on A, %q on C; want the same adopter", id, o1, o2)
		}
	}
}

// TestAdoptionDefaultTTL measures the adoption time with the default TTL
// and refresh (15 s, 5 s): the figure of docs/cluster.md.
func TestAdoptionDefaultTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 20 s")
	}
	tr := newTrio(t, DefaultSessionTTL, DefaultRefresh)
	tr.waitMesh(t)
	a, c := tr.nodes[0], tr.nodes[2]
	if err := a.Announce(session("s", "1001", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "s on C", func() bool { return hasSession(c, "s") })
	time.Sleep(2 * time.Second) // kill A at some point of its refresh cycle
	a.Close()
	tr.nodes[0] = nil
	killed := time.Now()
	waitFor(t, 2*DefaultSessionTTL+2*time.Second, "B to adopt s", func() bool {
		o, _ := c.Owner("s")
		return o == "B" && hasSession(c, "s") && hasSession(tr.nodes[1], "s")
	})
	t.Logf("owner killed: adopted by B %v later (default TTL %v, refresh %v)", time.Since(killed), DefaultSessionTTL, DefaultRefresh)
}

// TestEndsReported: an end, wherever decided, reaches the end subscribers
// of every member with its reason: End with a reason, Withdraw
// ("stopped"), and a lifetime passed on the cluster clock ("lifetime
// over", decided by every member on its own). An ended ID is refused
// afterwards.
func TestEndsReported(t *testing.T) {
	tr := newTrio(t, 3*time.Second, 500*time.Millisecond)
	tr.waitMesh(t)
	type end struct{ member, id, reason string }
	var mu sync.Mutex
	var got []end
	for _, n := range tr.nodes {
		cancel := n.SubscribeEnds(func(id, reason string) {
			mu.Lock()
			got = append(got, end{n.Name(), id, reason})
			mu.Unlock()
		})
		defer cancel()
	}
	ended := func(id string) map[string]string {
		mu.Lock()
		defer mu.Unlock()
		m := map[string]string{}
		for _, e := range got {
			if e.id == id {
				m[e.member] = e.reason
			}
		}
		return m
	}
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]
	lt := session("timed", "1002", "10.0.0.6")
	lt.Started, lt.Until = tr.now(), tr.now().Add(time.Hour)
	for _, s := range []*filter.Session{session("sup", "1001", "10.0.0.5"), session("stop", "1003", "10.0.0.7"), lt} {
		if err := a.Announce(s); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, time.Second, "three sessions on B and C", func() bool { return len(b.Sessions()) == 3 && len(c.Sessions()) == 3 })
	if err := c.End("sup", ReasonSupervisorGone); err != nil {
		t.Fatal(err)
	}
	if err := b.Withdraw("stop"); err != nil {
		t.Fatal(err)
	}
	if err := b.End("timed", "bad\nreason"); err == nil {
		t.Fatal("End accepted a reason with a control character")
	}
	want := map[string]string{"A": "", "B": "", "C": ""}
	for id, reason := range map[string]string{"sup": ReasonSupervisorGone, "stop": ReasonStopped} {
		for m := range want {
			want[m] = reason
		}
		waitFor(t, time.Second, id+" reported ended on all three", func() bool { return len(ended(id)) == 3 })
		if g := ended(id); !maps.Equal(g, want) {
			t.Errorf("%s: ends %v, want %v", id, g, want)
		}
	}
	if len(ended("timed")) != 0 || !hasSession(b, "timed") {
		t.Fatalf("timed ended before its lifetime")
	}
	tr.offset.Add(int64(time.Hour + time.Second))
	waitFor(t, 2*time.Second, "timed to end on all three", func() bool {
		return len(ended("timed")) == 3 && !hasSession(a, "timed") && !hasSession(b, "timed") && !hasSession(c, "timed")
	})
	for m := range want {
		want[m] = ReasonLifetimeOver
	}
	if g := ended("timed"); !maps.Equal(g, want) {
		t.Errorf("timed: ends %v, want %v", g, want)
	}
	if st := a.Stats(); st.LifetimeOver != 1 || st.Ended != 3 {
		t.Errorf("A's stats %+v, want 1 lifetime over, 3 ended", st)
	}
	for _, id := range []string{"sup", "stop"} {
		if err := b.Announce(session(id, "1001", "10.0.0.5")); !errors.Is(err, ErrEnded) {
			t.Errorf("announcing ended %s again: %v, want ErrEnded", id, err)
		}
	}
	if st := a.Status(); st.Tombstones != 3 {
		t.Errorf("A remembers %d tombstones, want 3", st.Tombstones)
	}
}

// TestForeignCARefused: a member whose certificates come from another CA
// cannot join, and the member that refuses says why. Two rogues: one that
// trusts only its own CA (it refuses the site's certificate itself), and
// one that also trusts the site CA, as an intruder would, so that the site
// member is the one to refuse its client certificate.
func TestForeignCARefused(t *testing.T) {
	tr := newTrio(t, 5*time.Second, time.Second)
	tr.waitMesh(t)
	if err := tr.nodes[0].Announce(session("secret", "1001", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	other := newTestCA(t, "rogue CA")
	for _, tc := range []struct {
		name       string
		trustSite  bool
		refuserLog func(rogue *syncBuffer) *syncBuffer
		want       []string // all on one log line
	}{
		{"rogue trusts its own CA", false, func(r *syncBuffer) *syncBuffer { return r },
			[]string{"TLS route handshake error: peer certificate", "CN=member-A", "is not signed by this cluster's CA"}},
		{"rogue trusts the site CA too", true, func(*syncBuffer) *syncBuffer { return tr.logs[0] },
			[]string{"TLS route handshake error: peer certificate", "CN=rogue-client", "CN=rogue CA", "is not signed by this cluster's CA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, cli := other.tlsPair(t, "rogue")
			if tc.trustSite {
				pool := x509.NewCertPool()
				pool.AddCert(other.cert)
				pool.AddCert(tr.ca.cert)
				srv.ClientCAs, cli.RootCAs = pool, pool
			}
			var log syncBuffer
			d, err := Start(Config{
				Name:      "D",
				Listen:    "127.0.0.1:0",
				Peers:     []string{"127.0.0.1:" + strconv.Itoa(tr.ports[0])},
				TLS:       srv,
				ClientTLS: cli,
				Logger:    testLogger(t, &log),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			refuser := tc.refuserLog(&log)
			waitFor(t, 5*time.Second, "the refusal in the log", func() bool { return logLine(refuser, tc.want...) != "" })
			t.Logf("logged: %s", logLine(refuser, tc.want...))
			time.Sleep(300 * time.Millisecond)
			if n := d.srv.NumRoutes(); n != 0 {
				t.Fatalf("rogue member has %d routes", n)
			}
			if len(d.Sessions()) != 0 {
				t.Fatalf("rogue member learned sessions %s", ids(d.Sessions()))
			}
			for i, n := range tr.nodes {
				if r := n.srv.NumRoutes(); r != 2 {
					t.Errorf("member %s has %d routes, want 2", tr.names[i], r)
				}
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	ca := newTestCA(t, "ca")
	srv, _ := ca.tlsPair(t, "x")
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no TLS", Config{Listen: "127.0.0.1:0"}, "--insecure"},
		{"bad listen", Config{Listen: "42029", TLS: srv}, `cluster listen address "42029"`},
		{"bad listen port", Config{Listen: ":99999", TLS: srv}, `":99999" has a bad port`},
		{"bad peer", Config{Listen: ":0", TLS: srv, Peers: []string{"host"}}, `peer "host" is not host:port`},
		{"peer port zero", Config{Listen: ":0", TLS: srv, Peers: []string{"h:0"}}, `peer "h:0" has a bad port`},
		{"refresh above ttl", Config{Listen: ":0", TLS: srv, SessionTTL: time.Second, Refresh: 2 * time.Second}, "must be shorter than the session TTL"},
		{"blank in name", Config{Listen: ":0", TLS: srv, Name: "a b"}, `member name "a b"`},
		{"TLS without CA", Config{Listen: "127.0.0.1:0", TLS: &tls.Config{Certificates: srv.Certificates}}, "has no CA"},
		{"TLS without certificate", Config{Listen: "127.0.0.1:0", TLS: &tls.Config{ClientCAs: ca.pool}}, "no server certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := Start(tc.cfg)
			if err == nil {
				n.Close()
				t.Fatalf("started, want an error containing %q", tc.want)
			}
			if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want ErrConfig containing %q", err, tc.want)
			}
		})
	}
}

func TestListenAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	n, err := Start(Config{Listen: l.Addr().String(), Insecure: true})
	if err == nil {
		n.Close()
		t.Fatal("started on a busy port")
	}
	if !strings.Contains(err.Error(), l.Addr().String()) {
		t.Fatalf("error %q does not name the address", err)
	}
	t.Log(err)
}

func TestClosedNode(t *testing.T) {
	n, err := Start(Config{Listen: "127.0.0.1:0", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := n.Announce(session("s", "1", "10.0.0.1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("announce after close: %v", err)
	}
	if err := n.Withdraw("s"); !errors.Is(err, ErrClosed) {
		t.Fatalf("withdraw after close: %v", err)
	}
}

// logLine returns the first line of b that contains every part.
func logLine(b *syncBuffer, parts ...string) string {
	for _, line := range strings.Split(b.String(), "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return line
		}
	}
	return ""
}

// TestTakeoverWhileOwnerAlive: a client re-asserts its session on B while
// A, the old owner, is still up (the client lost only its link to A). B
// owns it everywhere, A stops refreshing it, and when B dies A adopts it
// back: the session never ends.
func TestTakeoverWhileOwnerAlive(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	tr := newTrio(t, ttl, 300*time.Millisecond)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]
	if err := a.Announce(session("s", "1001", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "s on B", func() bool { return hasSession(b, "s") })
	if err := b.Announce(session("s", "1001", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "B to own s everywhere", func() bool {
		for _, n := range tr.nodes {
			if o, _ := n.Owner("s"); o != "B" {
				return false
			}
		}
		return true
	})
	for _, m := range a.Status().Members {
		if m.Name == "A" && m.Owns != 0 {
			t.Fatalf("A still counts %d owned sessions", m.Owns)
		}
	}
	b.Close()
	tr.nodes[1] = nil
	waitFor(t, 3*ttl, "A to adopt s after B died", func() bool {
		oa, _ := a.Owner("s")
		oc, _ := c.Owner("s")
		return oa == "A" && oc == "A"
	})
	if !hasSession(a, "s") || !hasSession(c, "s") {
		t.Fatalf("s ended after B died")
	}
}
