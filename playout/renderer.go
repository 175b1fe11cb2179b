package playout

import (
	"fmt"
	"log/slog"
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
	DefaultMinDelay     = 40 * time.Millisecond
	DefaultMaxDelay     = 200 * time.Millisecond
	DefaultInitialDelay = 60 * time.Millisecond
)

// Config configures a Player or Renderer. The zero value is usable; each
// zero field takes the default written next to it.
type Config struct {
	// MinDelay and MaxDelay bound the jitter buffer's adaptive target
	// (40 ms and 200 ms). InitialDelay is the target before any jitter
	// has been measured (60 ms, kept within the bounds).
	MinDelay, MaxDelay, InitialDelay time.Duration
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
		c.InitialDelay = DefaultInitialDelay
	}
	c.MaxDelay = max(c.MaxDelay, c.MinDelay)
	c.InitialDelay = min(max(c.InitialDelay, c.MinDelay), c.MaxDelay)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Clock == nil {
		c.Clock = SystemClock{}
	}
	return c
}

// StreamStats are one direction's counters. Packet counts are cumulative
// over every SSRC the direction has carried.
type StreamStats struct {
	SSRC  uint32
	Codec Codec

	Packets      uint64 // pushed
	Frames       uint64 // packets decoded and played
	Concealed    uint64 // concealment frames (losses and a buffer run dry)
	Lost         uint64 // sequence numbers never played
	Late         uint64 // arrived after their playout time, dropped
	Duplicates   uint64 // dropped
	Stale        uint64 // dropped at a talkspurt's start to keep the delay at target
	Flushed      uint64 // buffered packets dropped at an SSRC change or resync
	Overflows    uint64 // buffer too small for a sequence jump: restarted
	Underruns    uint64 // concealment frames played because the buffer ran dry
	Comfort      uint64 // 10 ms blocks of comfort noise filling G.729B silences
	Slips        uint64 // packets skipped to bring the delay down (clock drift)
	Stretches    uint64 // frames inserted to bring the delay up (clock drift)
	Talkspurts   uint64 // talkspurt starts after a pause
	SSRCChanges  uint64
	Resyncs      uint64 // jumps of sequence or timestamp taken as a restart
	UnknownCodec uint64 // packets of a payload type with no codec
	Ignored      uint64 // comfort noise, telephone events
	Invalid      uint64 // empty, oversized or malformed payloads

	JitterMs float64 // RFC 3550 interarrival jitter
	TargetMs float64 // jitter buffer target
	MOS      float64 // E-model estimate, 0 before the first packet
}

// Stats are a Player's or Renderer's counters.
type Stats struct {
	Streams [2]StreamStats // index 0: FromAgent, 1: ToAgent
	Seconds float64        // audio handed to the sink
	Invalid uint64         // pushes that were not RTP or had a bad direction
	// DeliveryMs is the largest delay from capture to Push seen (Player
	// only: the relay path's delay, which the jitter buffer adds to).
	DeliveryMs float64
}

