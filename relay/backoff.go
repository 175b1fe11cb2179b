package relay

import (
	"math/rand/v2"
	"sync"
	"time"
)

// Clock is the time source of a Forwarder's reconnection back-off. Tests
// inject a manual one so that nothing sleeps. Implementations are safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// After returns time.After(d).
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Reconnection back-off defaults (ForwarderConfig.RetryMin, RetryMax) and
// how long a link must have stayed up for the back-off to start again
// from RetryMin.
const (
	DefaultRetryMin = 250 * time.Millisecond
	DefaultRetryMax = 30 * time.Second
	StableLink      = 10 * time.Second
	// RecentlyUp and RecentRetryMax: for RecentlyUp after a link to the
	// address ended, the wait is capped at RecentRetryMax instead of
	// RetryMax, so that a supervisor service that restarts is heard
	// again within about a second of its return; an address that was
	// never up, or not for a minute, backs off to RetryMax.
	RecentlyUp     = time.Minute
	RecentRetryMax = time.Second
)

// backoff paces the connection attempts to one supervisor address, shared
// by every sender that ever pushes to it (a sender replaced after Retain
// inherits the back-off of the one before): one attempt at a time (turn),
// each after the wait the failures in a row call for. Safe for concurrent
// use.
type backoff struct {
	turn chan struct{} // holds a token while an attempt is under way

	mu       sync.Mutex
	failures int       // attempts or short links that failed in a row
	next     time.Time // no attempt before this
	lastUp   time.Time // when the last link to the address ended
	users    int       // senders holding this back-off (under Forwarder.mu)
}

func newBackoff() *backoff { return &backoff{turn: make(chan struct{}, 1)} }

// delay is the wait after n failures in a row (n ≥ 1): min·2^(n-1) capped
// at max, less a random part of up to half of it (jitter, so that the
// capture servers of a site do not all dial at once), as r, a number in
// [0, 1), says.
func delay(n int, min, max time.Duration, r float64) time.Duration {
	d := min
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	if d > max {
		d = max
	}
	return d - time.Duration(r*float64(d/2))
}

// acquire waits for this address's turn and for the back-off to expire.
// It returns false, without the turn, when stop is closed first; when
// nothing needs waiting for, it returns true even if stop is closed (a
// draining sender is worth one attempt).
func (b *backoff) acquire(clk Clock, stop <-chan struct{}) bool {
	select {
	case b.turn <- struct{}{}:
	default:
		select {
		case b.turn <- struct{}{}:
		case <-stop:
			return false
		}
	}
	for {
		b.mu.Lock()
		wait := b.next.Sub(clk.Now())
		b.mu.Unlock()
		if wait <= 0 {
			return true
		}
		select {
		case <-clk.After(wait):
		case <-stop:
			<-b.turn
			return false
		}
	}
}

// failed records an attempt that failed (the dial, the TLS handshake or
// the hello) and gives the turn back.
func (b *backoff) failed(f *Forwarder) {
	b.mu.Lock()
	b.failures++
	now := f.clock.Now()
	b.next = now.Add(delay(b.failures, f.cfg.RetryMin, b.max(f, now), f.rand()))
	b.mu.Unlock()
	<-b.turn
}

// max is the cap of the wait at now (under mu): RecentRetryMax shortly
// after a link ended, RetryMax otherwise.
func (b *backoff) max(f *Forwarder, now time.Time) time.Duration {
	if !b.lastUp.IsZero() && now.Sub(b.lastUp) < RecentlyUp {
		return min(f.cfg.RetryMax, RecentRetryMax)
	}
	return f.cfg.RetryMax
}

// connected gives the turn back after an attempt that brought a link up.
func (b *backoff) connected() { <-b.turn }

// ended records the end of a link that was up for up: one that stayed up
// StableLink or longer resets the back-off (the next attempt is at once);
// a shorter one counts as a failure. For RecentlyUp after it, waits are
// capped at RecentRetryMax.
func (b *backoff) ended(f *Forwarder, up time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := f.clock.Now()
	b.lastUp = now
	if up >= StableLink {
		b.failures, b.next = 0, now
		return
	}
	b.failures++
	b.next = now.Add(delay(b.failures, f.cfg.RetryMin, b.max(f, now), f.rand()))
}

// idle reports whether the back-off holds nothing worth keeping at now: no
// failure in a row, or a wait that ended RetryMax ago.
func (b *backoff) idle(now time.Time, max time.Duration) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures == 0 || now.Sub(b.next) > max
}

func defaultRand() float64 { return rand.Float64() }
