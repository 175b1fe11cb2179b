package captureserver

import (
	"sort"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/status"
)

// relayed is the packets sent to supervisor services since start, links
// closed since included: the exit summary's "packets relayed".
func (s *server) relayed() uint64 {
	if s.fw == nil {
		return 0
	}
	return s.fw.Totals().Sent
}

// registerMetrics registers smserver's metrics in reg, by Prometheus
// conventions: counters only go up and end in _total, gauges do not,
// times in seconds, sizes in bytes; per-session series are labelled with
// the session id and agent only and vanish when the session ends.
func (s *server) registerMetrics(reg *prometheus.Registry) {
	counter := func(name, help string, v *atomic.Uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "capture", Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	s.agents.register(reg)
	counter("frames_total", "Frames read from the capture sources.", &s.stats.frames)
	counter("decode_errors_total", "Frames that failed to decode.", &s.stats.decodeErrors)
	counter("rtp_packets_total", "RTP packets decoded.", &s.stats.rtp)
	counter("rtcp_packets_total", "RTCP packets decoded.", &s.stats.rtcp)
	counter("matched_packets_total", "RTP packets belonging to a monitor session.", &s.stats.matched)
	counter("srtp_decrypted_total", "SRTP packets of monitored calls decrypted with the SDES keys of their SDP.", &s.stats.srtpDecrypted)
	counter("srtp_failed_total", "SRTP packets of monitored calls that failed authentication or decryption (dropped).", &s.stats.srtpFailed)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Subsystem: "capture", Name: "streams", Help: "RTP streams tracked by the capture's stream tables."},
		func() float64 {
			n := 0
			for _, w := range s.workers {
				_, t, _ := w.streamStats()
				n += t
			}
			return float64(n)
		}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "capture", Name: "streams_over_cap_total", Help: "RTP packets of streams beyond the stream table's cap (not tracked)."},
		func() float64 {
			var n uint64
			for _, w := range s.workers {
				_, _, o := w.streamStats()
				n += o
			}
			return float64(n)
		}))
	kernel := func(name, help string, get func(capture.LiveStats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "capture", Name: name, Help: help},
			func() float64 {
				var n uint64
				for _, l := range s.lives {
					n += get(l.Stats())
				}
				return float64(n)
			}))
	}
	kernel("kernel_packets_total", "Frames the kernel passed to the capture rings (after the BPF filter).", func(st capture.LiveStats) uint64 { return st.Packets })
	kernel("kernel_drops_total", "Frames the kernel dropped because a capture ring was full.", func(st capture.LiveStats) uint64 { return st.Drops })
	kernel("kernel_freezes_total", "Times a capture ring had no free block.", func(st capture.LiveStats) uint64 { return st.FreezeQueue })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Name: "sessions", Help: "Active monitor sessions."},
		func() float64 { return float64(len(s.filter.Sessions())) }))
	s.registerPolicyMetrics(reg)
	reg.MustRegister(newMOSCollector(s.sessionStreams))
	s.refused.register(reg)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Name: "record_failures_total",
		Help: "Recordings (--record) that could not be opened or failed later (write error, disk full)."},
		func() float64 { return float64(s.rec.failures.Load()) }))
	// The forwarder's totals: every supervisor link adds to them, so they
	// keep counting across links coming and going.
	relay := func(name, help string, get func() uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "relay", Name: name, Help: help},
			func() float64 {
				if s.fw == nil {
					return 0
				}
				return float64(get())
			}))
	}
	relay("media_sent_total", "Media packets sent to supervisor services.", func() uint64 { return s.fw.Totals().Sent })
	relay("media_sent_bytes_total", "Bytes of the media frames sent to supervisor services.", func() uint64 { return s.fw.Totals().Bytes })
	relay("media_dropped_total", "Media packets dropped because a supervisor queue was full or its link closed.", func() uint64 { return s.fw.Totals().Dropped })
	relay("media_lost_total", "Media packets whose write to a supervisor service failed.", func() uint64 { return s.fw.Totals().Lost })
	relay("reconnects_total", "Reconnections to supervisor services.", func() uint64 { return s.fw.Totals().Reconnects })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Subsystem: "relay", Name: "supervisors_unreachable",
		Help: "Supervisor services in use that are not connected now."},
		func() float64 {
			n := 0
			if s.fw != nil {
				for _, st := range s.fw.Stats() {
					if st.State != "connected" {
						n++
					}
				}
			}
			return float64(n)
		}))
}

// maxSessionSeries bounds the sessions with MOS series: the sessions of
// lowest MOS first.
const maxSessionSeries = 500

// mosCollector exports, for every session with a MOS (at most
// maxSessionSeries, the lowest first), the lowest MOS of its streams in
// each direction and overall, computed at each scrape from sessions: the
// series of a session vanish with it. Labels: session id, agent,
// direction.
type mosCollector struct {
	sessions func() []status.SessionStatus
	dir      *prometheus.Desc
	session  *prometheus.Desc
}

func newMOSCollector(sessions func() []status.SessionStatus) *mosCollector {
	return &mosCollector{
		sessions: sessions,
		dir: prometheus.NewDesc("silentmon_session_mos",
			"Lowest E-model (ITU-T G.107) MOS of a monitor session's RTP streams in one direction, from their codec, network loss and jitter.",
			[]string{"session", "agent", "direction"}, nil),
		session: prometheus.NewDesc("silentmon_session_worst_mos",
			"Lowest E-model MOS among a monitor session's streams.",
			[]string{"session", "agent"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *mosCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.dir
	ch <- c.session
}

// Collect implements prometheus.Collector.
func (c *mosCollector) Collect(ch chan<- prometheus.Metric) {
	ss := c.sessions()
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].WorstMOS < ss[j].WorstMOS })
	n := 0
	for _, x := range ss {
		if x.WorstMOS <= 0 {
			continue
		}
		if n++; n > maxSessionSeries {
			return
		}
		worst := map[string]float64{}
		for _, y := range x.Streams {
			if w, ok := worst[y.Direction]; y.MOS > 0 && (!ok || y.MOS < w) {
				worst[y.Direction] = y.MOS
			}
		}
		for d, v := range worst {
			ch <- prometheus.MustNewConstMetric(c.dir, prometheus.GaugeValue, v, x.ID, x.Agent, d)
		}
		ch <- prometheus.MustNewConstMetric(c.session, prometheus.GaugeValue, x.WorstMOS, x.ID, x.Agent)
	}
}
