package playout

import "errors"

// ErrBadEvent is returned for a telephone-event (RFC 4733) or redundant
// (RFC 2198) payload that is empty or truncated.
var ErrBadEvent = errors.New("malformed telephone-event payload")
