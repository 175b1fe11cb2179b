//go:build cgo

package g729

/*
#cgo LDFLAGS: -lbcg729
#include <stdint.h>
#include <bcg729/decoder.h>
#include <bcg729/encoder.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Available reports whether G.729 is built in.
func Available() bool { return true }

// Decoder decodes G.729 frames. It is not safe for concurrent use.
type Decoder struct {
	ctx  *C.bcg729DecoderChannelContextStruct
	zero [FrameBytes]C.uint8_t
}

// NewDecoder returns a decoder; Close it when done.
func NewDecoder() (*Decoder, error) {
	ctx := C.initBcg729DecoderChannel()
	if ctx == nil {
		return nil, fmt.Errorf("g729: bcg729 could not create a decoder")
	}
	return &Decoder{ctx: ctx}, nil
}

// Decode decodes one frame into out[:80]. frame is 10 bytes (speech) or 2
// bytes (SID, comfort noise). When erased is true, frame is ignored and
// the decoder conceals a lost frame from its state. It does not allocate.
func (d *Decoder) Decode(frame []byte, erased bool, out []int16) error {
	if d.ctx == nil {
		return ErrClosed
	}
	if len(out) < FrameSamples {
		return fmt.Errorf("%w: %d samples, need %d", ErrShortBuffer, len(out), FrameSamples)
	}
	var sid C.uint8_t
	bits := &d.zero[0]
	n := FrameBytes
	if !erased {
		switch len(frame) {
		case FrameBytes:
		case SIDBytes:
			sid = 1
		default:
			return fmt.Errorf("%w: %d bytes", ErrFrameSize, len(frame))
		}
		bits = (*C.uint8_t)(unsafe.Pointer(&frame[0]))
		n = len(frame)
	}
	var flag C.uint8_t
	if erased {
		flag = 1
	}
	C.bcg729Decoder(d.ctx, bits, C.uint8_t(n), flag, sid, 0, (*C.int16_t)(unsafe.Pointer(&out[0])))
	return nil
}

// DecodePayload decodes an RTP payload of zero or more 10-byte frames and
// an optional trailing 2-byte SID frame into out, and returns the number of
// samples written (80 per frame). It does not allocate.
func (d *Decoder) DecodePayload(payload []byte, out []int16) (int, error) {
	frames, sid, err := payloadFrames(len(payload))
	if err != nil {
		return 0, fmt.Errorf("%w: payload of %d bytes", err, len(payload))
	}
	total := frames
	if sid {
		total++
	}
	if len(out) < total*FrameSamples {
		return 0, fmt.Errorf("%w: %d samples, need %d", ErrShortBuffer, len(out), total*FrameSamples)
	}
	for i := 0; i < total; i++ {
		f := payload[i*FrameBytes:]
		if i == frames {
			f = f[:SIDBytes]
		} else {
			f = f[:FrameBytes]
		}
		if err := d.Decode(f, false, out[i*FrameSamples:]); err != nil {
			return i * FrameSamples, err
		}
	}
	return total * FrameSamples, nil
}

// Close frees the decoder. Further calls return ErrClosed.
func (d *Decoder) Close() error {
	if d.ctx != nil {
		C.closeBcg729DecoderChannel(d.ctx)
		d.ctx = nil
	}
	return nil
}

// Encoder encodes 10 ms PCM frames into G.729. It is not safe for
// concurrent use.
type Encoder struct {
	ctx *C.bcg729EncoderChannelContextStruct
	n   C.uint8_t // output length, kept here so Encode does not allocate
}

// NewEncoder returns an encoder; vad enables annex B voice activity
// detection and discontinuous transmission (SID frames and silence). Close
// it when done.
func NewEncoder(vad bool) (*Encoder, error) {
	var v C.uint8_t
	if vad {
		v = 1
	}
	ctx := C.initBcg729EncoderChannel(v)
	if ctx == nil {
		return nil, fmt.Errorf("g729: bcg729 could not create an encoder")
	}
	return &Encoder{ctx: ctx}, nil
}

// Encode encodes pcm[:80] into out and returns the number of bytes written:
// 10 for speech, and with VAD 2 for a SID frame or 0 when nothing is to be
// sent. out must hold 10 bytes. It does not allocate.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if e.ctx == nil {
		return 0, ErrClosed
	}
	if len(pcm) < FrameSamples {
		return 0, fmt.Errorf("%w: %d samples, need %d", ErrFrameSize, len(pcm), FrameSamples)
	}
	if len(out) < FrameBytes {
		return 0, fmt.Errorf("%w: %d bytes, need %d", ErrShortBuffer, len(out), FrameBytes)
	}
	e.n = 0
	C.bcg729Encoder(e.ctx, (*C.int16_t)(unsafe.Pointer(&pcm[0])), (*C.uint8_t)(unsafe.Pointer(&out[0])), &e.n)
	return int(e.n), nil
}

// Close frees the encoder. Further calls return ErrClosed.
func (e *Encoder) Close() error {
	if e.ctx != nil {
		C.closeBcg729EncoderChannel(e.ctx)
		e.ctx = nil
	}
	return nil
}