// Total sums both directions' packet counters (gauges are left zero).
func (s Stats) Total() StreamStats {
	var t StreamStats
	for _, x := range s.Streams {
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
	return t
}

const heldBlocks = 32 // 320 ms of tentative sound or pause kept back

// maxPause bounds the pause written between two sounds when nothing at
// all is playing or buffered (60 s): a longer gap in arrival times (a
// capture's clock jumping, a process stopped) is not stepped through block
// by block and is written as this much silence (none for a real-time
// sink, which is not fed while nothing plays).
const maxPause = 60 * SampleRate

// Renderer is the synchronous core of a Player: two jitter buffers, their
// decoders and the mixer. Time is whatever its callers pass, so it renders
// a capture offline with the capture's timestamps (smctl render) as well
// as live. A Renderer is not safe for concurrent use.
//
// Output for a sink that is not real-time: no leading or trailing
// silence; a pause between talkspurts is written once sound follows it;
// concealment of a buffer that ran dry is kept back the same way, so a
// stream that simply ended leaves no made-up tail.
type Renderer struct {
	cfg      Config
	ch       int
	realtime bool
	streams  [2]stream

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
	stash    [2 * blockLen]int16
	stashLen int
	blk      [2][blockLen]int16
	draining bool
	invalid  uint64
	delivMax time.Duration
}

// NewRenderer returns a Renderer mixing to channels (1: mono, 2: agent
// left, customer right). realtime says the sink plays at a device's pace
// (see RealtimeSink).
func NewRenderer(cfg Config, channels int, realtime bool) *Renderer {
	if channels != 2 {
		channels = 1
	}
	r := &Renderer{cfg: cfg.withDefaults(), ch: channels, realtime: realtime}
	r.out = make([]int16, 0, SampleRate/10*channels) // 100 ms per Render
	r.held = make([]int16, 0, heldBlocks*blockLen*channels)
	for i := range r.streams {
		r.streams[i].init(r, Direction(i+1))
	}
	return r
}

func (r *Renderer) codecOf(pt uint8) Codec {
	if c, ok := r.cfg.PayloadTypes[pt]; ok {
		return c
	}
	return staticCodec(pt)
}

func (r *Renderer) report(dir Direction, ssrc uint32, msg string, args ...any) {
	r.cfg.Logger.Warn(msg, append([]any{"direction", dir.String(), "ssrc", fmt.Sprintf("0x%08x", ssrc)}, args...)...)
}

// Push buffers one RTP packet (whole, with its header) of direction dir
// that arrived at now. rtp is not kept. A packet that is not RTP version 2
// or a bad direction returns an error and is counted in Stats.Invalid.
func (r *Renderer) Push(dir Direction, now time.Time, rtp []byte) error {
	if dir != FromAgent && dir != ToAgent {
		r.invalid++
		return fmt.Errorf("direction %d: %w", dir, ErrBadDirection)
	}
	h, payload, err := parseRTP(rtp)
	if err != nil {
		r.invalid++
		return err
	}
	t := now.UnixNano()
	if !r.started {
		r.started, r.next = true, t
	}
	r.streams[dir-1].push(h, payload, t)
	return nil
}

// Render returns the next samples due by now (interleaved, Channels()
// per frame), at most 100 ms per call; call it again until it returns an
// empty slice. The slice aliases the Renderer and is valid until the next
// call.
func (r *Renderer) Render(now time.Time) []int16 {
	return r.render(now.UnixNano())
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
		if room < blockLen*r.ch || !r.started || r.next > now {
			break
		}
		if r.draining && !r.streams[0].pending() && !r.streams[1].pending() {
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

const blockNs = blockLen * 1e9 / SampleRate

// idle reports that neither stream has anything to play until the next
// Push.
func (r *Renderer) idle() bool {
	for i := range r.streams {
		if s := &r.streams[i]; s.state != stIdle || s.count > 0 || s.cnLeft > 0 {
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
	r.pendZero = min(r.pendZero+k*blockLen, maxPause)
}

// block produces the block starting at r.next and queues or appends it.
func (r *Renderer) block(out []int16) []int16 {
	t := r.next
	r.next += blockNs
	var real, tent bool
	for i := range r.streams {
		rl, tn := r.streams[i].fill(r.blk[i][:], t, r.draining)
		real = real || rl
		tent = tent || tn
	}
	b := r.stash[:blockLen*r.ch]
	a, c := &r.blk[0], &r.blk[1]
	if r.ch == 1 {
		for i := range blockLen {
			b[i] = sat(int32(a[i]) + int32(c[i]))
		}
	} else {
		for i := range blockLen {
			b[2*i], b[2*i+1] = a[i], c[i]
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
		r.pendZero += blockLen
	}
	return out
}

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
	var s Stats
	for i := range r.streams {
		s.Streams[i] = r.streams[i].stats()
	}
	s.Seconds = float64(r.frames) / SampleRate
	s.Invalid = r.invalid
	s.DeliveryMs = float64(r.delivMax) / 1e6
	return s
}

// Close releases the decoders.
func (r *Renderer) Close() {
	for i := range r.streams {
		r.streams[i].close()
	}
}

func (r *Renderer) delivery(d time.Duration) { r.delivMax = max(r.delivMax, d) }
