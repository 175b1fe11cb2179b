//go:build cgo

package resample

/*
#cgo pkg-config: speexdsp
#include <stdint.h>
#include <speex/speex_resampler.h>

// sm_process runs the resampler over in_len frames into at most out_len
// frames and returns the frames consumed (high 32 bits) and written (low).
static uint64_t sm_process(SpeexResamplerState *st, const spx_int16_t *in, spx_uint32_t in_len,
		spx_int16_t *out, spx_uint32_t out_len) {
	speex_resampler_process_interleaved_int(st, in, &in_len, out, &out_len);
	return ((uint64_t)in_len << 32) | out_len;
}
*/
import "C"

import (
	"fmt"
	"runtime"
	"slices"
	"time"
	"unsafe"
)

// Available reports whether the resampler is built in.
func Available() bool { return true }

// Resampler converts interleaved frames from one rate to another. The
// zero value is not usable: call New. Not safe for concurrent use.
type Resampler struct {
	h       *handle
	in, out int
	ch      int
	cleanup runtime.Cleanup
}

// handle owns the C state, so that a cleanup can free it without
// keeping the Resampler reachable.
type handle struct{ st *C.SpeexResamplerState }

// New returns a Resampler from rate in to rate out (Hz) for 1 or 2
// interleaved channels, at Quality. Close it when done.
func New(in, out, channels int) (*Resampler, error) {
	if err := check(in, out, channels); err != nil {
		return nil, err
	}
	var e C.int
	st := C.speex_resampler_init(C.spx_uint32_t(channels), C.spx_uint32_t(in), C.spx_uint32_t(out), Quality, &e)
	if st == nil {
		return nil, fmt.Errorf("%w: libspeexdsp refused %d Hz to %d Hz: %s", ErrRate, in, out, C.GoString(C.speex_resampler_strerror(e)))
	}
	r := &Resampler{h: &handle{st: st}, in: in, out: out, ch: channels}
	r.cleanup = runtime.AddCleanup(r, func(h *handle) { h.free() }, r.h)
	return r, nil
}

func (h *handle) free() {
	if h.st != nil {
		C.speex_resampler_destroy(h.st)
		h.st = nil
	}
}

// Rates returns the input and output rates.
func (r *Resampler) Rates() (in, out int) { return r.in, r.out }

// Channels returns the number of interleaved channels.
func (r *Resampler) Channels() int { return r.ch }

// SetRates changes the rates, keeping the signal history (a device
// switching to a session of another rate). It does not allocate when the
// filter length stays the same.
func (r *Resampler) SetRates(in, out int) error {
	if err := check(in, out, r.ch); err != nil {
		return err
	}
	if r.h.st == nil {
		return ErrClosed
	}
	if in == r.in && out == r.out {
		return nil
	}
	if e := C.speex_resampler_set_rate(r.h.st, C.spx_uint32_t(in), C.spx_uint32_t(out)); e != 0 {
		return fmt.Errorf("%w: libspeexdsp refused %d Hz to %d Hz: %s", ErrRate, in, out, C.GoString(C.speex_resampler_strerror(e)))
	}
	r.in, r.out = in, out
	return nil
}

// Process appends to dst the frames resampled from the frames of src and
// returns it. The filter's state carries over between calls, so src may
// be any whole number of frames; a trailing partial frame is ignored. For
// an integer ratio (8 to 16 or 48 kHz) n input frames give exactly n*out/in
// output frames. It allocates only to grow dst.
func (r *Resampler) Process(dst, src []int16) []int16 {
	frames := len(src) / r.ch
	if frames == 0 || r.h.st == nil {
		return dst
	}
	// An integer upsampling ratio gives exactly frames*out/in frames (so
	// a dst of exactly that room is written in place); otherwise at most
	// one more than the rounded-up share.
	room := frames * r.out / r.in
	if r.out%r.in != 0 {
		room = (frames*r.out+r.in-1)/r.in + 1
	}
	dst = slices.Grow(dst, room*r.ch)
	for frames > 0 {
		free := dst[len(dst):cap(dst)]
		res := C.sm_process(r.h.st, (*C.spx_int16_t)(unsafe.Pointer(&src[0])), C.spx_uint32_t(frames),
			(*C.spx_int16_t)(unsafe.Pointer(unsafe.SliceData(free))), C.spx_uint32_t(len(free)/r.ch))
		used, wrote := int(res>>32), int(res&0xffffffff)
		dst = dst[:len(dst)+wrote*r.ch]
		src = src[used*r.ch:]
		frames -= used
		if frames > 0 && len(dst) == cap(dst) {
			dst = slices.Grow(dst, room*r.ch)
		} else if used == 0 && wrote == 0 {
			break
		}
	}
	return dst
}

// Reset forgets the signal history (a new stream), without allocating.
func (r *Resampler) Reset() {
	if r.h.st != nil {
		C.speex_resampler_reset_mem(r.h.st)
	}
}

// Delay returns the delay the filter adds to the signal: half its length
// at the input rate.
func (r *Resampler) Delay() time.Duration {
	if r.h.st == nil {
		return 0
	}
	n := int(C.speex_resampler_get_input_latency(r.h.st))
	return time.Duration(n) * time.Second / time.Duration(r.in)
}

// Close frees the C state. Process then returns dst unchanged and
// SetRates returns ErrClosed; Close may be called again.
func (r *Resampler) Close() error {
	r.cleanup.Stop()
	r.h.free()
	return nil
}
