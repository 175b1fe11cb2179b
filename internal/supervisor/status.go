package supervisor

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/relay"
)

// view is a session's state at one moment.
type view struct {
	s       *session
	st      playout.Stats
	open    bool
	servers []string
	agent   string
	reason  string
}

// views returns the open sessions, most recently started first, and (if
// history) the closed ones kept, most recently closed first.
func (s *Supervisor) views(history bool) []view {
	open := *s.table.Load()
	s.mu.Lock()
	out := make([]view, 0, len(open)+len(s.history))
	for _, v := range open {
		servers := append([]string(nil), v.servers...)
		if p := v.playedFrom.Load(); p != nil {
			// The server streaming the session first.
			if i := slices.Index(servers, peerName(p)); i > 0 {
				servers = append(append([]string{servers[i]}, servers[:i]...), servers[i+1:]...)
			}
		}
		out = append(out, view{s: v, open: true, servers: servers, agent: v.agent})
	}
	var closed []view
	if history {
		for i := len(s.history) - 1; i >= 0; i-- {
			v := s.history[i]
			closed = append(closed, view{s: v, st: v.final, servers: append([]string(nil), v.servers...), agent: v.agent, reason: v.reason})
		}
	}
	s.mu.Unlock()
	for i := range out {
		out[i].st = out[i].s.player.Stats()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].s.started.After(out[j].s.started) })
	return append(out, closed...)
}

func streamStatus(session string, x playout.StreamStats) service.PlayoutStream {
	return service.PlayoutStream{Session: session, Direction: x.Direction.String(),
		Src: addrString(x.Flow.Src), Dst: addrString(x.Flow.Dst), VLAN: x.Flow.VLAN,
		SSRC: fmt.Sprintf("0x%08x", x.SSRC), Codec: x.Codec.String(), Active: x.Active,
		Packets: x.Packets, Lost: x.Lost, Late: x.Late, Concealed: x.Concealed, Slips: x.Slips, Stretches: x.Stretches,
		JitterMs: x.JitterMs, TargetMs: x.TargetMs, MOS: x.MOS}
}

// Snapshot returns the Supervisor's status, as a status request gets it.
func (s *Supervisor) Snapshot() service.SupervisorStatus {
	t := s.Totals()
	out := service.SupervisorStatus{Role: relay.RoleSupervisor, Packets: t.Packets, Duplicates: t.Duplicates,
		Rejected: t.Rejected, SecondsWritten: t.Seconds, Output: s.cfg.Output, MaxSessions: s.cfg.MaxSessions,
		SessionsOpened: t.SessionsOpened, RefusedPackets: t.Refused, BadSessionIDs: t.BadSessionIDs,
		Unauthorized: t.Unauthorized, Streams: []service.PlayoutStream{}, Sessions: []service.SupervisorSession{}}
	var playing *session
	if s.dev != nil {
		playing = s.dev.playing.Load()
		if playing != nil {
			out.Playing = playing.id
		}
	}
	now := s.clock.Now()
	for _, v := range s.views(true) {
		x := service.SupervisorSession{ID: v.s.id, Agent: v.agent, State: "open", Closed: v.reason,
			Output: v.s.output, OutputError: v.s.outputErr, Playing: v.open && v.s == playing,
			Servers: v.servers, Started: v.s.started.UTC().Format(time.RFC3339),
			SecondsWritten: v.st.Seconds, TargetMs: v.st.TargetMs,
			AddedLatencyP50Ms: v.st.AddedLatencyP50Ms, AddedLatencyP99Ms: v.st.AddedLatencyP99Ms,
			DeliveryMs: v.st.DeliveryMs, WorstMOS: v.st.Worst().MOS, Packets: v.st.Total().Packets,
			Streams: []service.PlayoutStream{}}
		if x.Servers == nil {
			x.Servers = []string{}
		}
		if v.open {
			x.IdleS = now.Sub(time.Unix(0, v.s.last.Load())).Seconds()
			out.DeliveryMs = max(out.DeliveryMs, v.st.DeliveryMs)
		} else {
			x.State = "closed"
		}
		if v.s.dsink != nil {
			x.SecondsPlayed = v.s.dsink.Played()
		}
		for _, st := range v.st.Streams {
			if st.Packets == 0 {
				continue
			}
			ps := streamStatus("", st)
			x.Streams = append(x.Streams, ps)
			if v.open {
				ps.Session = v.s.id
				out.Streams = append(out.Streams, ps)
			}
		}
		out.Sessions = append(out.Sessions, x)
	}
	return out
}

