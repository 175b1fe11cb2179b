package playout

import "github.com/silentmon/silentmon/internal/resample"

// ResamplerBuiltIn says whether this binary has the resampler
// (libspeexdsp through cgo). Without it every session is 8 kHz: no
// wideband codec is built in either, so nothing needs resampling.
var ResamplerBuiltIn = resample.Available()

// unitSampler is a decoder whose samples are not one per 1/8000 s: G.722
// at 16 kHz (2), Opus at the session's rate (1, 2 or 6).
type unitSampler interface {
	unitSamples() int
}

// perUnit returns the samples per 1/8000 s a decoder writes.
func perUnit(d decoder) int {
	if u, ok := d.(unitSampler); ok {
		return u.unitSamples()
	}
	return 1
}

// upsampled returns d writing m samples per 1/8000 s: d itself when it
// already does, else d behind libspeexdsp's resampler (internal/resample:
// a narrowband stream in a wideband session; its images are 98 dB down
// and it delays the stream by 3 ms from 8 kHz). Without the resampler
// (a build without cgo, where sessions are 8 kHz) a stream it would have
// to upsample plays silence of the right length.
func upsampled(d decoder, m int) decoder {
	in := perUnit(d)
	if in >= m {
		return d
	}
	u := &upDecoder{d: d, in: in, l: m / in}
	u.rs, _ = resample.New(in*SampleRate, m*SampleRate, 1)
	if f, ok := d.(fecDecoder); ok {
		return &upFECDecoder{upDecoder: u, f: f}
	}
	return u
}

// upDecoder is a decoder followed by an integer-factor upsampler.
type upDecoder struct {
	d   decoder
	in  int                 // samples per unit d writes
	l   int                 // the factor
	rs  *resample.Resampler // nil without the resampler
	tmp [maxSamples]int16   // the wrapped decoder's samples: at most 16 kHz G.722, 960 per payload
}

func (u *upDecoder) unitSamples() int        { return u.in * u.l }
func (u *upDecoder) samples(p []byte) int    { return u.d.samples(p) }
func (u *upDecoder) newTalkspurt()           { u.d.newTalkspurt() }
func (u *upDecoder) dtx() bool               { return u.d.dtx() }
func (u *upDecoder) src(pcm []int16) []int16 { return u.tmp[:len(pcm)/u.l] }
func (u *upDecoder) conceal(pcm []int16)     { t := u.src(pcm); u.d.conceal(t); u.run(t, pcm) }
func (u *upDecoder) comfort(pcm []int16)     { t := u.src(pcm); u.d.comfort(t); u.run(t, pcm) }

func (u *upDecoder) close() {
	u.d.close()
	if u.rs != nil {
		u.rs.Close()
	}
}

func (u *upDecoder) reset() {
	u.d.reset()
	if u.rs != nil {
		u.rs.Reset()
	}
}

func (u *upDecoder) decode(p []byte, pcm []int16) int {
	n := u.d.decode(p, u.tmp[:])
	k := n * u.in
	u.run(u.tmp[:k], pcm[:k*u.l])
	return n
}

// run upsamples in into out, which holds len(in)*l samples: an integer
// ratio gives exactly that many, in out's own memory.
func (u *upDecoder) run(in, out []int16) {
	if u.rs == nil {
		clear(out)
		return
	}
	got := u.rs.Process(out[:0:len(out)], in)
	clear(out[len(got):])
}

// upFECDecoder keeps the forward error correction of the decoder it
// wraps.
type upFECDecoder struct {
	*upDecoder
	f fecDecoder
}

func (u *upFECDecoder) recover(next []byte, pcm []int16) bool {
	t := u.src(pcm)
	if !u.f.recover(next, t) {
		return false
	}
	u.run(t, pcm)
	return true
}

// RateFor returns the output rate a session of these codecs is best
// played at: 48000 with Opus among them, else 16000 with G.722 (built
// in), else 8000. A codec not built into this binary does not raise it.
func RateFor(codecs ...Codec) int {
	rate := SampleRate
	for _, c := range codecs {
		switch {
		case c == CodecOpus && OpusBuiltIn:
			rate = 48000
		case c == CodecG722 && G722BuiltIn:
			rate = max(rate, 16000)
		}
	}
	return rate
}

// Downsampler converts interleaved 16-bit frames from a session's rate
// (16000 or 48000 Hz) down to 8000 Hz, for outputs that are narrowband
// (the browser console's PCMU), with libspeexdsp's resampler
// (internal/resample): a tone above 4 kHz is removed (more than 80 dB
// down where it would fold), the band below 3.6 kHz kept; it delays the
// audio by 3 ms. From 8000 Hz it copies. Without the resampler (a build
// without cgo, whose sessions are all 8 kHz) it gives silence of the
// right length from another rate. The zero value is not usable; a
// Downsampler is not safe for concurrent use. Its C state is freed when
// it becomes unreachable.
type Downsampler struct {
	l     int // rate / 8000
	ch    int
	rs    *resample.Resampler // nil from 8 kHz or without the resampler
	phase int                 // without the resampler: input frames since the last output
}

// NewDownsampler returns a Downsampler from rate (16000 or 48000; any
// multiple of 8000) to 8000 Hz for 1 or 2 channels.
func NewDownsampler(rate, channels int) *Downsampler {
	d := &Downsampler{l: max(rate/SampleRate, 1), ch: max(channels, 1)}
	if d.l > 1 {
		d.rs, _ = resample.New(d.l*SampleRate, SampleRate, d.ch)
	}
	return d
}

// Reset forgets the signal history.
func (d *Downsampler) Reset() {
	d.phase = 0
	if d.rs != nil {
		d.rs.Reset()
	}
}

// Process appends to dst the 8 kHz frames of the frames in src and
// returns it. Frames are carried over between calls, so src may be any
// whole number of frames. It allocates only to grow dst.
func (d *Downsampler) Process(dst, src []int16) []int16 {
	src = src[:len(src)/d.ch*d.ch]
	switch {
	case d.rs != nil:
		return d.rs.Process(dst, src)
	case d.l == 1:
		return append(dst, src...)
	}
	for f := 0; f < len(src); f += d.ch {
		if d.phase++; d.phase == d.l {
			d.phase = 0
			for range d.ch {
				dst = append(dst, 0)
			}
		}
	}
	return dst
}
