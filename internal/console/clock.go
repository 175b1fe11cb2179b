package console

import "github.com/silentmon/silentmon/internal/ticker"

// Clock makes the tickers of the event streams; tests inject a fake one so
// that nothing waits on the wall clock.
type Clock = ticker.Clock

// Ticker is the part of time.Ticker the console uses.
type Ticker = ticker.Ticker

// SystemClock is the wall clock. It is safe for concurrent use.
type SystemClock = ticker.System
