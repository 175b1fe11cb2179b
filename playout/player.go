package playout

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// TickInterval is how often a Player renders: one mixer block.
const TickInterval = blockLen * time.Second / SampleRate

// Player plays one monitored session: every RTP stream of both directions
// through its own jitter buffer and decoder, mixed into a Sink in real
// time on its Clock. It is safe for concurrent use: Push, PushFlow, Stats
// and Close may be called from any goroutine. A push takes a short lock
// and never blocks on the sink; the sink is written only by the Player's
// goroutine, outside the lock.
type Player struct {
	mu     sync.Mutex
	r      *Renderer // guarded by mu
	closed bool      // guarded by mu

	clock Clock
	sink  Sink
	buf   []int16 // owned by run, then by Close
	err   error   // first sink error, owned by run, then by Close
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	cerr  error
	// lastTick is the clock time of the last tick, Unix ns (LastTick).
	lastTick atomic.Int64
}

// LastTick returns when the Player's clock last ticked (its goroutine
// turned), or the zero time before the first tick; /healthz names a
// Player whose clock stopped. Safe for concurrent use.
func (p *Player) LastTick() time.Time {
	if n := p.lastTick.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// NewPlayer starts a Player writing to sink, which it owns from now on
// (Close closes it). Channels come from the sink: mono mix or stereo.
// cfg is used with defaults for its zero fields; an invalid cfg is not an
// error here (Config.Validate is for command lines): bounds are clamped.
func NewPlayer(cfg Config, sink Sink) *Player {
	cfg = cfg.withDefaults()
	p := &Player{
		r:     NewRenderer(cfg, sink.Channels(), isRealtime(sink)),
		clock: cfg.Clock,
		sink:  sink,
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	p.buf = make([]int16, 0, cap(p.r.out))
	t := p.clock.NewTicker(TickInterval)
	go p.run(t)
	return p
}

// Push hands the Player one whole RTP packet (header included) of
// direction dir. It copies what it keeps. The packet is timed by the
// Player's clock at the call, since that is the arrival the jitter buffer
// has to absorb; arrival (the capture time) is kept for the delivery
// delay figure only. Errors: ErrClosed, ErrBadDirection, ErrNotRTP,
// ErrShortRTP.
func (p *Player) Push(dir Direction, arrival time.Time, rtp []byte) error {
	return p.PushFlow(dir, Flow{}, arrival, rtp)
}

// PushFlow is Push for a packet seen on flow: the Player keeps one jitter
// buffer per stream (direction, flow and SSRC).
func (p *Player) PushFlow(dir Direction, flow Flow, arrival time.Time, rtp []byte) error {
	now := p.clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if !arrival.IsZero() {
		p.r.delivery(now.Sub(arrival))
	}
	return p.r.PushFlow(dir, flow, now, rtp)
}

func (p *Player) run(t Ticker) {
	defer close(p.done)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C():
			now := p.clock.Now()
			p.lastTick.Store(now.UnixNano())
			p.tick(now)
		}
	}
}

// tick renders what is due and writes it.
func (p *Player) tick(now time.Time) {
	p.drain(func() []int16 { return p.r.Render(now) })
}

// drain writes the chunks next returns until an empty one. next runs
// under the lock; the sink is written outside it.
func (p *Player) drain(next func() []int16) {
	for {
		p.mu.Lock()
		p.buf = append(p.buf[:0], next()...)
		p.mu.Unlock()
		if len(p.buf) == 0 {
			return
		}
		if err := p.sink.Write(p.buf); err != nil && p.err == nil {
			p.err = err
		}
	}
}

// Close stops the Player: it plays out everything still buffered, stops
// its goroutine, closes the sink and returns the first sink error. Close
// is idempotent; Push after Close returns ErrClosed.
func (p *Player) Close() error {
	p.once.Do(func() {
		close(p.stop)
		<-p.done
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.drain(p.r.Flush)
		p.mu.Lock()
		p.r.Close()
		p.mu.Unlock()
		p.cerr = errors.Join(p.err, p.sink.Close())
	})
	return p.cerr
}

// SetPayloadTypes replaces the Player's map of payload types to codecs
// (Config.PayloadTypes): the packets pushed after it are decoded with the
// new map, a stream whose codec changes switching decoder. m must not be
// modified after the call.
func (p *Player) SetPayloadTypes(m map[uint8]Codec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.r.SetPayloadTypes(m)
}

// Stats returns the Player's counters.
func (p *Player) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.r.Stats()
}
