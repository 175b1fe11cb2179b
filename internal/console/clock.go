package console

import "time"

// Clock makes the tickers of the event streams; tests inject a fake one so
// that nothing waits on the wall clock.
type Clock interface {
	NewTicker(d time.Duration) Ticker
}

// Ticker is the part of time.Ticker the console uses.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// SystemClock is the wall clock. It is safe for concurrent use.
type SystemClock struct{}

// NewTicker returns a time.Ticker firing every d.
func (SystemClock) NewTicker(d time.Duration) Ticker { return sysTicker{time.NewTicker(d)} }

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) C() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()               { t.t.Stop() }
