package captureserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

// refusedMetric returns silentmon_starts_refused_total{reason} of s.
func refusedMetric(t *testing.T, s *server, reason string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	s.refused.register(reg)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if mf.GetName() == "silentmon_starts_refused_total" && l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no silentmon_starts_refused_total{reason=%q}", reason)
	return 0
}

// startN starts n sessions (agents 2000 and up) and returns their ids.
func startN(t *testing.T, s *server, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		req := startReq
		req.Agent = fmt.Sprint(2000 + i)
		st, err := s.StartMonitor(context.Background(), &relay.Peer{}, &req)
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		ids = append(ids, st.Session)
	}
	return ids
}

// refusal checks that err is a refusal of code whose message holds every
// one of words.
func refusal(t *testing.T, err error, code string, words ...string) {
	t.Helper()
	if !isCode(err, code) {
		t.Fatalf("got %v, want a refusal %s", err, code)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("refusal %q does not name %q", err, w)
		}
	}
}

// TestLimitDefaults: a zero Config means 2000 sessions and 64 endpoints.
func TestLimitDefaults(t *testing.T) {
	var c Config
	if c.maxSessions() != 2000 || c.maxEndpoints() != 64 {
		t.Fatalf("defaults %d sessions, %d endpoints", c.maxSessions(), c.maxEndpoints())
	}
	c.MaxSessions, c.MaxEndpoints = 5, 7
	if c.maxSessions() != 5 || c.maxEndpoints() != 7 {
		t.Fatalf("configured %d sessions, %d endpoints", c.maxSessions(), c.maxEndpoints())
	}
}

