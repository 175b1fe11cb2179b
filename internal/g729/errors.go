package g729

import "errors"

// FrameSamples is the number of PCM samples in one 10 ms G.729 frame.
const FrameSamples = 80

// FrameBytes is the size of one encoded G.729 speech frame.
const FrameBytes = 10

// SIDBytes is the size of a G.729 annex B SID frame.
const SIDBytes = 2

var (
	// ErrNotBuilt means this binary was built without cgo or bcg729.
	ErrNotBuilt = errors.New("G.729 is not built in (needs cgo and libbcg729)")
	// ErrFrameSize means a frame is neither 10 nor 2 bytes, or a payload
	// is not a whole number of frames.
	ErrFrameSize = errors.New("bad G.729 frame size")
	// ErrShortBuffer means an output buffer is too small.
	ErrShortBuffer = errors.New("output buffer too small")
	// ErrClosed means the encoder or decoder was closed.
	ErrClosed = errors.New("G.729 codec closed")
)

// payloadFrames validates a G.729 RTP payload and returns the number of
// speech frames and whether a SID frame follows them.
func payloadFrames(n int) (frames int, sid bool, err error) {
	frames = n / FrameBytes
	switch n % FrameBytes {
	case 0:
	case SIDBytes:
		sid = true
	default:
		return 0, false, ErrFrameSize
	}
	return frames, sid, nil
}

// PayloadSamples returns the number of samples an RTP payload of n bytes
// decodes to: 80 per 10-byte frame and 80 for a trailing SID frame. A size
// that is not such a payload returns an error wrapping ErrFrameSize.
func PayloadSamples(n int) (int, error) {
	frames, sid, err := payloadFrames(n)
	if sid {
		frames++
	}
	return frames * FrameSamples, err
}
