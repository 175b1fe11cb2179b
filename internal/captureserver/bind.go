package captureserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// The CTI hook: a CTI integration binds an agent to its devices (phones
// by IP or MAC) and extensions when the agent logs in, and unbinds them
// at logout. Bindings live in the shared store (space "bindings", one
// key per agent), so every member of a cluster applies them whichever
// member took the request, and they outlive that member. A bound agent
// is known (a start by --agent alone is accepted), its bound devices are
// its phones and its bound extensions its SIP user parts, and smctl
// agents lists the devices as learned from "cti".

// Audit actions of the CTI hook. Each carries a Result (accepted or
// refused), the Agent, the devices the request named in Endpoints and
// its Extensions.
const (
	actionAgentBound   = audit.ActionAgentBound
	actionAgentUnbound = audit.ActionAgentUnbound
)

// Bounds of the bindings.
const (
	// maxBoundDevices bounds the devices bound to one agent.
	maxBoundDevices = relay.MaxBindDevices
	// maxBoundExtensions bounds the extensions bound to one agent.
	maxBoundExtensions = filter.MaxExtensions
	// maxBoundAgents bounds the agents with bindings.
	maxBoundAgents = 50_000
)

// binding is one agent's bindings as stored (JSON): devices in their
// canonical form (filter.Endpoint.String), extensions, and who made the
// last change, when.
type binding struct {
	Devices    []string  `json:"devices"`
	Extensions []string  `json:"extensions"`
	By         string    `json:"by"`
	At         time.Time `json:"at"`
}

// boundAgent is a binding with its devices parsed.
type boundAgent struct {
	binding
	eps []filter.Endpoint
	raw []byte // as stored, to skip unchanged entries
}

// bindTable is every binding, by agent id, with the owner of each device
// and extension. Immutable once published.
type bindTable struct {
	agents   map[string]*boundAgent
	byDevice map[string]string
	byExt    map[string]string
}

// bound returns agent's bindings, or nil.
func (a *agents) bound(agent string) *boundAgent {
	if a == nil {
		return nil
	}
	t := a.binds.Load()
	if t == nil {
		return nil
	}
	return t.agents[agent]
}

// parseBinding reads a stored binding; the bytes may come from another
// member and are checked as a request is.
func parseBinding(agent string, raw []byte) (*boundAgent, error) {
	var b binding
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("the binding of agent %q is not valid JSON: %w", agent, err)
	}
	if !relay.ValidAgentID(agent) {
		return nil, fmt.Errorf("agent %q of a binding is not a valid agent id", agent)
	}
	if len(b.Devices) > maxBoundDevices || len(b.Extensions) > maxBoundExtensions {
		return nil, fmt.Errorf("the binding of agent %q has %d devices and %d extensions, more than %d and %d",
			agent, len(b.Devices), len(b.Extensions), maxBoundDevices, maxBoundExtensions)
	}
	ba := &boundAgent{binding: b, raw: raw}
	for _, d := range b.Devices {
		ep, err := relay.ParseDevice(d)
		if err != nil {
			return nil, fmt.Errorf("the binding of agent %q: %w", agent, err)
		}
		ba.eps = append(ba.eps, ep)
	}
	for _, x := range b.Extensions {
		if !filter.ValidExtension(x) {
			return nil, fmt.Errorf("the binding of agent %q has a bad extension %q", agent, x)
		}
	}
	return ba, nil
}

// bindingsChanged reads the bindings of the store, publishes them and
// rebuilds the learned filter. Entries that cannot be read are left out
// with a warning.
func (a *agents) bindingsChanged() {
	if a == nil {
		return
	}
	a.tmu.Lock()
	entries := a.sharedStore().Entries(spaceBindings)
	old := a.binds.Load()
	t := &bindTable{agents: make(map[string]*boundAgent, len(entries)), byDevice: map[string]string{}, byExt: map[string]string{}}
	for agent, raw := range entries {
		if old != nil {
			if ba := old.agents[agent]; ba != nil && bytes.Equal(ba.raw, raw) {
				t.agents[agent] = ba
				continue
			}
		}
		ba, err := parseBinding(agent, raw)
		if err != nil {
			a.s.log.Warn("a CTI binding is not used", "agent", agent, "err", err)
			continue
		}
		t.agents[agent] = ba
	}
	for agent, ba := range t.agents {
		for _, d := range ba.Devices {
			t.byDevice[d] = agent
		}
		for _, x := range ba.Extensions {
			t.byExt[x] = agent
		}
	}
	a.binds.Store(t)
	a.tmu.Unlock()
	a.rebuild()
}

