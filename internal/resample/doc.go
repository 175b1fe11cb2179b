// Package resample converts 16-bit PCM between sample rates with the
// resampler of libspeexdsp through cgo: the one resampler of the product.
//
// libspeexdsp's resampler is the one PulseAudio, Asterisk and FreeSWITCH
// use for live telephony audio: a windowed-sinc filter evaluated on the
// fly, with an int16 interleaved API and a short delay. It is used at
// Quality (5, libspeexdsp's "desktop" setting: a Kaiser-windowed sinc of
// 80 taps at the lower rate, its stop band about 100 dB down). Its delay
// is half the filter: 40 samples at the lower rate, 5 ms from or to
// 8 kHz, 2.5 ms from 16 kHz (Delay).
//
// Without cgo (CGO_ENABLED=0) the package still compiles: Available
// reports false and New returns an error wrapping ErrNotBuilt. Such a
// build has no wideband codec (G.722 and Opus need cgo too), so its
// sessions are 8 kHz and nothing needs resampling.
//
// A Resampler holds C state; it is not safe for concurrent use and must
// be closed (a Resampler that becomes unreachable is freed by the
// garbage collector too). Process does not allocate when dst has room.
package resample
