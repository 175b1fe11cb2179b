//go:build cgo

package g722

/*
#cgo LDFLAGS: -lspandsp
#include <stdint.h>
#include <spandsp/telephony.h>
#include <spandsp/g722.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Available reports whether G.722 is built in.
func Available() bool { return true }

func options(rate int) C.int {
	if rate == 8000 {
		return C.G722_SAMPLE_RATE_8000
	}
	return 0
}

// Decoder decodes G.722 payloads. It is not safe for concurrent use.
type Decoder struct {
	s    *C.g722_decode_state_t
	rate int
}

// NewDecoder returns a decoder whose output is at rate, 8000 or 16000 Hz;
// Close it when done.
func NewDecoder(rate int) (*Decoder, error) {
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	s := C.g722_decode_init(nil, Bitrate, options(rate))
	if s == nil {
		return nil, fmt.Errorf("g722: spandsp could not create a decoder at %d Hz", rate)
	}
	return &Decoder{s: s, rate: rate}, nil
}

// Rate returns the output sample rate.
func (d *Decoder) Rate() int { return d.rate }

// Decode decodes payload into out and returns the number of samples
// written, PayloadSamples(len(payload), d.Rate()). It does not allocate.
func (d *Decoder) Decode(payload []byte, out []int16) (int, error) {
	if d.s == nil {
		return 0, ErrClosed
	}
	want := PayloadSamples(len(payload), d.rate)
	if len(out) < want {
		return 0, fmt.Errorf("%w: %d samples, need %d", ErrShortBuffer, len(out), want)
	}
	if len(payload) == 0 {
		return 0, nil
	}
	n := C.g722_decode(d.s, (*C.int16_t)(unsafe.Pointer(&out[0])), (*C.uint8_t)(unsafe.Pointer(&payload[0])), C.int(len(payload)))
	return int(n), nil
}

// Reset returns the decoder to its initial state (a new stream) without
// allocating.
func (d *Decoder) Reset() {
	if d.s != nil {
		C.g722_decode_init(d.s, Bitrate, options(d.rate))
	}
}

// Close frees the decoder. Further calls return ErrClosed.
func (d *Decoder) Close() error {
	if d.s != nil {
		C.g722_decode_free(d.s)
		d.s = nil
	}
	return nil
}

// Encoder encodes PCM into G.722. It is not safe for concurrent use.
type Encoder struct {
	s    *C.g722_encode_state_t
	rate int
}

// NewEncoder returns an encoder whose input is at rate, 8000 or 16000 Hz;
// Close it when done.
func NewEncoder(rate int) (*Encoder, error) {
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	s := C.g722_encode_init(nil, Bitrate, options(rate))
	if s == nil {
		return nil, fmt.Errorf("g722: spandsp could not create an encoder at %d Hz", rate)
	}
	return &Encoder{s: s, rate: rate}, nil
}

// Encode encodes pcm into out and returns the number of bytes written: one
// per sample at 8000 Hz, one per two samples at 16000 Hz (len(pcm) is then
// even). It does not allocate.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if e.s == nil {
		return 0, ErrClosed
	}
	want := len(pcm) * RTPClockRate / e.rate
	if len(out) < want {
		return 0, fmt.Errorf("%w: %d bytes, need %d", ErrShortBuffer, len(out), want)
	}
	if len(pcm) == 0 {
		return 0, nil
	}
	n := C.g722_encode(e.s, (*C.uint8_t)(unsafe.Pointer(&out[0])), (*C.int16_t)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)))
	return int(n), nil
}

// Close frees the encoder. Further calls return ErrClosed.
func (e *Encoder) Close() error {
	if e.s != nil {
		C.g722_encode_free(e.s)
		e.s = nil
	}
	return nil
}
