// Package ticker is the clock the services' periodic loops tick by (the
// agent directory's file watch, the console's event streams): the wall
// clock in production, a clock whose ticks a test sends by hand.
package ticker

import "time"

// Clock makes tickers. Implementations are safe for concurrent use.
type Clock interface {
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks on C until stopped; it is the part of
// time.Ticker the loops use.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// System is the wall clock: it makes time.Tickers. Its zero value is
// ready to use.
type System struct{}

// NewTicker returns a time.Ticker firing every d.
func (System) NewTicker(d time.Duration) Ticker { return sysTicker{time.NewTicker(d)} }

type sysTicker struct{ t *time.Ticker }

func (t sysTicker) C() <-chan time.Time { return t.t.C }
func (t sysTicker) Stop()               { t.t.Stop() }