// TestSessionLimit: with limits.max_sessions 3, a fourth start is refused
// over the wire with code "limit", a message naming the limit, its value
// and its key, an audit line and the metric; a start sent again with the
// key of an existing session still gets it; after a stop, a start is
// taken again. (The old server took any number of sessions.)
func TestSessionLimit(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	ts.cfg.MaxSessions = 3
	cl := dialClient(t, ts.addr)
	ctx := context.Background()
	var ids []string
	var first relay.StartMonitor
	for i := range 3 {
		req := startReq
		req.Agent = fmt.Sprint(3000 + i)
		req.IdempotencyKey = relay.NewIdempotencyKey()
		st, err := cl.StartMonitor(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = req
		}
		ids = append(ids, st.Session)
	}
	_, err := cl.StartMonitor(ctx, startReq)
	refusal(t, err, relay.CodeLimit, "3 sessions", "limits.max_sessions = 3")
	if n := len(ts.filter.Sessions()); n != 3 {
		t.Fatalf("%d sessions, want 3", n)
	}
	if v := refusedMetric(t, ts.server, "max_sessions"); v != 1 {
		t.Fatalf("max_sessions refusals %v, want 1", v)
	}
	lines := ts.auditLines(t)
	if last := lines[len(lines)-1]; last.Result != "refused" || !strings.Contains(last.Reason, "limits.max_sessions") {
		t.Fatalf("last audit line %+v, want the refusal", last)
	}
	if st, err := cl.StartMonitor(ctx, first); err != nil || st.Session != ids[0] {
		t.Fatalf("a repeated start at the limit: %+v, %v; want session %s", st, err, ids[0])
	}
	if _, err := cl.StopMonitor(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartMonitor(ctx, startReq); err != nil {
		t.Fatalf("a start after a stop: %v", err)
	}
}

// TestSessionLimitClusterWide: the limit counts the sessions of the whole
// cluster as a member sees them, so a client spreading its starts over
// two members gets no more than the limit in all.
func TestSessionLimitClusterWide(t *testing.T) {
	var nodeA *cluster.Node
	a := newTestServerWith(t, t.TempDir(), testOptions{node: func(s *server) *cluster.Node {
		var err error
		nodeA, err = cluster.Start(cluster.Config{Name: "sm-a", Listen: "127.0.0.1:0", Insecure: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return nodeA
	}})
	b := newTestServerWith(t, t.TempDir(), testOptions{node: func(s *server) *cluster.Node {
		node, err := cluster.Start(cluster.Config{Name: "sm-b", Listen: "127.0.0.1:0", Insecure: true,
			Peers: []string{nodeA.RouteAddr()}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return node
	}})
	a.cfg.MaxSessions, b.cfg.MaxSessions = 4, 4
	waitUntil(t, "the route", func() bool { return len(nodeA.Status().Routes) == 1 })
	startN(t, a.server, 2)
	waitUntil(t, "A's sessions on B", func() bool { return len(b.node.Sessions()) == 2 })
	req := startReq
	for i := range 2 {
		req.Agent = fmt.Sprint(4000 + i)
		if _, err := b.StartMonitor(context.Background(), &relay.Peer{}, &req); err != nil {
			t.Fatal(err)
		}
	}
	req.Agent = "4100"
	_, err := b.StartMonitor(context.Background(), &relay.Peer{}, &req)
	refusal(t, err, relay.CodeLimit, "limits.max_sessions = 4")
	waitUntil(t, "B's sessions on A", func() bool { return len(a.node.Sessions()) == 4 })
	_, err = a.StartMonitor(context.Background(), &relay.Peer{}, &req)
	refusal(t, err, relay.CodeLimit, "limits.max_sessions = 4")
}

// TestEndpointLimit: more endpoints than limits.max_endpoints (64 by
// default) are refused with code "limit", naming the limit and its key,
// and counted.
func TestEndpointLimit(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	eps := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("10.20.%d.%d", i/250, i%250+1))
		}
		return out
	}
	for _, tc := range []struct {
		limit, n int
		ok       bool
	}{{0, 64, true}, {0, 65, false}, {0, 13000, false}, {2, 2, true}, {2, 3, false}} {
		t.Run(fmt.Sprintf("limit=%d/n=%d", tc.limit, tc.n), func(t *testing.T) {
			ts.cfg.MaxEndpoints = tc.limit
			before := refusedMetric(t, ts.server, "max_endpoints")
			req := startReq
			req.Endpoints = eps(tc.n)
			_, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &req)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			limit := tc.limit
			if limit == 0 {
				limit = 64
			}
			refusal(t, err, relay.CodeLimit, fmt.Sprintf("names %d endpoints", tc.n), fmt.Sprintf("limit of %d (limits.max_endpoints)", limit))
			if v := refusedMetric(t, ts.server, "max_endpoints"); v != before+1 {
				t.Fatalf("max_endpoints refusals %v, want %v", v, before+1)
			}
		})
	}
}

// TestSupervisorAddressRefused: a supervisor address a capture server
// cannot dial as a host (unspecified, multicast, broadcast, port 0, a
// numeric shorthand resolvers read as 0.0.0.0 or 127.0.0.1) is refused at
// the start with bad-request naming it, and counted; ordinary addresses
// and names are taken. (The old server took 0.0.0.0:PORT and then dialed
// whatever answered there, aborting handshakes against a real
// supervisor.)
func TestSupervisorAddressRefused(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	for _, tc := range []struct {
		addr, word string
	}{
		{"0.0.0.0:42228", "unspecified"},
		{"[::]:42228", "unspecified"},
		{"[::ffff:0.0.0.0]:42228", "unspecified"},
		{"224.0.0.1:42228", "multicast"},
		{"[ff02::1]:42228", "multicast"},
		{"255.255.255.255:42228", "broadcast"},
		{"127.0.0.1:0", "port"},
		{"0:42228", "standard form"},
		{"127.1:42228", "standard form"},
		{"0x7f000001:42228", "standard form"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			before := refusedMetric(t, ts.server, "supervisor_address")
			req := startReq
			req.Supervisor = tc.addr
			_, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &req)
			refusal(t, err, relay.CodeBadRequest, tc.addr, tc.word)
			if v := refusedMetric(t, ts.server, "supervisor_address"); v != before+1 {
				t.Fatalf("supervisor_address refusals %v, want %v", v, before+1)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:42228", "[2001:db8::7]:42228", "sup.example:42228", "localhost:42228", "sup-1:42228"} {
		if err := checkSupervisor(addr); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
	if n := len(ts.filter.Sessions()); n != 0 {
		t.Fatalf("%d sessions made", n)
	}
}

// TestStatusTenThousandSessions: a server holding 10,000 sessions of three
// endpoints each answers a status request through the real client over
// the wire with every session (the old one failed: "frame too large").
func TestStatusTenThousandSessions(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	const n = 10000
	ss := make([]*filter.Session, n)
	for i := range ss {
		x := &filter.Session{ID: fmt.Sprintf("%032x", i), Agent: fmt.Sprint(10000 + i), Supervisor: "127.0.0.1:9"}
		for j := range 3 {
			x.Endpoints = append(x.Endpoints, filter.Endpoint{IP: netip.AddrFrom4([4]byte{10, byte(j), byte(i >> 8), byte(i)}), PortLo: 20000, PortHi: 20999})
		}
		ss[i] = x
	}
	ts.filter.Set(ss)
	cl := dialClient(t, ts.addr)
	raw, err := cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) <= relay.DefaultMaxFrame {
		t.Fatalf("the status is %d bytes, not beyond a frame", len(raw))
	}
	var st status.ServerStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Sessions) != n {
		t.Fatalf("%d sessions in the status, want %d", len(st.Sessions), n)
	}
	seen := map[string]bool{}
	for _, x := range st.Sessions {
		seen[x.ID] = true
		if len(x.Endpoints) != 3 {
			t.Fatalf("session %s has endpoints %v", x.ID, x.Endpoints)
		}
	}
	if len(seen) != n || st.Server != "test-1" {
		t.Fatalf("%d distinct sessions from server %q", len(seen), st.Server)
	}
}

// BenchmarkStartWith2000Sessions measures one start (without its stop)
// while 2,000 sessions of 50 supervisors exist, without and with a
// cluster. The audit trail is written (and synced) as in production.
func BenchmarkStartWith2000Sessions(b *testing.B) {
	for _, withCluster := range []bool{false, true} {
		b.Run(fmt.Sprint("cluster=", withCluster), func(b *testing.B) {
			s := benchServer(b, withCluster)
			s.cfg.MaxSessions = 3000
			req := func(i int) *relay.StartMonitor {
				return &relay.StartMonitor{Agent: fmt.Sprint(1000 + i), Endpoints: []string{fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)},
					Supervisor: fmt.Sprintf("127.0.0.1:%d", 10000+i%50)}
			}
			for i := range 2000 {
				if _, err := s.StartMonitor(context.Background(), &relay.Peer{}, req(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				st, err := s.StartMonitor(context.Background(), &relay.Peer{}, req(2000+i))
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if _, err := s.StopMonitor(context.Background(), &relay.Peer{}, &relay.StopMonitor{Session: st.Session}); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// benchServer is a server without a listener, with an audit file and,
// with withCluster, a cluster of one member.
func benchServer(b *testing.B, withCluster bool) *server {
	log := slog.New(slog.DiscardHandler)
	cfg := &Config{RecordDir: b.TempDir(), AuditFile: b.TempDir() + "/audit.jsonl"}
	cfg.Name = "bench-1"
	s := newServer(cfg, log)
	s.newForwarder(relay.DialConfig{})
	var err error
	if s.audit, err = audit.OpenWith(cfg.AuditFile, audit.Options{Member: cfg.Name}); err != nil {
		b.Fatal(err)
	}
	if withCluster {
		node, err := cluster.Start(cluster.Config{Name: cfg.Name, Listen: "127.0.0.1:0", Insecure: true, Logger: log})
		if err != nil {
			b.Fatal(err)
		}
		s.attachNode(node)
	}
	b.Cleanup(func() {
		if s.node != nil {
			s.node.Close()
		}
		s.fw.Close()
		s.rec.closeAll()
		s.audit.Close()
	})
	return s
}