// FullStatus returns the Supervisor's status as a status request gets
// it: Snapshot with, per session, its digits and, per stream, whether
// its codec can be played (an unsupported stream's codec named from the
// SDP, as "iLBC").
func (s *Supervisor) FullStatus() status.SupervisorStatus {
	snap := s.Snapshot()
	out := status.SupervisorStatus{SupervisorStatus: snap, Streams: []status.PlayoutStream{},
		Sessions: make([]status.SupervisorSession, 0, len(snap.Sessions))}
	s.mu.Lock()
	if len(s.unsupported) > 0 {
		out.Unsupported = make(map[string]uint64, len(s.unsupported))
		for k, v := range s.unsupported {
			out.Unsupported[k] = v
		}
	}
	byID := map[string]*session{}
	for _, v := range s.history {
		byID[v.id] = v
	}
	s.mu.Unlock()
	for id, v := range *s.table.Load() {
		byID[id] = v
	}
	mark := func(ps service.PlayoutStream, un map[streamKey]string) status.PlayoutStream {
		yes, no := true, false
		x := status.PlayoutStream{PlayoutStream: ps, Supported: &yes}
		var ssrc uint32
		if _, err := fmt.Sscanf(ps.SSRC, "0x%x", &ssrc); err != nil {
			return x
		}
		for _, d := range []playout.Direction{playout.FromAgent, playout.ToAgent} {
			if name, ok := un[streamKey{filter.Direction(d), ssrc}]; ok && d.String() == ps.Direction &&
				ps.Codec == playout.CodecUnknown.String() {
				x.Codec, x.Supported = name, &no
			}
		}
		return x
	}
	for _, x := range snap.Sessions {
		y := status.SupervisorSession{SupervisorSession: x, Streams: make([]status.PlayoutStream, 0, len(x.Streams))}
		var un map[streamKey]string
		if sess := byID[x.ID]; sess != nil {
			y.Digits, un = sess.eventsView()
		}
		for _, ps := range x.Streams {
			y.Streams = append(y.Streams, mark(ps, un))
		}
		if x.State == "open" {
			for _, ps := range y.Streams {
				ps.Session = x.ID
				out.Streams = append(out.Streams, ps)
			}
		}
		out.Sessions = append(out.Sessions, y)
	}
	return out
}

// Register registers the Supervisor's metrics in reg, by Prometheus
// conventions (counters end in _total and only go up, times in seconds):
// counters of packets and sessions, the open sessions, the audio written;
// per direction, the playout counters over every session since start and
// the worst jitter, target and MOS of the open sessions; per open session
// (labels session and agent only, at most MaxSessions of them, gone when
// the session closes) its MOS and jitter.
func (s *Supervisor) Register(reg prometheus.Registerer) error {
	return reg.Register(&collector{s: s, mono: map[string]float64{}})
}

// collector reads the Supervisor at every scrape. A closing session
// leaves the table before its last figures join the closed sessions'
// (finish): mono keeps each counter from going back meanwhile.
type collector struct {
	s    *Supervisor
	mu   sync.Mutex
	mono map[string]float64
}

// up returns v, or the largest value key had before if more.
func (c *collector) up(key string, v float64) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev := c.mono[key]; prev > v {
		return prev
	}
	c.mono[key] = v
	return v
}

func desc(sub, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName("silentmon", sub, name), help, labels, nil)
}

