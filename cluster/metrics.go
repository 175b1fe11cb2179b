package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a Prometheus collector of the node's cluster metrics
// (all named silentmon_cluster_*): members by state, open routes with their
// traffic and RTT, sessions known and owned, the embedded server's slow
// consumers, the node's event counters, and the shared store's spaces and
// counters (silentmon_cluster_shared_*). Each scrape takes one Status and
// one SharedStats.
// Register it once; it is safe for concurrent use.
func (n *Node) Collector() prometheus.Collector { return &collector{n: n} }

var (
	descMembers = prometheus.NewDesc("silentmon_cluster_members",
		"Cluster members known to this member, by state (self, up, unreachable).", []string{"state"}, nil)
	descRoutes = prometheus.NewDesc("silentmon_cluster_routes",
		"Open routes to other members.", nil, nil)
	descRouteRTT = prometheus.NewDesc("silentmon_cluster_route_rtt_seconds",
		"Round-trip time of the route to a peer.", []string{"peer"}, nil)
	descRouteBytes = prometheus.NewDesc("silentmon_cluster_route_bytes_total",
		"Bytes on the route to a peer since it opened.", []string{"peer", "direction"}, nil)
	descRouteMsgs = prometheus.NewDesc("silentmon_cluster_route_messages_total",
		"Messages on the route to a peer since it opened.", []string{"peer", "direction"}, nil)
	descSessions = prometheus.NewDesc("silentmon_cluster_sessions",
		"Monitor sessions in the converged set.", nil, nil)
	descOwned = prometheus.NewDesc("silentmon_cluster_sessions_owned",
		"Monitor sessions this member owns and refreshes.", nil, nil)
	descTombs = prometheus.NewDesc("silentmon_cluster_tombstones",
		"Ended session IDs remembered (refused if announced again).", nil, nil)
	descSlow = prometheus.NewDesc("silentmon_cluster_slow_consumers_total",
		"Connections the embedded NATS server cut off as slow consumers, by kind (route, any, bus: messages dropped by this member's bus subscription).", []string{"kind"}, nil)
	descEvents = prometheus.NewDesc("silentmon_cluster_events_total",
		"Cluster events on this member.", []string{"event"}, nil)
	descSharedEntries = prometheus.NewDesc("silentmon_cluster_shared_entries",
		"Live keys of a shared store space.", []string{"space"}, nil)
	descSharedTombs = prometheus.NewDesc("silentmon_cluster_shared_tombstones",
		"Deleted keys of a shared store space still remembered.", []string{"space"}, nil)
	descSharedBytes = prometheus.NewDesc("silentmon_cluster_shared_bytes",
		"Bytes of the values in the shared store.", nil, nil)
	descSharedEvents = prometheus.NewDesc("silentmon_cluster_shared_events_total",
		"Shared store events on this member (entries from peers dropped as invalid or refused for the bounds included).", []string{"event"}, nil)
)

type collector struct{ n *Node }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMembers, descRoutes, descRouteRTT, descRouteBytes, descRouteMsgs,
		descSessions, descOwned, descTombs, descSlow, descEvents,
		descSharedEntries, descSharedTombs, descSharedBytes, descSharedEvents} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.n.Status()
	states := map[string]int{"self": 0, "up": 0, "unreachable": 0}
	owned := 0
	for _, m := range st.Members {
		states[m.State]++
		if m.State == "self" {
			owned = m.Owns
		}
	}
	for s, v := range states {
		ch <- prometheus.MustNewConstMetric(descMembers, prometheus.GaugeValue, float64(v), s)
	}
	ch <- prometheus.MustNewConstMetric(descRoutes, prometheus.GaugeValue, float64(len(st.Routes)))
	for _, r := range st.Routes {
		if d, err := time.ParseDuration(r.RTT); err == nil {
			ch <- prometheus.MustNewConstMetric(descRouteRTT, prometheus.GaugeValue, d.Seconds(), r.Member)
		}
		ch <- prometheus.MustNewConstMetric(descRouteBytes, prometheus.CounterValue, float64(r.InBytes), r.Member, "in")
		ch <- prometheus.MustNewConstMetric(descRouteBytes, prometheus.CounterValue, float64(r.OutBytes), r.Member, "out")
		ch <- prometheus.MustNewConstMetric(descRouteMsgs, prometheus.CounterValue, float64(r.InMsgs), r.Member, "in")
		ch <- prometheus.MustNewConstMetric(descRouteMsgs, prometheus.CounterValue, float64(r.OutMsgs), r.Member, "out")
	}
	ch <- prometheus.MustNewConstMetric(descSessions, prometheus.GaugeValue, float64(len(st.Sessions)))
	ch <- prometheus.MustNewConstMetric(descOwned, prometheus.GaugeValue, float64(owned))
	ch <- prometheus.MustNewConstMetric(descTombs, prometheus.GaugeValue, float64(st.Tombstones))
	ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(st.SlowConsumers), "any")
	ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(st.SlowConsumerRoutes), "route")
	ch <- prometheus.MustNewConstMetric(descSlow, prometheus.CounterValue, float64(st.SlowConsumerBus), "bus")
	for ev, v := range map[string]uint64{
		"announced": st.Stats.Announced, "withdrawn": st.Stats.Withdrawn, "received": st.Stats.Received,
		"invalid": st.Stats.Invalid, "ended": st.Stats.Ended, "lifetime_over": st.Stats.LifetimeOver,
		"adopted": st.Stats.Adopted, "tombstone_forgotten": st.Stats.TombstonesForgotten,
		"ends_dropped": st.Stats.EndsDropped, "snapshot": st.Stats.Snapshots,
		"snapshot_failed": st.Stats.SnapshotFails,
	} {
		ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(v), ev)
	}
	sh := c.n.SharedStats()
	for space, sp := range sh.Spaces {
		ch <- prometheus.MustNewConstMetric(descSharedEntries, prometheus.GaugeValue, float64(sp.Entries), space)
		ch <- prometheus.MustNewConstMetric(descSharedTombs, prometheus.GaugeValue, float64(sp.Tombstones), space)
	}
	ch <- prometheus.MustNewConstMetric(descSharedBytes, prometheus.GaugeValue, float64(sh.Bytes))
	for ev, v := range map[string]uint64{
		"put": sh.Puts, "delete": sh.Deletes, "received": sh.Received, "invalid": sh.Invalid,
		"refused": sh.Refused, "tombstone_forgotten": sh.TombstonesForgotten,
		"snapshot": sh.Snapshots, "snapshot_failed": sh.SnapshotFails,
	} {
		ch <- prometheus.MustNewConstMetric(descSharedEvents, prometheus.CounterValue, float64(v), ev)
	}
}
