package audit

import "errors"

// ErrBadRecord: a record whose action, result or reason is not one this
// package defines (see Record.Validate), or a trail line that is not
// such a record.
var ErrBadRecord = errors.New("bad audit record")

// ErrClosed: Write or Reopen after Close.
var ErrClosed = errors.New("audit log closed")
