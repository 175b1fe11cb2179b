package resample

import (
	"errors"
	"fmt"
)

var (
	// ErrNotBuilt means this binary was built without cgo or
	// libspeexdsp.
	ErrNotBuilt = errors.New("the resampler is not built in (needs cgo and libspeexdsp-dev)")
	// ErrRate means a sample rate or channel count the resampler does not
	// take.
	ErrRate = errors.New("resampler rates must be positive and channels 1 or 2")
)

func check(in, out, channels int) error {
	if in <= 0 || out <= 0 || in > 384000 || out > 384000 {
		return fmt.Errorf("%w: %d Hz to %d Hz", ErrRate, in, out)
	}
	if channels != 1 && channels != 2 {
		return fmt.Errorf("%w: %d channels", ErrRate, channels)
	}
	return nil
}

// Quality is libspeexdsp's quality setting every Resampler uses
// (SPEEX_RESAMPLER_QUALITY_VOIP).
const Quality = 3

// ErrClosed means the Resampler was closed.
var ErrClosed = errors.New("resampler closed")
