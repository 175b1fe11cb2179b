package playout

import "math"

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
// already does, else d behind an upsampler (a narrowband stream in a
// wideband session). The upsampler is a pure-Go polyphase windowed-sinc
// filter (Kaiser window, 32 taps per phase at the input rate, cut-off at
// 0.45 of the input rate: a 1 kHz tone's image 94 dB down, within 53 dB
// of sox's resampler, TestUpsampleMatchesSox), far above linear
// interpolation; it delays the stream by 2 ms.
func upsampled(d decoder, m int) decoder {
	in := perUnit(d)
	if in >= m {
		return d
	}
	u := &upDecoder{d: d, in: in}
	u.fir.init(m / in)
	if f, ok := d.(fecDecoder); ok {
		return &upFECDecoder{upDecoder: u, f: f}
	}
	return u
}

// upDecoder is a decoder followed by an integer-factor upsampler.
type upDecoder struct {
	d   decoder
	in  int // samples per unit d writes
	fir upFIR
	tmp [maxSamples]int16 // the wrapped decoder's samples: at most 16 kHz G.722, 960 per payload
}

func (u *upDecoder) unitSamples() int        { return u.in * u.fir.l }
func (u *upDecoder) samples(p []byte) int    { return u.d.samples(p) }
func (u *upDecoder) newTalkspurt()           { u.d.newTalkspurt() }
func (u *upDecoder) dtx() bool               { return u.d.dtx() }
func (u *upDecoder) close()                  { u.d.close() }
func (u *upDecoder) reset()                  { u.d.reset(); u.fir.reset() }
func (u *upDecoder) src(pcm []int16) []int16 { return u.tmp[:len(pcm)/u.fir.l] }
func (u *upDecoder) conceal(pcm []int16)     { t := u.src(pcm); u.d.conceal(t); u.fir.run(t, pcm) }
func (u *upDecoder) comfort(pcm []int16)     { t := u.src(pcm); u.d.comfort(t); u.fir.run(t, pcm) }
func (u *upDecoder) decode(p []byte, pcm []int16) int {
	n := u.d.decode(p, u.tmp[:])
	k := n * u.in
	u.fir.run(u.tmp[:k], pcm[:k*u.fir.l])
	return n
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
	u.fir.run(t, pcm)
	return true
}

// upTaps is the filter length per phase, in input samples.
const upTaps = 32

// upFIR upsamples by an integer factor l with a polyphase windowed-sinc
// low-pass filter. The zero value is not ready: call init. Not safe for
// concurrent use.
type upFIR struct {
	l    int
	coef [][upTaps]float32 // per output phase, oldest input first
	hist [upTaps]float32   // last upTaps input samples, oldest first
}

// upCoefs caches the filters per factor (2, 3, 6), built once.
var upCoefs = map[int][][upTaps]float32{}

func init() {
	for _, l := range []int{2, 3, 6} {
		upCoefs[l] = designUp(l)
	}
}

// designUp builds the l phases of a Kaiser-windowed sinc whose cut-off is
// 0.45 of the input rate, scaled so each phase has unity gain at DC.
func designUp(l int) [][upTaps]float32 {
	h := designLP(l)
	c := make([][upTaps]float32, l)
	for p := range l {
		var sum float64
		for k := range upTaps {
			sum += h[k*l+p]
		}
		for k := range upTaps {
			// phase p's output uses input k back from the newest:
			// coefficient h[k*l+p] goes with hist[upTaps-1-k].
			c[p][upTaps-1-k] = float32(h[k*l+p] / sum)
		}
	}
	return c
}

