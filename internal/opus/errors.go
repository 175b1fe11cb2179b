package opus

import (
	"errors"
	"fmt"
)

// RTPClockRate is the RTP timestamp rate of Opus (RFC 7587).
const RTPClockRate = 48000

// MaxPacketMs is the longest packet Opus codes (120 ms).
const MaxPacketMs = 120

var (
	// ErrNotBuilt means this binary was built without cgo or libopus.
	ErrNotBuilt = errors.New("Opus is not built in (needs cgo and libopus-dev)")
	// ErrRate means a sample rate Opus does not run at.
	ErrRate = errors.New("Opus sample rate is not 8000, 12000, 16000, 24000 or 48000 Hz")
	// ErrPacket means a packet libopus or its table of contents rejects.
	ErrPacket = errors.New("bad Opus packet")
	// ErrShortBuffer means an output buffer is too small.
	ErrShortBuffer = errors.New("output buffer too small")
	// ErrClosed means the encoder or decoder was closed.
	ErrClosed = errors.New("Opus codec closed")
)

func checkRate(rate int) error {
	switch rate {
	case 8000, 12000, 16000, 24000, 48000:
		return nil
	}
	return fmt.Errorf("%w: %d Hz", ErrRate, rate)
}

// PacketSamples returns how many samples per channel packet decodes to at
// rate, from its table of contents (RFC 6716, section 3.1). A packet that
// is empty, malformed or longer than 120 ms returns an error wrapping
// ErrPacket.
func PacketSamples(packet []byte, rate int) (int, error) {
	if err := checkRate(rate); err != nil {
		return 0, err
	}
	if len(packet) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrPacket)
	}
	toc := packet[0]
	// Frame duration in 1/400 s (2.5 ms units) from the configuration.
	cfg := toc >> 3
	var units int
	switch {
	case cfg < 12: // SILK: 10, 20, 40, 60 ms
		units = [4]int{4, 8, 16, 24}[cfg&3]
	case cfg < 16: // hybrid: 10, 20 ms
		units = [2]int{4, 8}[cfg&1]
	default: // CELT: 2.5, 5, 10, 20 ms
		units = [4]int{1, 2, 4, 8}[cfg&3]
	}
	var frames int
	switch toc & 3 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(packet) < 2 {
			return 0, fmt.Errorf("%w: code 3 packet of %d byte without a frame count", ErrPacket, len(packet))
		}
		frames = int(packet[1] & 0x3f)
		if frames == 0 {
			return 0, fmt.Errorf("%w: code 3 packet with no frames", ErrPacket)
		}
	}
	if frames*units > MaxPacketMs*400/1000 {
		return 0, fmt.Errorf("%w: %d frames of %.1f ms is more than 120 ms", ErrPacket, frames, float64(units)*2.5)
	}
	return frames * units * rate / 400, nil
}