var (
	mPackets      = desc("supervisor", "media_packets_total", "Media packets received from capture servers.")
	mDups         = desc("supervisor", "duplicate_packets_total", "Media packets dropped as duplicates (seen by two capture servers).")
	mRejected     = desc("supervisor", "rejected_packets_total", "Media packets a session's player refused.")
	mRefused      = desc("supervisor", "refused_packets_total", "Media packets of sessions refused at the limit of open sessions.")
	mBadIDs       = desc("supervisor", "bad_session_ids_total", "Media frames and session notices dropped for an invalid session id.")
	mUnauth       = desc("supervisor", "unauthorized_total", "Connections refused for sending media or session notices without the capture role.")
	mBadPTs       = desc("supervisor", "bad_payload_types_total", "Payload-type entries of session notices left out as invalid (type outside 0 to 127, bad encoding name, beyond 32).")
	mOpened       = desc("supervisor", "sessions_opened_total", "Sessions opened (one player and output each).")
	mSessions     = desc("supervisor", "sessions", "Open sessions.")
	mSeconds      = desc("supervisor", "audio_written_seconds_total", "Seconds of audio written by every session's player since start.")
	mWorst        = desc("playout", "worst_mos", "Lowest E-model (ITU-T G.107) MOS estimate of the open sessions' streams; 0 when none.")
	mMOS          = desc("playout", "mos", "Lowest E-model MOS estimate of the open sessions' streams of the direction; 0 when none.", "direction")
	mJitter       = desc("playout", "jitter_seconds", "Largest RFC 3550 interarrival jitter of the open sessions' streams of the direction.", "direction")
	mTarget       = desc("playout", "target_seconds", "Largest jitter buffer target of the open sessions' streams of the direction.", "direction")
	mLost         = desc("playout", "lost_packets_total", "Sequence numbers never played, over every session's streams of the direction since start.", "direction")
	mLate         = desc("playout", "late_packets_total", "Packets that arrived after their playout time, over every session's streams of the direction since start.", "direction")
	mConcealed    = desc("playout", "concealed_frames_total", "Frames filled by loss concealment, over every session's streams of the direction since start.", "direction")
	mSessionMOS   = desc("playout", "session_mos", "Lowest E-model MOS estimate of an open session's streams; 0 before one is known.", "session", "agent")
	mSessionJit   = desc("playout", "session_jitter_seconds", "Largest RFC 3550 interarrival jitter of an open session's streams.", "session", "agent")
	mSessionDelay = desc("playout", "session_delivery_seconds", "Delay from capture to the supervisor of an open session's media.", "session", "agent")
	mUnsupported  = desc("playout", "unsupported_streams_total", "Streams whose codec this build cannot play, by codec (the SDP name of a bounded list; other beyond it, unknown for a payload type nothing maps).", "codec")
	mDigits       = desc("supervisor", "telephone_events_total", "Telephone events (RFC 4733 digits) received, each counted once however often its packets repeat it.")
	allDescs      = []*prometheus.Desc{mPackets, mDups, mRejected, mRefused, mBadIDs, mUnauth, mBadPTs, mOpened, mSessions, mSeconds,
		mWorst, mMOS, mJitter, mTarget, mLost, mLate, mConcealed, mSessionMOS, mSessionJit, mSessionDelay, mUnsupported, mDigits}
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	t := c.s.Totals()
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter(mPackets, t.Packets)
	counter(mDups, t.Duplicates)
	counter(mRejected, t.Rejected)
	counter(mRefused, t.Refused)
	counter(mBadIDs, t.BadSessionIDs)
	counter(mUnauth, t.Unauthorized)
	counter(mBadPTs, t.BadPayloadTypes)
	counter(mOpened, t.SessionsOpened)
	c.s.mu.Lock()
	for codec, n := range c.s.unsupported {
		ch <- prometheus.MustNewConstMetric(mUnsupported, prometheus.CounterValue, float64(n), codec)
	}
	counter(mDigits, c.s.digitSeq)
	c.s.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(mSeconds, prometheus.CounterValue, c.up("seconds", t.Seconds))
	views := c.s.views(false)
	gauge(mSessions, float64(len(views)))
	c.s.mu.Lock()
	closed := c.s.closedDir
	c.s.mu.Unlock()
	worst := 0.0
	for _, d := range []playout.Direction{playout.FromAgent, playout.ToAgent} {
		agg := closed[d]
		agg.JitterMs, agg.TargetMs, agg.MOS = 0, 0, 0
		for _, v := range views {
			x := v.st.Dir(d)
			agg.Lost += x.Lost
			agg.Late += x.Late
			agg.Concealed += x.Concealed
			agg.JitterMs = max(agg.JitterMs, x.JitterMs)
			agg.TargetMs = max(agg.TargetMs, x.TargetMs)
			if x.MOS > 0 && (agg.MOS == 0 || x.MOS < agg.MOS) {
				agg.MOS = x.MOS
			}
		}
		if agg.MOS > 0 && (worst == 0 || agg.MOS < worst) {
			worst = agg.MOS
		}
		dir := d.String()
		gauge(mMOS, agg.MOS, dir)
		gauge(mJitter, agg.JitterMs/1000, dir)
		gauge(mTarget, agg.TargetMs/1000, dir)
		ch <- prometheus.MustNewConstMetric(mLost, prometheus.CounterValue, c.up("lost "+dir, float64(agg.Lost)), dir)
		ch <- prometheus.MustNewConstMetric(mLate, prometheus.CounterValue, c.up("late "+dir, float64(agg.Late)), dir)
		ch <- prometheus.MustNewConstMetric(mConcealed, prometheus.CounterValue, c.up("concealed "+dir, float64(agg.Concealed)), dir)
	}
	gauge(mWorst, worst)
	for _, v := range views {
		jitter := 0.0
		for _, x := range v.st.Streams {
			jitter = max(jitter, x.JitterMs)
		}
		gauge(mSessionMOS, v.st.Worst().MOS, v.s.id, v.agent)
		gauge(mSessionJit, jitter/1000, v.s.id, v.agent)
		gauge(mSessionDelay, v.st.DeliveryMs/1000, v.s.id, v.agent)
	}
}
