package cluster

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Status is a point-in-time view of the cluster from this member, for
// `smctl status` (JSON tags are part of its output) and metrics.
type Status struct {
	Member      string          `json:"member"`
	Cluster     string          `json:"cluster"`
	RouteListen string          `json:"route_listen"`
	TLS         bool            `json:"tls"`
	Seeds       []string        `json:"seeds"`
	Members     []MemberStatus  `json:"members"`
	Routes      []RouteStatus   `json:"routes"`
	Sessions    []SessionStatus `json:"sessions"`
	// Tombstones counts the ended session IDs remembered (refused if
	// announced again).
	Tombstones int `json:"tombstones"`
	// SlowConsumers counts connections the embedded server cut off for
	// not keeping up since start; SlowConsumerRoutes counts the routes
	// among them. SlowConsumerBus counts messages this member's own bus
	// subscription dropped.
	SlowConsumers      int64  `json:"slow_consumers"`
	SlowConsumerRoutes uint64 `json:"slow_consumer_routes"`
	SlowConsumerBus    uint64 `json:"slow_consumer_bus"`
	Stats              Stats  `json:"stats"`
}

// MemberStatus is one member as this member knows it. State is "self",
// "up" (heard from within the session TTL) or "unreachable".
type MemberStatus struct {
	Name      string    `json:"name"`
	State     string    `json:"state"`
	LastSeen  time.Time `json:"last_seen"`
	Owns      int       `json:"owns"`
	Capturing []string  `json:"capturing"`
}

// RouteStatus is one open route to a peer, from the embedded server's
// monitoring data.
type RouteStatus struct {
	Member     string `json:"member"`
	ServerID   string `json:"server_id"`
	Address    string `json:"address"`
	Solicited  bool   `json:"solicited"`
	Configured bool   `json:"configured"`
	State      string `json:"state"`
	RTT        string `json:"rtt,omitempty"`
	Uptime     string `json:"uptime"`
	Pending    int    `json:"pending_bytes"`
	InMsgs     int64  `json:"in_msgs"`
	OutMsgs    int64  `json:"out_msgs"`
	InBytes    int64  `json:"in_bytes"`
	OutBytes   int64  `json:"out_bytes"`
}

// SessionStatus is one session: who owns it and who captures it. The
// owner is the member that refreshes it; it changes when a member adopts
// the session of a silent owner (PreviousOwner is then the silent one) or
// a client re-asserts it elsewhere. OwnerSince is when this member
// learned of the current owner.
type SessionStatus struct {
	ID            string    `json:"id"`
	Agent         string    `json:"agent"`
	Supervisor    string    `json:"supervisor"`
	Owner         string    `json:"owner"`
	PreviousOwner string    `json:"previous_owner,omitempty"`
	OwnerSince    time.Time `json:"owner_since"`
	Version       uint64    `json:"version"`
	AgeMS         int64     `json:"age_ms"`
	Until         time.Time `json:"until,omitzero"`
	CapturedBy    []string  `json:"captured_by"`
}

// Stats are the node's event counters since start. Withdrawn counts the
// ends decided on this member (Withdraw, End); Ended every session that
// disappeared from this member's set, whoever decided it; LifetimeOver
// those among them that ended because of their lifetime; Adopted the sessions
// this member took over from a silent owner (or resumed after a restart);
// TombstonesForgotten the tombstones dropped by Config.MaxTombstones
// before their time; EndsDropped the ends an end subscriber was too slow
// to receive.
type Stats struct {
	Announced           uint64 `json:"announced"`
	Withdrawn           uint64 `json:"withdrawn"`
	Received            uint64 `json:"received"`
	Invalid             uint64 `json:"invalid"`
	Ended               uint64 `json:"ended"`
	LifetimeOver        uint64 `json:"lifetime_over"`
	Adopted             uint64 `json:"adopted"`
	TombstonesForgotten uint64 `json:"tombstones_forgotten"`
	EndsDropped         uint64 `json:"ends_dropped"`
	Snapshots           uint64 `json:"snapshots"`
	SnapshotFails       uint64 `json:"snapshot_fails"`
}

