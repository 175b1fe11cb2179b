//go:build cgo

package opus

/*
#cgo LDFLAGS: -lopus
#cgo CFLAGS: -I/usr/include/opus
#include <opus.h>

static int sm_set_fec(OpusEncoder *e, int on) { return opus_encoder_ctl(e, OPUS_SET_INBAND_FEC(on)); }
static int sm_set_loss(OpusEncoder *e, int pct) { return opus_encoder_ctl(e, OPUS_SET_PACKET_LOSS_PERC(pct)); }
static int sm_set_bitrate(OpusEncoder *e, int bps) { return opus_encoder_ctl(e, OPUS_SET_BITRATE(bps)); }
static int sm_reset(OpusDecoder *d) { return opus_decoder_ctl(d, OPUS_RESET_STATE); }
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Available reports whether Opus is built in.
func Available() bool { return true }

// Version returns libopus's version string.
func Version() string { return C.GoString(C.opus_get_version_string()) }

func opusErr(code C.int) error {
	return fmt.Errorf("%w: %s", ErrPacket, C.GoString(C.opus_strerror(code)))
}

// libopusPacketSamples is libopus's count of the samples packet decodes
// to at rate, or a negative libopus error; the fuzz test holds
// PacketSamples to it.
func libopusPacketSamples(packet []byte, rate int) int {
	if len(packet) == 0 {
		return -1
	}
	return int(C.opus_packet_get_nb_samples((*C.uchar)(unsafe.Pointer(&packet[0])), C.opus_int32(len(packet)), C.opus_int32(rate)))
}

// Decoder decodes mono Opus at a fixed output rate. It is not safe for
// concurrent use.
type Decoder struct {
	d    *C.OpusDecoder
	rate int
}

// NewDecoder returns a mono decoder whose output is at rate (8000, 12000,
// 16000, 24000 or 48000 Hz); stereo packets are mixed down by libopus.
// Close it when done.
func NewDecoder(rate int) (*Decoder, error) {
	if err := checkRate(rate); err != nil {
		return nil, err
	}
	var e C.int
	d := C.opus_decoder_create(C.opus_int32(rate), 1, &e)
	if e != C.OPUS_OK || d == nil {
		return nil, fmt.Errorf("opus: libopus could not create a decoder at %d Hz: %s", rate, C.GoString(C.opus_strerror(e)))
	}
	return &Decoder{d: d, rate: rate}, nil
}

// Rate returns the output sample rate.
func (d *Decoder) Rate() int { return d.rate }

func (d *Decoder) decode(packet []byte, out []int16, fec bool) (int, error) {
	if d.d == nil {
		return 0, ErrClosed
	}
	if len(out) == 0 {
		return 0, fmt.Errorf("%w: 0 samples", ErrShortBuffer)
	}
	var p *C.uchar
	if len(packet) > 0 {
		p = (*C.uchar)(unsafe.Pointer(&packet[0]))
	}
	var f C.int
	if fec {
		f = 1
	}
	n := C.opus_decode(d.d, p, C.opus_int32(len(packet)), (*C.opus_int16)(unsafe.Pointer(&out[0])), C.int(len(out)), f)
	if n < 0 {
		if n == C.OPUS_BUFFER_TOO_SMALL {
			return 0, fmt.Errorf("%w: %d samples", ErrShortBuffer, len(out))
		}
		return 0, opusErr(n)
	}
	return int(n), nil
}

// Decode decodes packet into out and returns the samples written
// (PacketSamples of the packet). out must hold them. It does not
// allocate.
func (d *Decoder) Decode(packet []byte, out []int16) (int, error) {
	if len(packet) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrPacket)
	}
	return d.decode(packet, out, false)
}

// Conceal fills out with libopus's loss concealment for a lost packet of
// len(out) samples, which must be a multiple of 2.5 ms at the decoder's
// rate. It returns the samples written.
func (d *Decoder) Conceal(out []int16) (int, error) { return d.decode(nil, out, false) }

// DecodeFEC reconstructs the packet lost just before next from the
// forward error correction data next carries (in-band FEC, when the
// sender enabled it), for len(out) samples: the lost packet's duration.
// Without FEC data in next, libopus conceals as Conceal does. Decode next
// itself afterwards.
func (d *Decoder) DecodeFEC(next []byte, out []int16) (int, error) {
	if len(next) == 0 {
		return 0, fmt.Errorf("%w: empty", ErrPacket)
	}
	return d.decode(next, out, true)
}

// Reset returns the decoder to its initial state (a new stream) without
// allocating.
func (d *Decoder) Reset() {
	if d.d != nil {
		C.sm_reset(d.d)
	}
}

// Close frees the decoder. Further calls return ErrClosed.
func (d *Decoder) Close() error {
	if d.d != nil {
		C.opus_decoder_destroy(d.d)
		d.d = nil
	}
	return nil
}

// Encoder encodes mono PCM into Opus (application VoIP). It is not safe
// for concurrent use.
type Encoder struct {
	e    *C.OpusEncoder
	rate int
}

// EncoderConfig sets an Encoder up. The zero value is 48000 Hz input,
// 32 kbit/s, no FEC.
type EncoderConfig struct {
	Rate        int  // input rate, as for NewDecoder; 0 means 48000
	Bitrate     int  // bit/s; 0 means 32000
	FEC         bool // in-band forward error correction
	LossPercent int  // expected loss, which FEC needs to be sent (0 to 100)
}

// NewEncoder returns an encoder; Close it when done.
func NewEncoder(cfg EncoderConfig) (*Encoder, error) {
	if cfg.Rate == 0 {
		cfg.Rate = 48000
	}
	if cfg.Bitrate == 0 {
		cfg.Bitrate = 32000
	}
	if err := checkRate(cfg.Rate); err != nil {
		return nil, err
	}
	var e C.int
	enc := C.opus_encoder_create(C.opus_int32(cfg.Rate), 1, C.OPUS_APPLICATION_VOIP, &e)
	if e != C.OPUS_OK || enc == nil {
		return nil, fmt.Errorf("opus: libopus could not create an encoder at %d Hz: %s", cfg.Rate, C.GoString(C.opus_strerror(e)))
	}
	fec := 0
	if cfg.FEC {
		fec = 1
	}
	if C.sm_set_bitrate(enc, C.int(cfg.Bitrate)) != C.OPUS_OK || C.sm_set_fec(enc, C.int(fec)) != C.OPUS_OK ||
		C.sm_set_loss(enc, C.int(cfg.LossPercent)) != C.OPUS_OK {
		C.opus_encoder_destroy(enc)
		return nil, fmt.Errorf("opus: libopus refused bit rate %d or loss %d%%", cfg.Bitrate, cfg.LossPercent)
	}
	return &Encoder{e: enc, rate: cfg.Rate}, nil
}

// Encode encodes one frame of pcm (2.5, 5, 10, 20, 40 or 60 ms at the
// encoder's rate) into out and returns the packet's length. 1275 bytes
// always suffice. It does not allocate.
func (e *Encoder) Encode(pcm []int16, out []byte) (int, error) {
	if e.e == nil {
		return 0, ErrClosed
	}
	if len(pcm) == 0 || len(out) == 0 {
		return 0, fmt.Errorf("%w: %d samples into %d bytes", ErrShortBuffer, len(pcm), len(out))
	}
	n := C.opus_encode(e.e, (*C.opus_int16)(unsafe.Pointer(&pcm[0])), C.int(len(pcm)), (*C.uchar)(unsafe.Pointer(&out[0])), C.opus_int32(len(out)))
	if n < 0 {
		return 0, fmt.Errorf("opus: encoding %d samples at %d Hz: %s", len(pcm), e.rate, C.GoString(C.opus_strerror(n)))
	}
	return int(n), nil
}

// Close frees the encoder. Further calls return ErrClosed.
func (e *Encoder) Close() error {
	if e.e != nil {
		C.opus_encoder_destroy(e.e)
		e.e = nil
	}
	return nil
}
