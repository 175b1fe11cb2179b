package playout

import "time"

// Clock is the time source that paces a Player. Tests inject a manual
// clock (playout/audiotest) so nothing sleeps.
type Clock interface {
	Now() time.Time
	// NewTicker returns a ticker firing every d.
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of time.Ticker a Player uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock is the wall clock. It is safe for concurrent use.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

func (SystemClock) NewTicker(d time.Duration) Ticker { return sysTicker{time.NewTicker(d)} }

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) C() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()               { t.t.Stop() }
