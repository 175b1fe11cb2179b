package g722

import (
	"errors"
	"fmt"
)

// RTPClockRate is the RTP timestamp rate of G.722 (RFC 3551): one tick per
// payload byte.
const RTPClockRate = 8000

// Bitrate is the only bit rate used on RTP (mode 1, 64 kbit/s).
const Bitrate = 64000

var (
	// ErrNotBuilt means this binary was built without cgo or libspandsp.
	ErrNotBuilt = errors.New("G.722 is not built in (needs cgo and libspandsp-dev)")
	// ErrRate means a sample rate other than 8000 or 16000 Hz.
	ErrRate = errors.New("G.722 sample rate is not 8000 or 16000 Hz")
	// ErrShortBuffer means an output buffer is too small.
	ErrShortBuffer = errors.New("output buffer too small")
	// ErrClosed means the encoder or decoder was closed.
	ErrClosed = errors.New("G.722 codec closed")
)

func checkRate(rate int) error {
	if rate != 8000 && rate != 16000 {
		return fmt.Errorf("%w: %d Hz", ErrRate, rate)
	}
	return nil
}

// PayloadSamples returns the number of samples n payload bytes decode to
// at rate (8000 or 16000 Hz): n at 8000, 2n at 16000.
func PayloadSamples(n, rate int) int { return n * rate / RTPClockRate }
