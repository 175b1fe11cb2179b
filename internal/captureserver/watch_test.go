package captureserver

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

// twoMemberCluster returns two test servers joined in a cluster.
func twoMemberCluster(t *testing.T) (a, b *testServer) {
	t.Helper()
	var nodeA *cluster.Node
	a = newTestServerWith(t, t.TempDir(), testOptions{node: func(s *server) *cluster.Node {
		var err error
		nodeA, err = cluster.Start(cluster.Config{Name: "sm-a", Listen: "127.0.0.1:0", Insecure: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return nodeA
	}})
	b = newTestServerWith(t, t.TempDir(), testOptions{node: func(s *server) *cluster.Node {
		node, err := cluster.Start(cluster.Config{Name: "sm-b", Listen: "127.0.0.1:0", Insecure: true,
			Peers: []string{nodeA.RouteAddr()}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return node
	}})
	waitUntil(t, "the route", func() bool { return len(nodeA.Status().Routes) == 1 })
	return a, b
}

// eventLog collects the agent events a client receives.
type eventLog struct {
	mu     sync.Mutex
	events []relay.AgentEvent
}

func (l *eventLog) add(ev *relay.AgentEvents) {
	l.mu.Lock()
	l.events = append(l.events, ev.Events...)
	l.mu.Unlock()
}

func (l *eventLog) all() []relay.AgentEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]relay.AgentEvent(nil), l.events...)
}

// watchClient dials addr and watches agents; it returns the reply and
// the log of later events.
func watchClient(t *testing.T, addr string, agents ...string) (*relay.Client, *relay.AgentEvents, *eventLog) {
	t.Helper()
	log := &eventLog{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := relay.Dial(ctx, relay.ClientConfig{Servers: []string{addr}, Name: "desktop", Logger: slog.New(slog.DiscardHandler),
		RequestTimeout: 10 * time.Second, DialRetry: 10 * time.Second, OnAgentEvents: log.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	rep, err := cl.WatchAgents(ctx, agents)
	if err != nil {
		t.Fatal(err)
	}
	return cl, rep, log
}

func eventsOf(evs []relay.AgentEvent, agent string) []relay.AgentEvent {
	var out []relay.AgentEvent
	for _, e := range evs {
		if e.Agent == agent {
			out = append(out, e)
		}
	}
	return out
}

func start(t *testing.T, ts *testServer, agent string, informed bool) *relay.SessionStatus {
	t.Helper()
	st, err := ts.StartMonitor(context.Background(), &relay.Peer{}, &relay.StartMonitor{Agent: agent,
		Endpoints: []string{"10.10.0.1"}, Supervisor: "127.0.0.1:9", InformAgent: informed})
	if err != nil {
		t.Fatal(err)
	}
	if st.Informed != informed {
		t.Fatalf("reply informed %v, want %v", st.Informed, informed)
	}
	return st
}

// TestAgentEventsAcrossCluster: a desktop watching agents on member A is
// told "monitored" (with the session id) when an informed session for
// agent 1001 starts on member B, and "not-monitored" when it stops. A
// silent session for agent 1002, started on B and known to A, never
// produces an event, neither at its start nor at its stop: the informed
// session for agent 1003 started after it arrives, so events flowed past
// it.
func TestAgentEventsAcrossCluster(t *testing.T) {
	a, b := twoMemberCluster(t)
	_, rep, log := watchClient(t, a.addr, "1001", "1002", "1003")
	if len(rep.Events) != 3 {
		t.Fatalf("watch reply %+v, want three agents", rep.Events)
	}
	for _, e := range rep.Events {
		if e.State != relay.AgentNotMonitored || len(e.Sessions) != 0 {
			t.Fatalf("watch reply %+v, want every agent not monitored", rep.Events)
		}
	}
	waitUntil(t, "the watch on A", func() bool { return a.watch.count() == 1 })

	silent := start(t, b, "1002", false)
	waitUntil(t, "the silent session on A", func() bool { _, ok := a.filter.Session(silent.Session); return ok })
	informed := start(t, b, "1001", true)
	waitUntil(t, "1001 monitored", func() bool { return len(eventsOf(log.all(), "1001")) == 1 })
	if e := eventsOf(log.all(), "1001")[0]; e.State != relay.AgentMonitored || len(e.Sessions) != 1 || e.Sessions[0] != informed.Session {
		t.Fatalf("event %+v, want 1001 monitored by %s", e, informed.Session)
	}

	// The silent session stops; an informed one for 1003 starts after.
	if _, err := b.StopMonitor(context.Background(), &relay.Peer{}, &relay.StopMonitor{Session: silent.Session}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the silent session gone from A", func() bool { _, ok := a.filter.Session(silent.Session); return !ok })
	third := start(t, b, "1003", true)
	waitUntil(t, "1003 monitored", func() bool { return len(eventsOf(log.all(), "1003")) == 1 })
	if evs := eventsOf(log.all(), "1002"); len(evs) != 0 {
		t.Fatalf("the silent session of 1002 was disclosed: %+v", evs)
	}

	if _, err := b.StopMonitor(context.Background(), &relay.Peer{}, &relay.StopMonitor{Session: informed.Session}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "1001 not monitored", func() bool { return len(eventsOf(log.all(), "1001")) == 2 })
	if e := eventsOf(log.all(), "1001")[1]; e.State != relay.AgentNotMonitored || len(e.Sessions) != 0 {
		t.Fatalf("event %+v, want 1001 not monitored", e)
	}
	if _, err := a.StopMonitor(context.Background(), &relay.Peer{}, &relay.StopMonitor{Session: third.Session}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "1003 not monitored", func() bool { return len(eventsOf(log.all(), "1003")) == 2 })
	for _, e := range log.all() {
		if e.Agent == "1002" {
			t.Fatalf("the silent session of 1002 was disclosed: %+v", e)
		}
	}
}

// TestWatchReplyCurrentState: a watch started while informed and silent
// sessions exist gets the informed ones only, each agent once; the
// watch ends when its connection closes.
func TestWatchReplyCurrentState(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	inf1 := start(t, ts, "1001", true)
	inf2 := start(t, ts, "1001", true)
	start(t, ts, "1002", false)
	cl, rep, _ := watchClient(t, ts.addr, "1001", "1002", "1001")
	if len(rep.Events) != 2 {
		t.Fatalf("reply %+v, want two agents", rep.Events)
	}
	got := map[string]relay.AgentEvent{}
	for _, e := range rep.Events {
		got[e.Agent] = e
	}
	want := []string{inf1.Session, inf2.Session}
	if want[0] > want[1] {
		want[0], want[1] = want[1], want[0]
	}
	if e := got["1001"]; e.State != relay.AgentMonitored || strings.Join(e.Sessions, ",") != strings.Join(want, ",") {
		t.Fatalf("1001: %+v, want monitored by %v", e, want)
	}
	if e := got["1002"]; e.State != relay.AgentNotMonitored || len(e.Sessions) != 0 {
		t.Fatalf("1002: %+v, want not monitored (its session is silent)", e)
	}
	if ts.watch.count() != 1 {
		t.Fatalf("%d watches, want 1", ts.watch.count())
	}
	cl.Close()
	waitUntil(t, "the watch to end with its connection", func() bool { return ts.watch.count() == 0 })
}

// TestInformedStatusAndMetric: status (JSON) marks the informed session
// and leaves the silent one unmarked; silentmon_sessions_informed counts
// the informed sessions only.
func TestInformedStatusAndMetric(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	reg := prometheus.NewRegistry()
	ts.registerPolicyMetrics(reg)
	inf := start(t, ts, "1001", true)
	sil := start(t, ts, "1002", false)
	b, err := json.Marshal(ts.status())
	if err != nil {
		t.Fatal(err)
	}
	var st status.ServerStatus
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, x := range st.Sessions {
		switch x.ID {
		case inf.Session:
			seen++
			if !x.Informed {
				t.Errorf("informed session %s not marked in status", x.ID)
			}
		case sil.Session:
			seen++
			if x.Informed {
				t.Errorf("silent session %s marked informed in status", x.ID)
			}
		}
	}
	if seen != 2 || strings.Count(string(b), `"informed":true`) != 1 {
		t.Fatalf("status %s", b)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := -1.0
	for _, mf := range mfs {
		if mf.GetName() == "silentmon_sessions_informed" {
			v = mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	if v != 1 {
		t.Fatalf("silentmon_sessions_informed %v, want 1", v)
	}
}

// TestInformedAgentsByDirectory: an informed session started by an
// agent's extension, or with its phone as endpoint, tells the watchers
// of the agent's id; silent sessions count for no one.
func TestInformedAgentsByDirectory(t *testing.T) {
	dir := loadPolicyDirectory(t)
	ep, err := filter.ParseEndpoint("10.20.0.1")
	if err != nil {
		t.Fatal(err)
	}
	got := informedAgents([]*filter.Session{
		{ID: "s1", Agent: "5001", Extensions: []string{"5001"}, Informed: true},
		{ID: "s2", Agent: "x", Endpoints: []filter.Endpoint{ep}, Informed: true},
		{ID: "s3", Agent: "3001"},
	}, dir)
	if strings.Join(got["1001"], ",") != "s1" || strings.Join(got["5001"], ",") != "s1" ||
		strings.Join(got["2001"], ",") != "s2" || strings.Join(got["x"], ",") != "s2" || len(got["3001"]) != 0 || len(got) != 4 {
		t.Fatalf("informed agents %v", got)
	}
}
