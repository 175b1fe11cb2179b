package captureserver

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/silentmon/silentmon/internal/testutil"

	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/relay"
)

// readyClock is a settable clock for the readiness checks.
type readyClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *readyClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *readyClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// readyLines runs one check as /readyz does and returns its lines.
func readyLines(c service.Check) string {
	res, _ := service.RunChecks([]service.Check{c})
	var out []string
	for _, r := range res {
		out = append(out, r.Line())
	}
	return strings.Join(out, "\n")
}

// TestCaptureReadiness: live capture is ready while frames were read in
// the last 10 s; after that only while every interface is up with
// carrier, each failure named (carrier down, interface down, missing); a
// replay is ready while it runs and after it ends (replay finished).
func TestCaptureReadiness(t *testing.T) {
	clk := &readyClock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	var frames atomic.Uint64
	links := map[string]linkState{"eth1": {Up: true, Carrier: true}, "eth2": {Up: true, Carrier: true}}
	var mu sync.Mutex
	c := &captureReadiness{now: clk.now, frames: frames.Load, window: DefaultReadyFrames, interfaces: []string{"eth1", "eth2"},
		link: func(n string) linkState {
			mu.Lock()
			defer mu.Unlock()
			if st, ok := links[n]; ok {
				return st
			}
			return linkState{Err: errors.New("the interface does not exist")}
		}}
	setLink := func(n string, st linkState) { mu.Lock(); links[n] = st; mu.Unlock() }
	check := service.Check{Name: "capture", Check: c.check}
	steps := []struct {
		name   string
		do     func()
		want   string
		wantOK bool
	}{
		{"no frame yet, carrier up", func() {}, "capture: ready, no frame yet; eth1, eth2 up with carrier", true},
		{"no frame yet, carrier down", func() { setLink("eth2", linkState{Up: true}) },
			"capture: eth2: carrier down (no link: cable unplugged or the switch port down)", false},
		{"frames arrive", func() { frames.Add(100); c.observe(clk.now()) }, "capture: ready", true},
		{"10 s later", func() { clk.add(10 * time.Second) }, "capture: ready", true},
		{"11 s later, eth2 without carrier", func() { clk.add(time.Second) },
			"capture: eth2: carrier down (no link: cable unplugged or the switch port down)", false},
		{"carrier back", func() { setLink("eth2", linkState{Up: true, Carrier: true}) },
			"capture: ready, no frame for 11s; eth1, eth2 up with carrier", true},
		{"eth1 down, eth2 gone", func() {
			setLink("eth1", linkState{})
			mu.Lock()
			delete(links, "eth2")
			mu.Unlock()
		}, "capture: eth1 is down; bring it up with ip link set eth1 up\ncapture: eth2: the interface does not exist", false},
		{"frames again", func() { clk.add(time.Second); frames.Add(1) }, "capture: ready", true},
	}
	for _, st := range steps {
		st.do()
		_, ok := service.RunChecks([]service.Check{check})
		if got := readyLines(check); got != st.want || ok != st.wantOK {
			t.Errorf("%s: %q (ready %v), want %q (ready %v)", st.name, got, ok, st.want, st.wantOK)
		}
	}

	var done atomic.Bool
	r := service.Check{Name: "capture", Check: (&captureReadiness{now: clk.now, frames: frames.Load, replay: "calls.pcap", replayDone: done.Load}).check}
	if got := readyLines(r); got != "capture: ready" {
		t.Errorf("replaying: %q", got)
	}
	done.Store(true)
	if got := readyLines(r); got != "capture: ready, replay finished" {
		t.Errorf("replay over: %q", got)
	}
}

// TestReadLink: the state of the loopback interface is read (up,
// carrier), and a missing interface says so.
func TestReadLink(t *testing.T) {
	if st := readLink("lo"); st.Err != nil || !st.Up || !st.Carrier {
		t.Errorf("lo: %+v, want carrier", st)
	}
	if st := readLink("nosuch0"); st.Err == nil || st.Err.Error() != "the interface does not exist" {
		t.Errorf("nosuch0: %+v", st)
	}
}

// TestClusterReadiness: with peers configured, the cluster is ready when
// every known member has a route; a member without one is named, and no
// route at all names the configured peers.
func TestClusterReadiness(t *testing.T) {
	self := cluster.MemberStatus{Name: "a", State: "self"}
	for _, tc := range []struct {
		name string
		st   cluster.Status
		want string
	}{
		{"routes to every member", cluster.Status{Members: []cluster.MemberStatus{self, {Name: "b", State: "up"}},
			Routes: []cluster.RouteStatus{{Member: "b"}}}, "cluster: ready"},
		{"no route at all", cluster.Status{Members: []cluster.MemberStatus{self}},
			"cluster: no route to peer 10.0.0.2:42029 or 10.0.0.3:42029"},
		{"member unreachable", cluster.Status{Members: []cluster.MemberStatus{self, {Name: "b", State: "up"}, {Name: "c", State: "unreachable"}},
			Routes: []cluster.RouteStatus{{Member: "b"}}}, "cluster: no route to peer c (unreachable)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := service.Check{Name: "cluster", Check: clusterReadiness([]string{"10.0.0.2:42029", "10.0.0.3:42029"},
				func() cluster.Status { return tc.st })}
			if got := readyLines(c); got != tc.want {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}

// TestMetricsLint (promlint, the linter testutil.GatherAndLint runs):
// smserver's registry has no name against Prometheus conventions, and the
// relay's counters are the forwarder's totals.
func TestMetricsLint(t *testing.T) {
	s := newServer(&Config{}, slog.New(slog.DiscardHandler))
	s.newForwarder(relay.DialConfig{})
	defer s.fw.Close()
	reg := prometheus.NewRegistry()
	s.registerMetrics(reg)
	mfs := testutil.LintMetrics(t, reg)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"silentmon_relay_media_sent_total", "silentmon_relay_media_sent_bytes_total", "silentmon_relay_media_dropped_total"} {
		if !names[n] {
			t.Errorf("%s missing", n)
		}
	}
}
