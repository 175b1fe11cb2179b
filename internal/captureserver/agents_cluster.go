package captureserver

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/relay"
)

// The SIP each member sees on its own SPAN is its own: a call seen by
// member B is known to member A only by asking B. Two cluster questions
// do that: "agents-sip" (what SIP tracking knows of agents: registered
// and call devices, live calls), merged into smctl agents' answer on
// whichever member is asked; and "agent-known" (does this member's SIP
// know any of these user parts), asked before a start naming no endpoint
// is refused as unknown.
const (
	agentsGatherKind = "agents-sip"
	knownGatherKind  = "agent-known"
	// agentsGatherTimeout bounds the wait for the other members; a
	// member that does not answer in time is left out of the answer.
	agentsGatherTimeout = time.Second
	// maxKnownUsers bounds the user parts of one agent-known question:
	// the agent id, the session's and the directory's extensions, the
	// CTI binding's.
	maxKnownUsers = 1 + 3*filter.MaxExtensions
)

// agentsGatherer asks the other members of the cluster (cluster.Node).
type agentsGatherer interface {
	Gather(ctx context.Context, kind string, req []byte, timeout time.Duration) (map[string][]byte, map[string]error, error)
	HandleGather(kind string, fn func(req []byte) []byte) (stop func(), err error)
}

// serveAgentsGather answers the other members' agents-sip and
// agent-known questions; without a cluster it does nothing.
func (s *server) serveAgentsGather(g agentsGatherer) {
	if g == nil || s.agents == nil || s.agents.tracker == nil {
		return
	}
	if _, err := g.HandleGather(agentsGatherKind, func([]byte) []byte {
		b, _ := json.Marshal(s.agents.sipOnly())
		return b
	}); err != nil {
		s.log.Error("cannot answer the other members' agent questions", "err", err)
	}
	if _, err := g.HandleGather(knownGatherKind, func(req []byte) []byte {
		var users []string
		if json.Unmarshal(req, &users) != nil || len(users) == 0 || len(users) > maxKnownUsers {
			return []byte("false")
		}
		for _, u := range users {
			if !relay.ValidAgentID(u) && !filter.ValidExtension(u) {
				return []byte("false")
			}
		}
		if s.agents.sipKnows(users) {
			return []byte("true")
		}
		return []byte("false")
	}); err != nil {
		s.log.Error("cannot answer the other members' agent questions", "err", err)
	}
}

// sipOnly returns what this member's SIP tracking adds to the agents it
// lists: the agents with a device learned from SIP or a live call, with
// only those devices.
func (a *agents) sipOnly() []relay.AgentStatus {
	var out []relay.AgentStatus
	for _, st := range a.list() {
		devs := slices.DeleteFunc(slices.Clone(st.Devices), func(d relay.AgentDevice) bool {
			return d.Learned != relay.DeviceFromRegister && d.Learned != relay.DeviceFromCall
		})
		if len(devs) == 0 && len(st.Calls) == 0 {
			continue
		}
		out = append(out, relay.AgentStatus{ID: st.ID, Extensions: st.Extensions, Devices: devs, State: st.State, Calls: st.Calls})
	}
	return out
}

// sipKnows reports whether this member's SIP tracking has a registration
// or a call of one of users.
func (a *agents) sipKnows(users []string) bool {
	if a == nil || a.tracker == nil {
		return false
	}
	for _, r := range a.tracker.Snapshot().Registrations {
		if slices.Contains(users, r.Extension) {
			return true
		}
	}
	for _, u := range users {
		if len(a.tracker.MediaOf(u)) > 0 {
			return true
		}
	}
	return false
}

// clusterList is list with what the other members' SIP tracking knows
// merged in: their devices and calls, each once, and the busiest state.
// A member that does not answer in time is left out.
func (s *server) clusterList(ctx context.Context) []relay.AgentStatus {
	own := s.agents.list()
	if s.node == nil {
		return own
	}
	replies, _, err := s.node.Gather(ctx, agentsGatherKind, []byte("{}"), agentsGatherTimeout)
	if err != nil || len(replies) == 0 {
		return own
	}
	return mergeAgents(own, replies)
}

// mergeAgents merges the other members' parts (JSON lists of
// relay.AgentStatus, by member) into own, sorted by id. A part that does
// not decode, or an entry whose id is not valid, is left out.
func mergeAgents(own []relay.AgentStatus, parts map[string][]byte) []relay.AgentStatus {
	byID := make(map[string]int, len(own))
	for i, st := range own {
		byID[st.ID] = i
	}
	names := make([]string, 0, len(parts))
	for n := range parts {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		var theirs []relay.AgentStatus
		if json.Unmarshal(parts[n], &theirs) != nil {
			continue
		}
		for _, t := range theirs {
			if !relay.ValidAgentID(t.ID) && !filter.ValidExtension(t.ID) {
				continue
			}
			i, ok := byID[t.ID]
			if !ok {
				t.Monitored = nil // sessions are counted by the member asked
				if t.Devices == nil {
					t.Devices = []relay.AgentDevice{}
				}
				byID[t.ID] = len(own)
				own = append(own, t)
				continue
			}
			st := &own[i]
			for _, d := range t.Devices {
				if !slices.ContainsFunc(st.Devices, func(x relay.AgentDevice) bool { return x.Address == d.Address && x.Learned == d.Learned }) {
					st.Devices = append(st.Devices, d)
				}
			}
			for _, c := range t.Calls {
				if !slices.ContainsFunc(st.Calls, func(x relay.AgentCall) bool { return x.CallID == c.CallID }) {
					st.Calls = append(st.Calls, c)
				}
				st.State = busier(st.State, c.State)
			}
			if st.State == relay.AgentUnknown && t.State != relay.AgentUnknown {
				st.State = t.State
			}
		}
	}
	slices.SortFunc(own, func(x, y relay.AgentStatus) int {
		switch {
		case x.ID < y.ID:
			return -1
		case x.ID > y.ID:
			return 1
		}
		return 0
	})
	return own
}

// clusterKnows reports whether another member's SIP tracking knows
// sess's agent (a registration or a call of one of its user parts).
func (s *server) clusterKnows(sess *filter.Session) bool {
	if s.node == nil {
		return false
	}
	users := s.agents.users(sess)
	if len(users) > maxKnownUsers {
		users = users[:maxKnownUsers]
	}
	req, _ := json.Marshal(users)
	ctx, cancel := context.WithTimeout(context.Background(), 2*agentsGatherTimeout)
	defer cancel()
	replies, _, err := s.node.Gather(ctx, knownGatherKind, req, agentsGatherTimeout)
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	for _, b := range replies {
		if string(b) == "true" {
			return true
		}
	}
	return false
}
