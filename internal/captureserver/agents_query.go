package captureserver

import (
	"context"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/silentmon/silentmon/internal/siptrack"
	"github.com/silentmon/silentmon/relay"
)

var _ relay.AgentsHandler = (*server)(nil)

// AgentsQuery implements relay.AgentsHandler: the agents of the
// directory (merged over the cluster), those a CTI bound, and the extensions SIP tracking saw register or call that
// no directory agent claims (listed with their extension as id), each
// with its devices, its live calls and the sessions that monitor it, one
// page at a time. Any client may ask: it is what a supervisor picks an
// agent from.
func (s *server) AgentsQuery(ctx context.Context, p *relay.Peer, req *relay.AgentsQuery) (*relay.AgentsReply, error) {
	all := s.clusterList(ctx)
	out := &relay.AgentsReply{RequestID: req.RequestID, Agents: []relay.AgentStatus{}}
	limit := req.Limit
	if limit <= 0 {
		limit = relay.DefaultAgentsLimit
	}
	for _, a := range all {
		if req.Team != "" && a.Team != req.Team {
			continue
		}
		if req.After != "" && a.ID <= req.After {
			continue
		}
		if len(out.Agents) == limit {
			out.More = true
			break
		}
		out.Agents = append(out.Agents, a)
	}
	return out, nil
}

