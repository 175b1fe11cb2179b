package playout

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"
)

// Direction says which way a stream flows, with the numbering of the
// relay's media frames.
type Direction uint8

// Directions of a monitored session's two streams.
const (
	FromAgent Direction = 1 // the agent's voice (left channel in stereo)
	ToAgent   Direction = 2 // the customer's voice (right channel in stereo)
)

func (d Direction) String() string {
	switch d {
	case FromAgent:
		return "from-agent"
	case ToAgent:
		return "to-agent"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Defaults of Config.
const (
	DefaultMinDelay    = 40 * time.Millisecond
	DefaultMaxDelay    = 200 * time.Millisecond
	DefaultRetireAfter = 10 * time.Second
	DefaultMaxStreams  = 16
)

// Config configures a Player or Renderer. The zero value is usable; each
// zero field takes the default written next to it.
type Config struct {
	// MinDelay and MaxDelay bound the jitter buffer's adaptive target
	// (40 ms and 200 ms). InitialDelay is the target before any jitter
	// has been measured (MinDelay: a clean network needs no more; kept
	// within the bounds).
	MinDelay, MaxDelay, InitialDelay time.Duration
	// RetireAfter is how long a stream that has nothing left to play
	// may receive nothing before it is retired (10 s); a packet after
	// that starts it afresh. MaxStreams bounds the streams played at
	// once (16); a new stream beyond it retires the one idle longest.
	RetireAfter time.Duration
	MaxStreams  int
	// PayloadTypes maps dynamic (or overrides static) RTP payload types
	// to codecs. Static types 0 (PCMU), 8 (PCMA), 18 (G729) and 13 (CN,
	// not rendered) need no entry.
	PayloadTypes map[uint8]Codec
	// Logger receives one line per stream for an unknown codec (never
	// one per packet). Nil discards.
	Logger *slog.Logger
	// Clock paces a Player (nil: the system clock). A Renderer takes time
	// from its callers instead.
	Clock Clock
	// SampleRate is the session's output rate: 8000 (the default, every
	// narrowband codec), 16000 (G.722's both sub-bands) or 48000 (Opus).
	// It is fixed for the Renderer's life (RateFor picks it from the
	// session's codecs); streams of a lower rate are resampled up to it.
	SampleRate int
}

// Validate reports the first bad field as an error naming its value.
func (c Config) Validate() error {
	c = c.withDefaults()
	if c.MinDelay < 10*time.Millisecond || c.MinDelay > 2*time.Second {
		return fmt.Errorf("jitter buffer minimum delay %v is outside 10ms to 2s", c.MinDelay)
	}
	if c.MaxDelay < c.MinDelay || c.MaxDelay > 2*time.Second {
		return fmt.Errorf("jitter buffer maximum delay %v is outside the minimum (%v) to 2s", c.MaxDelay, c.MinDelay)
	}
	if c.SampleRate != 8000 && c.SampleRate != 16000 && c.SampleRate != 48000 {
		return fmt.Errorf("sample rate %d is not 8000, 16000 or 48000: %w", c.SampleRate, ErrSampleRate)
	}
	for pt := range c.PayloadTypes {
		if pt > 127 {
			return fmt.Errorf("payload type %d is outside 0 to 127", pt)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.MinDelay <= 0 {
		c.MinDelay = DefaultMinDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = max(DefaultMaxDelay, c.MinDelay)
	}
	if c.InitialDelay <= 0 {
		c.InitialDelay = c.MinDelay
	}
	if c.RetireAfter <= 0 {
		c.RetireAfter = DefaultRetireAfter
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	c.MaxDelay = max(c.MaxDelay, c.MinDelay)
	c.InitialDelay = min(max(c.InitialDelay, c.MinDelay), c.MaxDelay)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	if c.SampleRate == 0 {
		c.SampleRate = SampleRate
	}
	return c
}

// Flow says where a stream was captured: its addresses and VLAN. The zero
// Flow is allowed, for callers that know only a stream's direction; two
// streams are told apart by direction, flow and SSRC.
type Flow struct {
	Src, Dst netip.AddrPort
	VLAN     uint16 // VLAN ID, 0 when untagged
}

func (f Flow) String() string {
	if !f.Src.IsValid() && !f.Dst.IsValid() {
		return "-"
	}
	v := ""
	if f.VLAN != 0 {
		v = fmt.Sprintf("vlan%d/", f.VLAN)
	}
	return fmt.Sprintf("%s%s->%s", v, f.Src, f.Dst)
}

// StreamStats are one RTP stream's counters.
type StreamStats struct {
	Direction Direction
	Flow      Flow
	SSRC      uint32
	Codec     Codec
	// Active is false once the stream was retired (idle for
	// RetireAfter, or evicted by a newer stream beyond MaxStreams).
	Active bool
	// First and Last are the arrivals of its first and latest packets
	// (the Renderer's clock: capture time offline, the Player's clock
	// live).
	First, Last time.Time

	Packets      uint64 // pushed
	Frames       uint64 // packets decoded and played
	Concealed    uint64 // concealment frames (losses and a buffer run dry)
	Lost         uint64 // sequence numbers never played
	Late         uint64 // arrived after their playout time, dropped
	Duplicates   uint64 // dropped
	Stale        uint64 // dropped at a talkspurt's start to keep the delay at target
	Flushed      uint64 // buffered packets dropped at a resync or retirement
	Overflows    uint64 // buffer too small for a sequence jump: restarted
	Underruns    uint64 // concealment frames played because the buffer ran dry
	Comfort      uint64 // 10 ms blocks of comfort noise filling G.729B silences
	Slips        uint64 // packets skipped to bring the delay down (clock drift)
	Stretches    uint64 // frames inserted to bring the delay up (clock drift)
	Talkspurts   uint64 // talkspurt starts after a pause
	SSRCChanges  uint64 // streams of this direction that followed another (Stats.Dir only)
	Resyncs      uint64 // jumps of sequence or timestamp taken as a restart
	UnknownCodec uint64 // packets of a payload type with no codec
	Ignored      uint64 // comfort noise, telephone events
	Invalid      uint64 // empty, oversized or malformed payloads

	JitterMs float64 // RFC 3550 interarrival jitter
	TargetMs float64 // jitter buffer target the stream is played with
	MOS      float64 // E-model estimate, 0 before the first packet
}

// Stats are a Player's or Renderer's counters.
type Stats struct {
	// Streams lists every stream seen, active ones first, each group in
	// order of first packet. Retired streams are kept up to a bound
	// (the oldest are forgotten first; RetiredDropped counts them).
	Streams        []StreamStats
	RetiredDropped uint64
	Evicted        uint64  // active streams retired to make room (MaxStreams)
	Seconds        float64 // audio handed to the sink
	Invalid        uint64  // pushes that were not RTP or had a bad direction
	// DeliveryMs is the largest delay from capture to Push seen (Player
	// only: the relay path's delay, which the jitter buffer adds to).
	DeliveryMs float64
	// TargetMs is the largest delay an active stream is played with:
	// the shared target (the largest any stream needs, so they stay
	// aligned), or more where a talkspurt's schedule gives more.
	TargetMs float64
	// AddedLatencyP50Ms and AddedLatencyP99Ms are percentiles, over the
	// packets played, of the delay from a packet's arrival to its first
	// sample leaving the jitter buffer; AddedLatencyMaxMs the largest.
	AddedLatencyP50Ms, AddedLatencyP99Ms, AddedLatencyMaxMs float64
}

// Dir sums the counters of direction d's streams. Its gauges are those of
// the stream that worsens them: the largest jitter, the lowest MOS; SSRC
// and Codec are the latest stream's; SSRCChanges counts the streams after
// the first.
func (s Stats) Dir(d Direction) StreamStats {
	t := StreamStats{Direction: d}
	n := 0
	for _, x := range s.Streams {
		if x.Direction != d {
			continue
		}
		if n == 0 || x.Last.After(t.Last) {
			t.SSRC, t.Codec, t.Flow, t.Last = x.SSRC, x.Codec, x.Flow, x.Last
		}
		if n == 0 || x.First.Before(t.First) {
			t.First = x.First
		}
		n++
		t.add(x)
		t.Active = t.Active || x.Active
		t.JitterMs = max(t.JitterMs, x.JitterMs)
		t.TargetMs = max(t.TargetMs, x.TargetMs)
		if x.MOS > 0 && (t.MOS == 0 || x.MOS < t.MOS) {
			t.MOS = x.MOS
		}
	}
	if n > 1 {
		t.SSRCChanges += uint64(n - 1)
	}
	return t
}

// Worst returns the stream with the lowest MOS (the session's summary
// figure), or the zero StreamStats when nothing was played.
func (s Stats) Worst() StreamStats {
	var w StreamStats
	for _, x := range s.Streams {
		if x.MOS > 0 && (w.MOS == 0 || x.MOS < w.MOS) {
			w = x
		}
	}
	return w
}

// Total sums every stream's packet counters (gauges are left zero).
func (s Stats) Total() StreamStats {
	var t StreamStats
	for _, x := range s.Streams {
		t.add(x)
	}
	return t
}

func (t *StreamStats) add(x StreamStats) {
	t.Packets += x.Packets
	t.Frames += x.Frames
	t.Concealed += x.Concealed
	t.Lost += x.Lost
	t.Late += x.Late
	t.Duplicates += x.Duplicates
	t.Stale += x.Stale
	t.Flushed += x.Flushed
	t.Overflows += x.Overflows
	t.Underruns += x.Underruns
	t.Comfort += x.Comfort
	t.Slips += x.Slips
	t.Stretches += x.Stretches
	t.Talkspurts += x.Talkspurts
	t.SSRCChanges += x.SSRCChanges
	t.Resyncs += x.Resyncs
	t.UnknownCodec += x.UnknownCodec
	t.Ignored += x.Ignored
	t.Invalid += x.Invalid
}

const heldBlocks = 32 // 320 ms of tentative sound or pause kept back

// maxPause bounds the pause written between two sounds when nothing at
// all is playing or buffered (60 s): a longer gap in arrival times (a
// capture's clock jumping, a process stopped) is not stepped through block
// by block and is written as this much silence (none for a real-time
// sink, which is not fed while nothing plays).
const maxPause = 60 * SampleRate

// Renderer is the synchronous core of a Player: a jitter buffer and decoder
// per RTP stream, any number of streams at once (a call and its consult, a
// conference, a stray packet, music on hold), and the mixer. Time is
// whatever its callers pass, so it renders a capture offline with the
// capture's timestamps (smctl render) as well as live. A Renderer is not
// safe for concurrent use.
//
// Every stream is played with the same target delay (the largest any of
// them needs), so the streams of a session stay aligned on their arrival
// times. A stream that received nothing for RetireAfter and has nothing
// left to play is retired without touching the others; at most MaxStreams
// are active, a new one beyond that retiring the one idle longest.
//
// Output for a sink that is not real-time: no leading or trailing
// silence; a pause between talkspurts is written once sound follows it;
// concealment of a buffer that ran dry is kept back the same way, so a
// stream that simply ended leaves no made-up tail.
type Renderer struct {
	cfg      Config
	ch       int
	realtime bool
	// m is the output samples per time unit: the Renderer keeps its
	// time in units of 1/8000 s (RTP timestamps of the narrowband
	// clocks), and each unit is m samples at the session's rate (1, 2
	// or 6).
	m int

	active  []*stream // in order of first packet
	free    []*stream // retired streams' buffers, for reuse
	last    *stream   // the stream of the latest Push
	retired []StreamStats
	dropped uint64 // retired stats forgotten
	evicted uint64
	target  int64 // ns: the target every stream plays with

	epoch   int64 // Unix ns of relative time 0 (the first Push)
	started bool
	next    int64 // ns: start of the next block
	written bool  // sound was emitted
	frames  int64 // frames emitted

	out      []int16 // returned by Render
	held     []int16 // tentative blocks and pauses after them
	emitHeld int     // >0: held[:emitHeld] is being emitted
	heldOff  int
	pendZero int64 // pause frames beyond held
	emitZero int64
	stash    [2 * maxBlock]int16
	stashLen int
	blk      [maxBlock]int16
	acc      [2][maxBlock]int32 // per direction
	tacc     [2][maxBlock]int32 // concealment of dry buffers, per direction
	draining bool
	invalid  uint64
	delivMax time.Duration
	lat      latency
}

// streamKey tells streams apart.
type streamKey struct {
	dir  Direction
	flow Flow
	ssrc uint32
}

// maxRetired bounds the retired streams whose figures are kept.
const maxRetired = 64

// NewRenderer returns a Renderer mixing to channels (1: mono, 2: agent
// left, customer right). realtime says the sink plays at a device's pace
// (see RealtimeSink).
func NewRenderer(cfg Config, channels int, realtime bool) *Renderer {
	if channels != 2 {
		channels = 1
	}
	r := &Renderer{cfg: cfg.withDefaults(), ch: channels, realtime: realtime}
	if r.cfg.SampleRate != 16000 && r.cfg.SampleRate != 48000 {
		r.cfg.SampleRate = SampleRate // as other bounds, a bad rate is clamped
	}
	r.m = r.cfg.SampleRate / SampleRate
	r.out = make([]int16, 0, r.cfg.SampleRate/10*channels) // 100 ms per Render
	r.held = make([]int16, 0, heldBlocks*blockLen*r.m*channels)
	r.active = make([]*stream, 0, r.cfg.MaxStreams)
	r.target = int64(r.cfg.InitialDelay)
	return r
}

// Codec returns the codec of payload type pt: its PayloadTypes entry, else
// the static type's (CodecUnknown for a type with neither).
func (c Config) Codec(pt uint8) Codec {
	if codec, ok := c.PayloadTypes[pt]; ok {
		return codec
	}
	return staticCodec(pt)
}

// SetPayloadTypes replaces the Renderer's Config.PayloadTypes: the
// packets pushed after it are decoded with m. m must not be modified
// after the call.
func (r *Renderer) SetPayloadTypes(m map[uint8]Codec) { r.cfg.PayloadTypes = m }

func (r *Renderer) report(s *stream, msg string, args ...any) {
	r.cfg.Logger.Warn(msg, append([]any{"direction", s.dir.String(), "flow", s.flow.String(),
		"ssrc", fmt.Sprintf("0x%08x", s.ssrc)}, args...)...)
}

// Push buffers one RTP packet (whole, with its header) of direction dir
// that arrived at now, as PushFlow with the zero Flow.
func (r *Renderer) Push(dir Direction, now time.Time, rtp []byte) error {
	return r.PushFlow(dir, Flow{}, now, rtp)
}

// PushFlow buffers one RTP packet (whole, with its header) of direction
// dir, seen on flow, that arrived at now. rtp is not kept. A packet that
// is not RTP version 2 or a bad direction returns an error and is counted
// in Stats.Invalid. The packet goes to the stream of its direction, flow
// and SSRC, made on its first packet.
func (r *Renderer) PushFlow(dir Direction, flow Flow, now time.Time, rtp []byte) error {
	if dir != FromAgent && dir != ToAgent {
		r.invalid++
		return fmt.Errorf("direction %d: %w", dir, ErrBadDirection)
	}
	h, payload, err := parseRTP(rtp)
	if err != nil {
		r.invalid++
		return err
	}
	if !r.started {
		r.started, r.epoch, r.next = true, now.UnixNano(), 0
	}
	t := r.rel(now)
	r.streamFor(streamKey{dir, flow, h.ssrc}, t).push(h, payload, t)
	return nil
}

// rel converts an absolute time to the Renderer's ns since its epoch.
func (r *Renderer) rel(now time.Time) int64 { return now.UnixNano() - r.epoch }

// streamFor returns the active stream of k, making one if there is none.
func (r *Renderer) streamFor(k streamKey, now int64) *stream {
	if s := r.last; s != nil && s.streamKey == k {
		return s
	}
	for _, s := range r.active {
		if s.streamKey == k {
			r.last = s
			return s
		}
	}
	if len(r.active) >= r.cfg.MaxStreams {
		// Make room: retire the stream idle longest.
		old := 0
		for i, s := range r.active {
			if s.lastPkt < r.active[old].lastPkt {
				old = i
			}
		}
		r.evicted++
		r.retire(old)
	}
	var s *stream
	if n := len(r.free); n > 0 {
		s, r.free = r.free[n-1], r.free[:n-1]
	} else {
		s = new(stream)
	}
	s.init(r, k, now)
	// A stream that comes back after it was retired (a long hold)
	// continues its figures.
	for i := len(r.retired) - 1; i >= 0; i-- {
		if x := &r.retired[i]; (streamKey{x.Direction, x.Flow, x.SSRC}) == k {
			s.st = *x
			s.first = r.rel(x.First)
			r.retired = slices.Delete(r.retired, i, i+1)
			break
		}
	}
	r.active = append(r.active, s)
	r.last = s
	return s
}

// retire removes active stream i, keeping its figures.
func (r *Renderer) retire(i int) {
	s := r.active[i]
	s.reset() // what is still buffered is flushed
	if len(r.retired) == maxRetired {
		r.retired = slices.Delete(r.retired, 0, 1)
		r.dropped++
	}
	r.retired = append(r.retired, r.statsOf(s, false))
	r.active = slices.Delete(r.active, i, i+1)
	if r.last == s {
		r.last = nil
	}
	r.free = append(r.free, s)
}

// Render returns the next samples due by now (interleaved, Channels()
// per frame), at most 100 ms per call; call it again until it returns an
// empty slice. The slice aliases the Renderer and is valid until the next
// call.
func (r *Renderer) Render(now time.Time) []int16 {
	if !r.started {
		return r.out[:0]
	}
	return r.render(r.rel(now))
}

// Flush plays out everything still buffered, as if time ran on, without
// concealing past the last packet. Like Render, it returns successive
// chunks until an empty one. Trailing pauses are dropped.
func (r *Renderer) Flush() []int16 {
	r.draining = true
	return r.render(1<<63 - 1)
}

// Channels returns 1 or 2.
func (r *Renderer) Channels() int { return r.ch }

func (r *Renderer) render(now int64) []int16 {
	out := r.out[:0]
	for len(out) < cap(out) {
		room := cap(out) - len(out)
		switch {
		case r.emitHeld > 0:
			n := min(room, r.emitHeld-r.heldOff)
			out = append(out, r.held[r.heldOff:r.heldOff+n]...)
			r.heldOff += n
			if r.heldOff == r.emitHeld {
				r.held = r.held[:0]
				r.emitHeld, r.heldOff = 0, 0
			}
			continue
		case r.emitZero > 0:
			n := min(int64(room/r.ch), r.emitZero)
			z := out[len(out) : len(out)+int(n)*r.ch]
			clear(z)
			out = out[:len(out)+len(z)]
			r.emitZero -= n
			continue
		case r.stashLen > 0:
			if room < r.stashLen {
				break
			}
			out = append(out, r.stash[:r.stashLen]...)
			r.stashLen = 0
			continue
		}
		if room < blockLen*r.m*r.ch || !r.started || r.next > now {
			break
		}
		if r.draining && !r.pending() {
			r.held, r.pendZero = r.held[:0], 0
			break
		}
		if k := (now-r.next)/blockNs + 1; k > maxPause/blockLen && r.idle() {
			r.skip(k)
			continue
		}
		out = r.block(out)
	}
	r.frames += int64(len(out) / r.ch)
	r.out = out
	return out
}

const blockNs = blockLen * nsPerSample

// pending reports whether a stream still has sound to play.
func (r *Renderer) pending() bool {
	for _, s := range r.active {
		if s.pending() {
			return true
		}
	}
	return false
}

// idle reports that no stream has anything to play until the next Push.
func (r *Renderer) idle() bool {
	for _, s := range r.active {
		if !s.quiet() {
			return false
		}
	}
	return true
}

// skip passes over k blocks in which nothing plays, in constant time. The
// pause they make is capped at maxPause.
func (r *Renderer) skip(k int64) {
	r.next += k * blockNs
	if r.realtime || !r.written {
		return
	}
	r.pendZero = min(r.pendZero+k*blockLen*int64(r.m), maxPause*int64(r.m))
}

// block produces the block starting at r.next and queues or appends it.
func (r *Renderer) block(out []int16) []int16 {
	t := r.next
	r.next += blockNs
	r.retireIdle(t)
	// Sound per direction: decoded audio (with concealment of losses
	// between packets) and, apart, concealment of a buffer that ran
	// dry. The latter is mixed only while no other stream of its
	// direction plays: a call that ended does not conceal over the one
	// that followed it.
	var realDir, tentDir [2]bool
	for d := range 2 {
		clear(r.acc[d][:])
		clear(r.tacc[d][:])
	}
	for _, s := range r.active {
		rl, tn := s.fill(r.blk[:blockLen*r.m], t, r.draining)
		d := s.dir - 1
		a := &r.acc[d]
		switch {
		case rl:
			realDir[d] = true
		case tn:
			tentDir[d] = true
			a = &r.tacc[d]
		default:
			continue // silence
		}
		for i, v := range r.blk[:blockLen*r.m] {
			a[i] += int32(v)
		}
	}
	real := realDir[0] || realDir[1]
	tent := false
	for d := range 2 {
		if tentDir[d] && !realDir[d] {
			tent = true
			for i, v := range r.tacc[d][:blockLen*r.m] {
				r.acc[d][i] += v
			}
		}
	}
	bl := blockLen * r.m
	b := r.stash[:bl*r.ch]
	if r.ch == 1 {
		for i := range bl {
			b[i] = sat(r.acc[0][i] + r.acc[1][i])
		}
	} else {
		for i := range bl {
			b[2*i], b[2*i+1] = sat(r.acc[0][i]), sat(r.acc[1][i])
		}
	}
	switch {
	case r.realtime:
		if real || r.written {
			r.written = true
			return append(out, b...)
		}
	case real:
		if r.written {
			r.emitHeld = len(r.held)
			r.emitZero, r.pendZero = r.pendZero, 0
		} else {
			r.held, r.pendZero = r.held[:0], 0
		}
		r.written = true
		r.stashLen = len(b) // emitted after held and pause
	case !r.written:
		// leading silence: dropped
	case tent && r.pendZero == 0 && len(r.held)+len(b) <= cap(r.held):
		r.held = append(r.held, b...)
	case tent:
		r.emitHeld = len(r.held)
		r.emitZero, r.pendZero = r.pendZero, 0
		r.stashLen = len(b)
	case r.pendZero == 0 && len(r.held)+len(b) <= cap(r.held):
		r.held = append(r.held, b...) // zeros: a pause
	default:
		r.pendZero += int64(bl)
	}
	return out
}

// retireIdle retires the streams that received nothing for RetireAfter
// and have nothing left to play, and sets the target every stream plays
// with: the largest any stream heard from within targetMemory needs.
func (r *Renderer) retireIdle(now int64) {
	tgt := int64(r.cfg.MinDelay)
	for i := 0; i < len(r.active); {
		s := r.active[i]
		idle := now - s.lastPkt
		if idle >= int64(r.cfg.RetireAfter) && s.quiet() {
			r.retire(i)
			continue
		}
		if idle < targetMemory {
			tgt = max(tgt, s.target)
		}
		i++
	}
	r.target = tgt
}

// targetMemory is how long a stream that stopped sending keeps its need
// in the shared target.
const targetMemory = int64(2 * time.Second)

func sat(v int32) int16 {
	if v > 32767 {
		return 32767
	}
	if v < -32768 {
		return -32768
	}
	return int16(v)
}

// Stats returns the counters.
func (r *Renderer) Stats() Stats {
	s := Stats{Streams: make([]StreamStats, 0, len(r.active)+len(r.retired))}
	s.TargetMs = float64(r.target) / 1e6
	for _, x := range r.active {
		st := r.statsOf(x, true)
		s.TargetMs = max(s.TargetMs, st.TargetMs)
		s.Streams = append(s.Streams, st)
	}
	s.Streams = append(s.Streams, r.retired...)
	s.RetiredDropped = r.dropped
	s.Evicted = r.evicted
	s.Seconds = float64(r.frames) / float64(r.cfg.SampleRate)
	s.Invalid = r.invalid
	s.DeliveryMs = float64(r.delivMax) / 1e6
	s.AddedLatencyP50Ms = r.lat.quantile(0.5)
	s.AddedLatencyP99Ms = r.lat.quantile(0.99)
	s.AddedLatencyMaxMs = float64(r.lat.max) / 1e6
	return s
}

func (r *Renderer) statsOf(s *stream, active bool) StreamStats {
	if active {
		// The delay the stream is played with: what its talkspurt's
		// schedule really gives (the last one's, between talkspurts),
		// else the target.
		s.st.TargetMs = float64(r.target) / 1e6
		if d := max(s.delay, s.lastDelay); d > 0 {
			s.st.TargetMs = float64(d) / 1e6
		}
	}
	st := s.stats()
	st.Active = active
	st.First = time.Unix(0, r.epoch+s.first)
	st.Last = time.Unix(0, r.epoch+s.lastPkt)
	return st
}

// Close releases the decoders. Stats still reports every stream after it.
func (r *Renderer) Close() {
	for _, s := range r.active {
		r.retired = append(r.retired, r.statsOf(s, false))
		s.close()
	}
	for _, s := range r.free {
		s.close()
	}
	r.active, r.free, r.last = nil, nil, nil
}

func (r *Renderer) delivery(d time.Duration) { r.delivMax = max(r.delivMax, d) }

// latency is a histogram of added latencies with 0.5 ms buckets up to
// 512 ms (beyond MaxDelay's default); the last bucket holds everything
// above, and max the largest.
type latency struct {
	n       uint64
	max     int64
	buckets [1024]uint32
}

const latBucket = int64(time.Millisecond / 2)

func (l *latency) add(d int64) {
	d = max(d, 0)
	l.n++
	l.max = max(l.max, d)
	l.buckets[min(d/latBucket, int64(len(l.buckets)-1))]++
}

// quantile returns the q-quantile in ms (the bucket's upper edge).
func (l *latency) quantile(q float64) float64 {
	if l.n == 0 {
		return 0
	}
	want := uint64(q*float64(l.n)) + 1
	var c uint64
	for i, b := range l.buckets {
		if c += uint64(b); c >= min(want, l.n) {
			return float64(int64(i+1)*latBucket) / 1e6
		}
	}
	return float64(l.max) / 1e6
}
