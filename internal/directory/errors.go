package directory

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error of this package that matches one of these
// wraps it, so callers test with errors.Is; the message itself is one
// sentence naming the file, the line and the value at fault.
var (
	// ErrInvalid: the directory's content breaks a rule (syntax, a value,
	// a duplicate). The whole directory is refused.
	ErrInvalid = errors.New("invalid agent directory")
	// ErrTooLarge: the directory exceeds Options.MaxBytes or
	// Options.MaxAgents.
	ErrTooLarge = errors.New("agent directory too large")
	// ErrClosed: the Watcher was closed.
	ErrClosed = errors.New("agent directory watcher closed")
)

// sentinelError is a message that matches a sentinel with errors.Is
// without repeating the sentinel's text.
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

// newErr formats a one-sentence message that wraps sentinel.
func newErr(sentinel error, format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}
