package service

import "errors"

// Errors of /healthz's loop check (Heartbeats.Check), for errors.Is.
var (
	// ErrLoopStuck: a loop has not turned for longer than its bound.
	ErrLoopStuck = errors.New("loop stuck")
	// ErrLoopStopped: a loop ended before its time.
	ErrLoopStopped = errors.New("loop stopped")
)
