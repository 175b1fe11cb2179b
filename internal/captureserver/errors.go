package captureserver

import "errors"

// Errors of a start request refused by a limit or a check; the refusal's
// message wraps one of them.
var (
	errMaxSessions  = errors.New("session limit reached")
	errMaxEndpoints = errors.New("too many endpoints")
	errSupervisor   = errors.New("supervisor address not usable")
)
