package playout

import (
	"fmt"

	"github.com/silentmon/silentmon/internal/g729"
)

// G729BuiltIn says whether this binary decodes G.729 (built with cgo and
// libbcg729-dev).
var G729BuiltIn = g729.Available()

// g729Decoder decodes G.729, G.729A and G.729B payloads with bcg729:
// 10-byte speech frames, a trailing 2-byte SID frame (comfort noise), and
// bcg729's own concealment of erased frames for losses.
type g729Decoder struct {
	d    *g729.Decoder
	tmp  [g729.FrameSamples]int16 // concealment not yet handed out
	tOff int
}

func newG729() (decoder, error) {
	if !g729.Available() {
		return nil, ErrG729NotBuilt
	}
	d, err := g729.NewDecoder()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrG729NotBuilt, err)
	}
	return &g729Decoder{d: d, tOff: g729.FrameSamples}, nil
}

func (d *g729Decoder) samples(p []byte) int {
	n := len(p) / g729.FrameBytes * g729.FrameSamples
	switch len(p) % g729.FrameBytes {
	case 0:
	case g729.SIDBytes:
		n += g729.FrameSamples
	default:
		return 0
	}
	return n
}

func (d *g729Decoder) decode(p []byte, pcm []int16) int {
	d.tOff = g729.FrameSamples
	n, err := d.d.DecodePayload(p, pcm)
	if err != nil { // cannot happen after samples() accepted p
		clear(pcm[:d.samples(p)])
		return d.samples(p)
	}
	return n
}

// conceal hands out erased frames decoded by bcg729, keeping a partial
// frame's rest for the next call.
func (d *g729Decoder) conceal(pcm []int16) {
	for len(pcm) > 0 {
		if d.tOff == g729.FrameSamples {
			if d.d.Decode(nil, true, d.tmp[:]) != nil {
				clear(d.tmp[:])
			}
			d.tOff = 0
		}
		n := copy(pcm, d.tmp[d.tOff:])
		d.tOff += n
		pcm = pcm[n:]
	}
}

// newTalkspurt keeps the decoder's state: the sender's encoder keeps its
// own across silences.
func (d *g729Decoder) newTalkspurt() { d.tOff = g729.FrameSamples }

// reset starts a fresh decoder (new SSRC: another encoder).
func (d *g729Decoder) reset() {
	d.tOff = g729.FrameSamples
	if nd, err := g729.NewDecoder(); err == nil {
		d.d.Close()
		d.d = nd
	}
}

func (d *g729Decoder) close() { d.d.Close() }
