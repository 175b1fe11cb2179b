package playout

import (
	"fmt"

	"github.com/silentmon/silentmon/internal/g722"
)

// G722BuiltIn says whether this binary decodes G.722 (built with cgo and
// libspandsp-dev).
var G722BuiltIn = g722.Available()

// g722Decoder decodes G.722 (64 kbit/s) with libspandsp at SampleRate and
// conceals losses as G.711 is (plc.go); G.722 has no concealment of its
// own in spandsp.
//
// Its RTP clock is 8000 Hz whatever the output rate: one timestamp tick
// per payload byte. At SampleRate 8000 spandsp decodes the lower sub-band
// only (0 to 4 kHz), one sample per byte, no resampling needed; at 16000
// (the wideband pipeline) it decodes both sub-bands, two samples per
// byte: samples() then returns 2*len(p) and the stream scales timestamps
// by SampleRate/ClockRate.
type g722Decoder struct {
	d   *g722.Decoder
	per int // samples per 1/8000 s: 1 at 8 kHz, 2 at 16 kHz
	plc plc
}

// newG722 decodes at 16 kHz for a session of 16 kHz or more (a 48 kHz
// session upsamples it), else at 8 kHz.
func newG722(rate int) (decoder, error) {
	if !g722.Available() {
		return nil, ErrG722NotBuilt
	}
	rate = min(rate, 16000)
	d, err := g722.NewDecoder(rate)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrG722NotBuilt, err)
	}
	per := rate / SampleRate
	return &g722Decoder{d: d, per: per, plc: plc{k: per}}, nil
}

// samples is the payload's duration: one 8000 Hz tick per byte.
func (d *g722Decoder) samples(p []byte) int { return len(p) }

func (d *g722Decoder) unitSamples() int { return d.per }

func (d *g722Decoder) decode(p []byte, pcm []int16) int {
	n, err := d.d.Decode(p, pcm)
	if err != nil { // cannot happen: the stream sizes pcm by samples()
		n = len(p) * d.per
		clear(pcm[:n])
	}
	d.plc.good(pcm[:n])
	return n / d.per
}

func (d *g722Decoder) conceal(pcm []int16) { d.plc.conceal(pcm) }

// newTalkspurt keeps the decoder's ADPCM state (the sender's encoder
// keeps its own across a pause) and forgets the concealment history.
func (d *g722Decoder) newTalkspurt() { d.plc.reset() }

// reset starts afresh (new SSRC: another encoder).
func (d *g722Decoder) reset() {
	d.plc.reset()
	d.d.Reset()
}

func (d *g722Decoder) dtx() bool           { return false }
func (d *g722Decoder) comfort(pcm []int16) { clear(pcm) }
func (d *g722Decoder) close()              { d.d.Close() }
