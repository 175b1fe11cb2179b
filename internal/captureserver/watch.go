package captureserver

import (
	"context"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/directory"
	"github.com/silentmon/silentmon/relay"
)

// watchers holds the agent watches of the client connections and the
// agents the informed sessions monitor, as last published. Sessions
// marked "agent informed" only count: a silent session never shows in
// an event, a reply or the state. Every change is computed and pushed
// under mu from the latest sessions, so the watchers see the changes in
// order and end with the current state. The zero value is ready; safe
// for concurrent use.
type watchers struct {
	mu      sync.Mutex
	byPeer  map[*relay.Peer]*agentWatch
	state   map[string][]string // agent → its informed sessions' ids, sorted
	changes uint64              // updates that changed the state (tests wait on it)
}

type agentWatch struct {
	agents map[string]bool
	push   func(relay.AgentEvent) error
}

// informedAgents returns, for every agent an informed session of ss
// monitors (by its id, extensions and phones as dir tells; see
// sessionTargets), the ids of those sessions, sorted.
func informedAgents(ss []*filter.Session, dir *directory.Directory) map[string][]string {
	out := map[string][]string{}
	for _, x := range ss {
		if !x.Informed {
			continue
		}
		names := []string{x.Agent}
		for _, t := range sessionTargets(x, dir) {
			if t.found {
				names = append(names, t.agent.ID)
			} else {
				names = append(names, t.name)
			}
		}
		slices.Sort(names)
		for _, n := range slices.Compact(names) {
			out[n] = append(out[n], x.ID)
		}
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out
}

func event(agent string, ids []string) relay.AgentEvent {
	if len(ids) == 0 {
		return relay.AgentEvent{Agent: agent, State: relay.AgentNotMonitored}
	}
	return relay.AgentEvent{Agent: agent, State: relay.AgentMonitored, Sessions: slices.Clone(ids)}
}

// update publishes the informed sessions of sessions() (read under the
// lock, so the last update publishes the latest state) to the watchers
// of the agents whose sessions changed. A watch whose push fails (its
// connection is gone or it was replaced) is dropped.
func (w *watchers) update(sessions func() []*filter.Session, dir *directory.Directory) {
	w.mu.Lock()
	defer w.mu.Unlock()
	next := informedAgents(sessions(), dir)
	var changed []string
	for a, ids := range next {
		if !slices.Equal(w.state[a], ids) {
			changed = append(changed, a)
		}
	}
	for a := range w.state {
		if _, ok := next[a]; !ok {
			changed = append(changed, a)
		}
	}
	w.state = next
	if len(changed) == 0 {
		return
	}
	w.changes++
	slices.Sort(changed)
	for p, aw := range w.byPeer {
		for _, a := range changed {
			if !aw.agents[a] {
				continue
			}
			if err := aw.push(event(a, next[a])); err != nil {
				delete(w.byPeer, p)
				break
			}
		}
	}
}

// watch replaces p's watch with agents (none ends it) and returns their
// current events.
func (w *watchers) watch(p *relay.Peer, agents []string, push func(relay.AgentEvent) error) []relay.AgentEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(agents) == 0 {
		delete(w.byPeer, p)
		return []relay.AgentEvent{}
	}
	if w.byPeer == nil {
		w.byPeer = map[*relay.Peer]*agentWatch{}
	}
	aw := &agentWatch{agents: map[string]bool{}, push: push}
	events := make([]relay.AgentEvent, 0, len(agents))
	for _, a := range agents {
		if aw.agents[a] {
			continue
		}
		aw.agents[a] = true
		events = append(events, event(a, w.state[a]))
	}
	w.byPeer[p] = aw
	return events
}

// remove ends p's watch.
func (w *watchers) remove(p *relay.Peer) {
	w.mu.Lock()
	delete(w.byPeer, p)
	w.mu.Unlock()
}

// count returns the connections that watch agents.
func (w *watchers) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byPeer)
}

// AgentWatch implements relay.WatchHandler: any client may watch any
// agent, since only sessions marked "agent informed" (meant to be shown
// to the agent) are disclosed, on any member of the cluster.
func (s *server) AgentWatch(ctx context.Context, p *relay.Peer, req *relay.AgentWatch, push func(relay.AgentEvent) error) (*relay.AgentEvents, error) {
	events := s.watch.watch(p, req.Agents, push)
	s.log.Info("agents watched", "peer", p.Addr, "client", peerName(p), "agents", len(events))
	return &relay.AgentEvents{Events: events}, nil
}

var _ relay.WatchHandler = (*server)(nil)

// updateWatches publishes the informed sessions to the agent watches;
// called on every session change and when the directory is loaded.
func (s *server) updateWatches() {
	s.watch.update(s.filter.Sessions, s.agents.dir.Load())
}

// informedSessions counts the sessions marked "agent informed".
func (s *server) informedSessions() int {
	n := 0
	for _, x := range s.filter.Sessions() {
		if x.Informed {
			n++
		}
	}
	return n
}

// registerPolicyMetrics adds silentmon_sessions_informed,
// silentmon_agent_watches and silentmon_starts_unauthorized_total.
func (s *server) registerPolicyMetrics(reg *prometheus.Registry) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Name: "sessions_informed",
		Help: "Active monitor sessions marked \"agent informed\" (the agent may be told)."},
		func() float64 { return float64(s.informedSessions()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Name: "agent_watches",
		Help: "Client connections watching agents for agent-informed sessions."},
		func() float64 { return float64(s.watch.count()) }))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Name: "starts_unauthorized_total",
		Help: "Monitor starts and re-assertions refused by the authorization rules (" + KeyRules + ")."},
		func() float64 { return float64(s.unauthorized.Load()) }))
}