// list returns every agent known, sorted by id.
func (a *agents) list() []relay.AgentStatus {
	if a == nil {
		return nil
	}
	byID := map[string]*relay.AgentStatus{}
	owner := map[string]string{} // extension → agent id
	if d := a.dir.Load(); d != nil {
		for _, ag := range d.Agents() {
			st := &relay.AgentStatus{ID: ag.ID, Name: ag.Name, Team: ag.Team, Extensions: ag.Extensions, Mobile: ag.Mobile,
				Devices: []relay.AgentDevice{}, State: relay.AgentUnknown}
			for _, dev := range ag.Devices {
				if dev.IP.IsValid() {
					st.Devices = append(st.Devices, relay.AgentDevice{Address: dev.IP.String(), Learned: relay.DeviceFromDirectory})
				}
				if len(dev.MAC) == 6 {
					st.Devices = append(st.Devices, relay.AgentDevice{Address: dev.MAC.String(), Learned: relay.DeviceFromDirectory})
				}
			}
			byID[ag.ID] = st
			owner[ag.ID] = ag.ID
			for _, x := range ag.Extensions {
				owner[x] = ag.ID
			}
		}
	}
	// The agents a CTI bound, with their devices (learned "cti") and
	// extensions; a bound extension is the bound agent's, whatever the
	// directory says (the CTI knows who logged in where).
	if t := a.binds.Load(); t != nil {
		for _, id := range slices.Sorted(maps.Keys(t.agents)) {
			b := t.agents[id]
			st := byID[id]
			if st == nil {
				st = &relay.AgentStatus{ID: id, Devices: []relay.AgentDevice{}, State: relay.AgentUnknown}
				byID[id] = st
			}
			st.Devices = append(st.Devices, boundDeviceStatus(b)...)
			for _, x := range b.Extensions {
				if !slices.Contains(st.Extensions, x) {
					st.Extensions = append(st.Extensions, x)
				}
				owner[x] = id
			}
			if _, ok := owner[id]; !ok {
				owner[id] = id
			}
		}
	}
	// The agents of the sessions are agents too, directory or not.
	for _, sess := range a.s.filter.Sessions() {
		if _, ok := owner[sess.Agent]; !ok {
			owner[sess.Agent] = sess.Agent
			for _, x := range sess.Extensions {
				if _, ok := owner[x]; !ok {
					owner[x] = sess.Agent
				}
			}
		}
	}
	get := func(user string) *relay.AgentStatus {
		id, ok := owner[user]
		if !ok {
			id = user
			owner[user] = user
		}
		st := byID[id]
		if st == nil {
			st = &relay.AgentStatus{ID: id, Devices: []relay.AgentDevice{}, State: relay.AgentUnknown}
			byID[id] = st
		}
		return st
	}
	if a.tracker != nil {
		snap := a.tracker.Snapshot()
		for _, r := range snap.Registrations {
			st := get(r.Extension)
			st.Devices = append(st.Devices, relay.AgentDevice{Address: r.Contact.String(), Learned: relay.DeviceFromRegister,
				Since: stamp(r.Learned)})
			if st.State == relay.AgentUnknown {
				st.State = relay.AgentIdle
			}
		}
		for _, c := range snap.Calls {
			if c.State == siptrack.StateEnded {
				continue
			}
			users := map[string]bool{}
			for _, l := range c.Legs {
				users[l.User] = true
			}
			for u := range users {
				if _, known := owner[u]; !known && !registered(snap, u) {
					// Not an agent: the customer's number, a gateway.
					continue
				}
				st := get(u)
				ac := callStatus(c, u)
				st.Calls = append(st.Calls, ac)
				st.State = busier(st.State, c.State)
				// The agent's side of the call's SDP names the device it
				// talks from (a phone, a softphone, a gateway's port).
				for _, addr := range ac.Local {
					if !slices.ContainsFunc(st.Devices, func(d relay.AgentDevice) bool { return d.Address == addr }) {
						st.Devices = append(st.Devices, relay.AgentDevice{Address: addr, Learned: relay.DeviceFromCall, Since: ac.Started})
					}
				}
			}
		}
	}
	for _, sess := range a.s.filter.Sessions() {
		for _, u := range a.users(sess) {
			if id, ok := owner[u]; ok {
				if st := byID[id]; st != nil && !slices.Contains(st.Monitored, sess.ID) {
					st.Monitored = append(st.Monitored, sess.ID)
				}
			}
		}
	}
	out := make([]relay.AgentStatus, 0, len(byID))
	for _, st := range byID {
		if st.State == relay.AgentUnknown && len(st.Calls) == 0 && a.tracker != nil && len(st.Devices) > 0 {
			st.State = relay.AgentIdle
		}
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func registered(snap *siptrack.Snapshot, user string) bool {
	for _, r := range snap.Registrations {
		if r.Extension == user {
			return true
		}
	}
	return false
}

// callStatus is call c as seen by user's side.
func callStatus(c siptrack.Call, user string) relay.AgentCall {
	ac := relay.AgentCall{CallID: c.CallID, State: c.State, Local: []string{}, Remote: []string{}, Started: stamp(c.Started)}
	switch user {
	case c.From:
		ac.Peer = c.To
	case c.To:
		ac.Peer = c.From
	}
	for _, l := range c.Legs {
		for _, m := range l.Media {
			if m.Kind != "audio" {
				continue
			}
			addr := m.Addr.String()
			if l.User == user {
				ac.Local = append(ac.Local, addr)
			} else {
				ac.Remote = append(ac.Remote, addr)
				if ac.Peer == "" {
					ac.Peer = l.User
				}
			}
			if strings.Contains(m.Profile, "SAVP") {
				ac.Encrypted = true
			}
			for _, pt := range sortedPTs(m.PayloadTypes) {
				if name, _, _ := strings.Cut(m.PayloadTypes[pt], "/"); name != "" && !slices.Contains(ac.Codecs, name) {
					ac.Codecs = append(ac.Codecs, name)
				}
			}
		}
	}
	return ac
}

func sortedPTs(m map[uint8]string) []uint8 {
	out := make([]uint8, 0, len(m))
	for pt := range m {
		out = append(out, pt)
	}
	slices.Sort(out)
	return out
}

// busier returns the busier of an agent state and a call state: talking,
// then held, then ringing, then idle.
func busier(agent, call string) string {
	rank := map[string]int{relay.AgentUnknown: 0, relay.AgentIdle: 1, relay.AgentRinging: 2, relay.AgentHeld: 3, relay.AgentTalking: 4}
	if rank[call] > rank[agent] {
		return call
	}
	return agent
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