// Stats returns the node's counters.
func (n *Node) Stats() Stats {
	n.mu.Lock()
	forgotten := n.st.forgotten
	n.mu.Unlock()
	return Stats{
		Announced:           n.stats.announced.Load(),
		Withdrawn:           n.stats.withdrawn.Load(),
		Received:            n.stats.received.Load(),
		Invalid:             n.stats.invalid.Load(),
		Ended:               n.stats.ended.Load(),
		LifetimeOver:        n.stats.lifetimeOver.Load(),
		Adopted:             n.stats.adopted.Load(),
		TombstonesForgotten: forgotten,
		EndsDropped:         n.stats.endsDropped.Load(),
		Snapshots:           n.stats.snapshots.Load(),
		SnapshotFails:       n.stats.snapshotErrs.Load(),
	}
}

// Status returns the members, routes and sessions as this member sees
// them.
func (n *Node) Status() Status {
	now := n.cfg.Now()
	st := Status{
		Member:      n.cfg.Name,
		Cluster:     n.cfg.ClusterName,
		RouteListen: n.RouteAddr(),
		TLS:         !n.cfg.Insecure,
		Seeds:       slices.Clone(n.cfg.Peers),
		Members:     []MemberStatus{},
		Routes:      []RouteStatus{},
		Sessions:    []SessionStatus{},
		Stats:       n.Stats(),
	}
	st.SlowConsumerBus = n.stats.slowConsumer.Load()
	if rz, err := n.srv.Routez(&server.RoutezOptions{}); err == nil {
		for _, r := range rz.Routes {
			st.Routes = append(st.Routes, RouteStatus{
				Member: r.RemoteName, ServerID: r.RemoteID,
				Address:   hostPort(r.IP, r.Port),
				Solicited: r.DidSolicit, Configured: r.IsConfigured,
				State: "up", RTT: r.RTT, Uptime: r.Uptime, Pending: r.Pending,
				InMsgs: r.InMsgs, OutMsgs: r.OutMsgs, InBytes: r.InBytes, OutBytes: r.OutBytes,
			})
		}
		slices.SortFunc(st.Routes, func(a, b RouteStatus) int { return strings.Compare(a.Member, b.Member) })
	}
	if vz, err := n.srv.Varz(&server.VarzOptions{}); err == nil {
		st.SlowConsumers = vz.SlowConsumers
		if vz.SlowConsumersStats != nil {
			st.SlowConsumerRoutes = vz.SlowConsumersStats.Routes
		}
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	st.Tombstones = len(n.st.tombs)
	owns := make(map[string]int)
	for _, e := range n.st.sessions {
		owns[e.owner]++
	}
	capturedBy := make(map[string][]string)
	for name, mi := range n.st.members {
		state := "up"
		switch {
		case name == n.cfg.Name:
			state = "self"
		case now.Sub(mi.seen) > n.cfg.SessionTTL:
			state = "unreachable"
		}
		st.Members = append(st.Members, MemberStatus{
			Name: name, State: state, LastSeen: mi.seen, Owns: owns[name],
			Capturing: append([]string{}, mi.capturing...),
		})
		if state != "unreachable" {
			for _, id := range mi.capturing {
				capturedBy[id] = append(capturedBy[id], name)
			}
		}
	}
	slices.SortFunc(st.Members, func(a, b MemberStatus) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range n.st.list() {
		e := n.st.sessions[s.ID]
		by := capturedBy[s.ID]
		slices.Sort(by)
		if by == nil {
			by = []string{}
		}
		st.Sessions = append(st.Sessions, SessionStatus{
			ID: s.ID, Agent: s.Agent, Supervisor: s.Supervisor, Owner: e.owner,
			PreviousOwner: e.prevOwner, OwnerSince: e.ownerSince,
			Version: e.version, AgeMS: n.st.age(e, now).Milliseconds(), Until: s.Until, CapturedBy: by,
		})
	}
	return st
}

func hostPort(ip string, port int) string {
	if ip == "" {
		return ""
	}
	if strings.Contains(ip, ":") {
		return "[" + ip + "]:" + strconv.Itoa(port)
	}
	return ip + ":" + strconv.Itoa(port)
}