// designLP returns upTaps*l taps of a Kaiser-windowed sinc low-pass
// filter whose cut-off is 0.45/l of its rate (0.45 of the lower rate).
// The filter proper has upTaps*l-1 taps (an odd length, so its delay is a
// whole number of samples: upTaps*l/2-1); the last tap is zero.
func designLP(l int) []float64 {
	const beta = 8.0
	n := upTaps*l - 1
	h := make([]float64, n+1)
	fc := 0.45 / float64(l)
	i0b := bessel0(beta)
	for i := range n {
		x := float64(i) - float64(n-1)/2
		s := 2 * fc
		if x != 0 {
			s = math.Sin(2*math.Pi*fc*x) / (math.Pi * x)
		}
		r := 2*float64(i)/float64(n-1) - 1
		h[i] = s * bessel0(beta*math.Sqrt(max(0, 1-r*r))) / i0b
	}
	return h
}

// bessel0 is the modified Bessel function of the first kind, order 0.
func bessel0(x float64) float64 {
	sum, t := 1.0, 1.0
	for k := 1; k < 50; k++ {
		t *= (x / 2) / float64(k)
		sum += t * t
	}
	return sum
}

func (f *upFIR) init(l int) {
	f.l = l
	f.coef = upCoefs[l]
	if f.coef == nil {
		f.coef = designUp(l)
	}
}

func (f *upFIR) reset() { clear(f.hist[:]) }

// run upsamples in into out, which holds len(in)*l samples.
func (f *upFIR) run(in []int16, out []int16) {
	for i, v := range in {
		copy(f.hist[:], f.hist[1:])
		f.hist[upTaps-1] = float32(v)
		for p := range f.l {
			c := &f.coef[p]
			var acc float32
			for k := range upTaps {
				acc += c[k] * f.hist[k]
			}
			out[i*f.l+p] = sat(int32(math.Round(float64(acc))))
		}
	}
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
// (the browser console's PCMU): a Kaiser-windowed sinc low-pass filter
// (cut-off 3.6 kHz, 32 taps at 8 kHz) then every second or sixth frame.
// It delays the audio by 2 ms. The
// zero value is not usable; a Downsampler is not safe for concurrent use.
type Downsampler struct {
	l     int
	ch    int
	coef  []float32 // oldest input first
	hist  []float32 // per channel 2*len(coef): a ring written twice, so a window is contiguous
	pos   int       // the oldest input's index in each channel's ring
	phase int       // inputs since the last output
}

// NewDownsampler returns a Downsampler from rate (16000 or 48000; any
// multiple of 8000) to 8000 Hz for 1 or 2 channels.
func NewDownsampler(rate, channels int) *Downsampler {
	l := max(rate/SampleRate, 1)
	h := designLP(l)
	var sum float64
	for _, v := range h {
		sum += v
	}
	c := make([]float32, len(h))
	for i, v := range h {
		c[len(h)-1-i] = float32(v / sum)
	}
	return &Downsampler{l: l, ch: max(channels, 1), coef: c, hist: make([]float32, 2*len(c)*max(channels, 1))}
}

// Reset forgets the signal history.
func (d *Downsampler) Reset() { clear(d.hist); d.pos, d.phase = 0, 0 }

// Process appends to dst the 8 kHz frames of the frames in src and
// returns it. Frames are carried over between calls, so src may be any
// whole number of frames.
func (d *Downsampler) Process(dst, src []int16) []int16 {
	n := len(d.coef)
	for f := 0; f+d.ch <= len(src); f += d.ch {
		for c := range d.ch {
			h := d.hist[2*c*n : 2*(c+1)*n]
			h[d.pos], h[d.pos+n] = float32(src[f+c]), float32(src[f+c])
		}
		d.pos++
		if d.pos == n {
			d.pos = 0
		}
		d.phase++
		if d.phase < d.l {
			continue
		}
		d.phase = 0
		for c := range d.ch {
			h := d.hist[2*c*n+d.pos : 2*c*n+d.pos+n]
			var acc float32
			for k, v := range h {
				acc += d.coef[k] * v
			}
			dst = append(dst, sat(int32(math.Round(float64(acc)))))
		}
	}
	return dst
}