// bindChange is one agent's bindings changed by a request: what it had
// and what it has after.
type bindChange struct {
	agent         string
	before, after binding
	// removed are the devices and extensions taken from the agent (an
	// unbind, or another agent's bind of them).
	removedDevices, removedExts []string
}

// bind applies a validated request: a bind adds the devices and
// extensions to the agent's, taking them from any other agent that had
// them (a device or extension is bound to one agent at a time: the agent
// moved without logging out); an unbind removes those it names, or all
// of the agent's when it names none. It returns the agent's bindings
// after, and the other agents that lost some. Errors are *relay.Error.
func (a *agents) bind(req *relay.AgentsBind, by string, now time.Time) (binding, []bindChange, error) {
	devices := make([]string, 0, len(req.Devices))
	for _, d := range req.Devices {
		ep, err := relay.ParseDevice(d)
		if err != nil { // validated by the relay server already
			return binding{}, nil, &relay.Error{Code: relay.CodeBadRequest, Message: err.Error()}
		}
		devices = append(devices, ep.String())
	}
	st := a.sharedStore()
	a.bmu.Lock()
	defer a.bmu.Unlock()
	t := a.binds.Load()
	var cur binding
	if ba := t.agents[req.Agent]; ba != nil {
		cur = ba.binding
	}
	next := binding{Devices: slices.Clone(cur.Devices), Extensions: slices.Clone(cur.Extensions), By: by, At: now.UTC()}
	var moved []bindChange
	if req.Action == relay.BindActionBind {
		if t.agents[req.Agent] == nil && len(t.agents) >= maxBoundAgents {
			return cur, nil, &relay.Error{Code: relay.CodeLimit,
				Message: fmt.Sprintf("%d agents are bound already, the limit: agent %s cannot be bound before others are unbound", len(t.agents), req.Agent)}
		}
		others := map[string]*bindChange{}
		take := func(owner, dev, ext string) {
			if owner == "" || owner == req.Agent {
				return
			}
			c := others[owner]
			if c == nil {
				b := t.agents[owner].binding
				c = &bindChange{agent: owner, before: b, after: binding{Devices: slices.Clone(b.Devices), Extensions: slices.Clone(b.Extensions), By: by, At: now.UTC()}}
				others[owner] = c
			}
			if dev != "" {
				c.after.Devices = slices.DeleteFunc(c.after.Devices, func(d string) bool { return d == dev })
				c.removedDevices = append(c.removedDevices, dev)
			}
			if ext != "" {
				c.after.Extensions = slices.DeleteFunc(c.after.Extensions, func(x string) bool { return x == ext })
				c.removedExts = append(c.removedExts, ext)
			}
		}
		for _, d := range devices {
			if !slices.Contains(next.Devices, d) {
				next.Devices = append(next.Devices, d)
				take(t.byDevice[d], d, "")
			}
		}
		for _, x := range req.Extensions {
			if !slices.Contains(next.Extensions, x) {
				next.Extensions = append(next.Extensions, x)
				take(t.byExt[x], "", x)
			}
		}
		if len(next.Devices) > maxBoundDevices {
			return cur, nil, &relay.Error{Code: relay.CodeLimit,
				Message: fmt.Sprintf("agent %s would be bound to %d devices, more than %d: unbind some first", req.Agent, len(next.Devices), maxBoundDevices)}
		}
		if len(next.Extensions) > maxBoundExtensions {
			return cur, nil, &relay.Error{Code: relay.CodeLimit,
				Message: fmt.Sprintf("agent %s would be bound to %d extensions, more than %d: unbind some first", req.Agent, len(next.Extensions), maxBoundExtensions)}
		}
		for _, owner := range slices.Sorted(maps.Keys(others)) {
			moved = append(moved, *others[owner])
		}
	} else if len(devices) == 0 && len(req.Extensions) == 0 {
		next.Devices, next.Extensions = nil, nil
	} else {
		next.Devices = slices.DeleteFunc(next.Devices, func(d string) bool { return slices.Contains(devices, d) })
		next.Extensions = slices.DeleteFunc(next.Extensions, func(x string) bool { return slices.Contains(req.Extensions, x) })
	}
	changes := append([]bindChange{{agent: req.Agent, before: cur, after: next}}, moved...)
	for _, c := range changes {
		if err := storeBinding(st, c.agent, c.after); err != nil {
			return cur, nil, &relay.Error{Code: relay.CodeInternal, Message: fmt.Sprintf("the binding of agent %s could not be stored: %v", c.agent, err)}
		}
	}
	// Read back at once, so that the next request starts from this one
	// (a cluster's subscription follows later).
	a.bindingsChanged()
	return next, moved, nil
}

