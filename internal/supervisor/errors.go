package supervisor

import "errors"

// ErrBadOutput is wrapped by New's error for an output spec it does not
// take (unknown kind, a wav PATH whose directory is missing or holds a
// placeholder).
var ErrBadOutput = errors.New("bad output")
