package playout

import (
	"fmt"

	"github.com/silentmon/silentmon/internal/opus"
)

// OpusBuiltIn says whether this binary decodes Opus (built with cgo and
// libopus-dev).
var OpusBuiltIn = opus.Available()

// opusFrameMax is the longest Opus packet at 48 kHz (120 ms).
const opusFrameMax = opus.MaxPacketMs * 48000 / 1000

// opusDecoder decodes Opus with libopus straight at SampleRate (libopus
// decodes at 8, 12, 16, 24 or 48 kHz, so the wideband pipeline only
// changes the rate it is opened at). A lost packet is concealed by
// libopus; the last packet of a gap is rebuilt from the forward error
// correction the next packet carries (in-band FEC, RFC 7587 section 3.3)
// when the sender sent it (recover), which libopus otherwise conceals
// too.
type opusDecoder struct {
	d     *opus.Decoder
	rate  int                 // the rate libopus decodes at: the session's
	per   int                 // samples per 1/8000 s
	frame int                 // samples of the last packet, the size of a concealed frame
	tmp   [opusFrameMax]int16 // concealment not yet handed out
	tOff  int
	tLen  int
}

// newOpus decodes at the session's rate (8000, 16000 or 48000).
func newOpus(rate int) (decoder, error) {
	if !opus.Available() {
		return nil, ErrOpusNotBuilt
	}
	d, err := opus.NewDecoder(rate)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOpusNotBuilt, err)
	}
	return &opusDecoder{d: d, rate: rate, per: rate / SampleRate, frame: rate / 50}, nil
}

// samples is the packet's duration in 1/8000 s.
func (d *opusDecoder) samples(p []byte) int {
	n, err := opus.PacketSamples(p, SampleRate)
	if err != nil {
		return 0
	}
	return n
}

func (d *opusDecoder) unitSamples() int { return d.per }

func (d *opusDecoder) decode(p []byte, pcm []int16) int {
	d.tOff, d.tLen = 0, 0
	n, err := d.d.Decode(p, pcm)
	if err != nil { // a packet libopus rejects past its TOC: silence
		n = d.samples(p)
		clear(pcm[:n*d.per])
		return n
	}
	d.frame = n
	return n / d.per
}

// conceal hands out libopus's concealment, one frame of the last packet's
// size at a time.
func (d *opusDecoder) conceal(pcm []int16) {
	for len(pcm) > 0 {
		if d.tOff == d.tLen {
			n, err := d.d.Conceal(d.tmp[:d.frame])
			if err != nil || n == 0 {
				clear(pcm)
				return
			}
			d.tOff, d.tLen = 0, n
		}
		k := copy(pcm, d.tmp[d.tOff:d.tLen])
		d.tOff += k
		pcm = pcm[k:]
	}
}

// recover fills pcm, the samples just before the packet next, from
// next's forward error correction data. It reports false, leaving pcm
// alone, when pcm is not a whole number of 2.5 ms steps or concealment
// of a frame is under way (then conceal continues it).
func (d *opusDecoder) recover(next []byte, pcm []int16) bool {
	if len(pcm) == 0 || len(pcm)%(d.rate/400) != 0 || len(pcm) > opusFrameMax || d.tOff != d.tLen {
		return false
	}
	n, err := d.d.DecodeFEC(next, pcm)
	return err == nil && n == len(pcm)
}

// newTalkspurt keeps the decoder's state (the sender's encoder keeps its
// own) and drops concealment not handed out.
func (d *opusDecoder) newTalkspurt() { d.tOff, d.tLen = 0, 0 }

// reset starts afresh (new SSRC: another encoder).
func (d *opusDecoder) reset() {
	d.tOff, d.tLen, d.frame = 0, 0, d.rate/50
	d.d.Reset()
}

func (d *opusDecoder) dtx() bool           { return false }
func (d *opusDecoder) comfort(pcm []int16) { clear(pcm) }
func (d *opusDecoder) close()              { d.d.Close() }