// storeBinding puts b under agent, or deletes the key when b binds
// nothing.
func storeBinding(st sharedStore, agent string, b binding) error {
	if len(b.Devices) == 0 && len(b.Extensions) == 0 {
		return st.Delete(spaceBindings, agent)
	}
	if b.Devices == nil {
		b.Devices = []string{}
	}
	if b.Extensions == nil {
		b.Extensions = []string{}
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return err
	}
	return st.Put(spaceBindings, agent, raw)
}

var _ relay.BindHandler = (*server)(nil)

// AgentsBind implements relay.BindHandler, the CTI hook: a certificate
// with the cti or the admin role (anyone on an --insecure listener, as
// for the other administrator operations) binds or unbinds an agent; any
// other is refused with CodeUnauthorized. Every request is audited
// (agent-bound, agent-unbound), and so is every agent that loses a
// device or extension to another's bind (agent-unbound, with the reason).
func (s *server) AgentsBind(ctx context.Context, p *relay.Peer, req *relay.AgentsBind) (*relay.AgentsBindReply, error) {
	action := actionAgentBound
	if req.Action == relay.BindActionUnbind {
		action = actionAgentUnbound
	}
	rec := s.auditRecord(p, action)
	rec.Agent = req.Agent
	rec.Endpoints, rec.Extensions = req.Devices, req.Extensions
	if !s.mayBind(p) {
		subject, _ := smtls.PeerIdentity(p.TLS)
		err := &relay.Error{Code: relay.CodeUnauthorized,
			Message: fmt.Sprintf("certificate %q has neither the cti nor the admin role: it may not bind or unbind agents", subject)}
		rec.Result, rec.Reason = audit.ResultRefused, err.Message
		s.auditBind(rec)
		return nil, err
	}
	after, moved, err := s.agents.bind(req, peerName(p), s.now())
	if err != nil {
		rec.Result, rec.Reason = audit.ResultRefused, err.Error()
		s.auditBind(rec)
		return nil, err
	}
	rec.Result = audit.ResultAccepted
	s.auditBind(rec)
	for _, c := range moved {
		m := s.auditRecord(p, actionAgentUnbound)
		m.Agent, m.Result = c.agent, audit.ResultAccepted
		m.Endpoints, m.Extensions = c.removedDevices, c.removedExts
		m.Reason = "bound to agent " + req.Agent
		s.auditBind(m)
	}
	s.log.Info("agent "+req.Action, "agent", req.Agent, "devices", after.Devices, "extensions", after.Extensions, "by", peerName(p))
	return &relay.AgentsBindReply{Agent: req.Agent, Devices: after.Devices, Extensions: after.Extensions}, nil
}

// auditBind writes a line of the CTI hook; a failure is logged (the
// binding stands: it names devices, it grants no monitoring).
func (s *server) auditBind(rec audit.Record) {
	if err := s.writeAudit(rec); err != nil {
		s.log.Error("cannot write the audit line of an agent binding", "agent", rec.Agent, "action", rec.Action, "err", err)
	}
}

// mayBind reports whether p may bind agents: a certificate with the cti
// role or an administrator's; without TLS (--insecure) anyone, as anyone
// may stop any session there.
func (s *server) mayBind(p *relay.Peer) bool {
	if p.TLS == nil {
		return true
	}
	return smtls.PeerHasRole(p.TLS, smtls.RoleCTI) || s.isAdmin(p)
}

// boundDeviceStatus lists b's devices for smctl agents, learned "cti"
// since the last change.
func boundDeviceStatus(b *boundAgent) []relay.AgentDevice {
	out := make([]relay.AgentDevice, 0, len(b.Devices))
	for _, d := range b.Devices {
		out = append(out, relay.AgentDevice{Address: d, Learned: relay.DeviceFromCTI, Since: stamp(b.At)})
	}
	return out
}
