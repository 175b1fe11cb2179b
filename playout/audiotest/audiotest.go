// Package audiotest holds test doubles for playout: a manual clock that
// fires tickers only when told, and a sink that keeps what it is given.
package audiotest

import (
	"sync"
	"time"

	"github.com/silentmon/silentmon/playout"
)

// Clock is a playout.Clock that moves only when Advance is called. It is
// safe for concurrent use.
type Clock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*ticker
}

var _ playout.Clock = (*Clock)(nil)

// NewClock returns a Clock reading start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTicker returns a ticker that fires every d of the clock's time.
func (c *Clock) NewTicker(d time.Duration) playout.Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &ticker{c: make(chan time.Time), d: d, next: c.now.Add(d), stop: make(chan struct{})}
	c.tickers = append(c.tickers, t)
	return t
}

// Advance moves the clock forward by d, one tick at a time: for each tick
// due it sets the time to the tick's and waits until the ticker's owner
// receives it (or stops the ticker). When Advance returns, every tick but
// the last has been fully handled by a single-goroutine receiver that
// reads its ticker in a loop.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		var first *ticker
		for _, t := range c.tickers {
			if t.stopped() {
				continue
			}
			if !t.next.After(end) && (first == nil || t.next.Before(first.next)) {
				first = t
			}
		}
		if first == nil {
			c.now = end
			c.mu.Unlock()
			return
		}
		c.now = first.next
		at := first.next
		first.next = first.next.Add(first.d)
		c.mu.Unlock()
		select {
		case first.c <- at:
		case <-first.stop:
		}
	}
}

// Set moves the clock to t without firing tickers (for timestamps only).
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	for _, tk := range c.tickers {
		for !tk.next.After(t) {
			tk.next = tk.next.Add(tk.d)
		}
	}
	c.mu.Unlock()
}

type ticker struct {
	c    chan time.Time
	d    time.Duration
	next time.Time
	once sync.Once
	stop chan struct{}
}

func (t *ticker) C() <-chan time.Time { return t.c }
func (t *ticker) Stop()               { t.once.Do(func() { close(t.stop) }) }
func (t *ticker) stopped() bool {
	select {
	case <-t.stop:
		return true
	default:
		return false
	}
}

// Sink is a playout.Sink that keeps every sample written. It is safe for
// concurrent use (tests read it while a Player writes).
type Sink struct {
	mu       sync.Mutex
	ch       int
	realtime bool
	samples  []int16
	writes   []WriteEvent
	clock    playout.Clock
	closed   bool
	err      error
}

// WriteEvent records one Write: when (on the sink's clock, if any) and how
// many frames.
type WriteEvent struct {
	At     time.Time
	Frames int
}

var _ playout.RealtimeSink = (*Sink)(nil)

// NewSink returns a Sink with channels (1 or 2). realtime makes it a
// playout.RealtimeSink that reports true. clock, if not nil, timestamps
// each write.
func NewSink(channels int, realtime bool, clock playout.Clock) *Sink {
	return &Sink{ch: channels, realtime: realtime, clock: clock}
}

// FailWith makes every later Write return err.
func (s *Sink) FailWith(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *Sink) Write(p []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return playout.ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	s.samples = append(s.samples, p...)
	ev := WriteEvent{Frames: len(p) / s.ch}
	if s.clock != nil {
		ev.At = s.clock.Now()
	}
	s.writes = append(s.writes, ev)
	return nil
}

func (s *Sink) Channels() int  { return s.ch }
func (s *Sink) Realtime() bool { return s.realtime }

func (s *Sink) Seconds() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return float64(len(s.samples)/s.ch) / playout.SampleRate
}

func (s *Sink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Samples returns a copy of every sample written.
func (s *Sink) Samples() []int16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int16(nil), s.samples...)
}

// Writes returns a copy of the write events.
func (s *Sink) Writes() []WriteEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WriteEvent(nil), s.writes...)
}

// Closed reports whether Close was called.
func (s *Sink) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
