package playout

import "errors"

// Sentinels of the codecs built in through cgo besides G.729 (see
// errors.go for the others).
var (
	// ErrG722NotBuilt is reported when a G.722 stream arrives in a build
	// without cgo (or without libspandsp-dev).
	ErrG722NotBuilt = errors.New("G.722 is not built into this binary (it needs cgo and libspandsp-dev)")
	// ErrOpusNotBuilt is reported when an Opus stream arrives in a build
	// without cgo (or without libopus-dev).
	ErrOpusNotBuilt = errors.New("Opus is not built into this binary (it needs cgo and libopus-dev)")
)
