package cluster

import (
	"errors"

	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/silentmon/silentmon/filter"
)

func TestMain(m *testing.M) {
	if memberMain() {
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
}

func newTrio(t *testing.T, ttl, refresh time.Duration) *trio {
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

func (tr *trio) start(t *testing.T, i int, refresh time.Duration) {
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
	})
	if err != nil {
		t.Fatalf("start member %s: %v", tr.names[i], err)
	}
	tr.nodes[i] = n
}

func (tr *trio) waitMesh(t *testing.T) {
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
