package captureserver

import (
	"math"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/quality"
	"github.com/silentmon/silentmon/internal/status"
)

// streamMOS returns the E-model MOS of a stream seen on the wire, from its
// network loss (capture loss is the capture's, not the call's) and its
// interarrival jitter, or 0 when the codec is unknown to the E-model or
// nothing was expected yet. The packet time comes from the mean payload
// size (8 bytes a millisecond for G.711, 1 for G.729), 20 ms otherwise.
func streamMOS(x capture.StreamStats) float64 {
	if !quality.KnownCodec(x.Codec) || x.Expected <= 0 || x.Packets == 0 {
		return 0
	}
	ppl := 100 * float64(x.LostNetwork) / float64(x.Expected)
	ptime := 20.0
	perMs := 8.0
	if x.Codec == "G729" {
		perMs = 1
	}
	if p := float64(x.Bytes) / float64(x.Packets) / perMs; p >= 5 && p <= 200 {
		ptime = p
	}
	return math.Round(quality.StreamMOS(x.Codec, ppl, x.Jitter, ptime)*100) / 100
}

// worstMOS returns the lowest non-zero MOS of streams, or 0.
func worstMOS(streams []status.StreamStatus) float64 {
	w := 0.0
	for _, y := range streams {
		if y.MOS > 0 && (w == 0 || y.MOS < w) {
			w = y.MOS
		}
	}
	return w
}
