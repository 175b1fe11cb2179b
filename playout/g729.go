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
//
// After a SID frame the sender transmits nothing until speech resumes
// (DTX). comfort fills that silence with comfort noise by decoding the
// last SID frame again for every 10 ms: bcg729 then keeps its noise
// generator running with the SID's level (smoothed as for a received SID)
// and spectrum. An erased frame would do the same in bcg729 only if it
// were passed without a bit stream; internal/g729 passes zero bits, which
// bcg729 reads as a SID of the lowest level and a flat spectrum.
type g729Decoder struct {
	d     *g729.Decoder
	tmp   [g729.FrameSamples]int16 // concealment or comfort noise not yet handed out
	tOff  int
	sid   [g729.SIDBytes]byte // the last SID frame, while inDTX
	inDTX bool
	cn    bool // tmp holds comfort noise (not concealment)
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
	n, err := g729.PayloadSamples(len(p))
	if err != nil {
		return 0
	}
	return n
}

func (d *g729Decoder) decode(p []byte, pcm []int16) int {
	d.tOff = g729.FrameSamples
	if d.inDTX = len(p)%g729.FrameBytes == g729.SIDBytes; d.inDTX {
		copy(d.sid[:], p[len(p)-g729.SIDBytes:])
	}
	n, err := d.d.DecodePayload(p, pcm)
	if err != nil { // cannot happen after samples() accepted p
		n = d.samples(p)
		clear(pcm[:n])
	}
	return n
}

// conceal hands out erased frames decoded by bcg729.
func (d *g729Decoder) conceal(pcm []int16) { d.handOut(pcm, false) }

func (d *g729Decoder) dtx() bool { return d.inDTX }

// comfort hands out comfort noise frames (the last SID decoded again).
func (d *g729Decoder) comfort(pcm []int16) { d.handOut(pcm, true) }

// handOut fills pcm with frames of one kind, comfort noise (cn) or
// concealment, keeping a partial frame's rest for the next call of the
// same kind.
func (d *g729Decoder) handOut(pcm []int16, cn bool) {
	if d.cn != cn {
		d.cn, d.tOff = cn, g729.FrameSamples
	}
	for len(pcm) > 0 {
		if d.tOff == g729.FrameSamples {
			var err error
			if cn {
				err = d.d.Decode(d.sid[:], false, d.tmp[:])
			} else {
				err = d.d.Decode(nil, true, d.tmp[:])
			}
			if err != nil {
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
	d.tOff, d.inDTX, d.cn = g729.FrameSamples, false, false
	if nd, err := g729.NewDecoder(); err == nil {
		d.d.Close()
		d.d = nd
	}
}

func (d *g729Decoder) close() { d.d.Close() }
