package gen

import (
	"fmt"

	"github.com/silentmon/silentmon/internal/g722"
	"github.com/silentmon/silentmon/internal/opus"
)

// opusMaxPacket is the largest Opus packet (RFC 6716).
const opusMaxPacket = 1275

// codecAvailable returns an error naming what is missing when c cannot
// be encoded in this build (G.722 needs libspandsp, Opus libopus, both
// cgo).
func codecAvailable(c Codec) error {
	switch {
	case c == G722 && !g722.Available():
		return fmt.Errorf("G.722 needs a build with cgo and libspandsp")
	case c == Opus && !opus.Available():
		return fmt.Errorf("Opus needs a build with cgo and libopus")
	}
	return nil
}

// newWidebandEncoder returns the encoder of G.722 (spandsp, from 8 kHz
// PCM) or Opus (libopus, 8 kHz PCM in, OpusBitrate, VoIP mode).
func newWidebandEncoder(c Codec) (frameEncoder, error) {
	if c == G722 {
		return g722.NewEncoder(SampleRate)
	}
	return opus.NewEncoder(opus.EncoderConfig{Rate: SampleRate, Bitrate: OpusBitrate})
}
