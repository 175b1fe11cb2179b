//go:build cgo

package opus

/*
#cgo LDFLAGS: -lopus
#cgo CFLAGS: -I/usr/include/opus
#include <opus.h>

static int sm_get_dtx(OpusEncoder *e, opus_int32 *v) { return opus_encoder_ctl(e, OPUS_GET_DTX(v)); }
static int sm_get_fec(OpusEncoder *e, opus_int32 *v) { return opus_encoder_ctl(e, OPUS_GET_INBAND_FEC(v)); }
static int sm_get_bitrate(OpusEncoder *e, opus_int32 *v) { return opus_encoder_ctl(e, OPUS_GET_BITRATE(v)); }
*/
import "C"

// EncoderSettings are an Encoder's settings as libopus reports them.
type EncoderSettings struct {
	Rate    int  // input rate in Hz
	Bitrate int  // bit/s
	FEC     bool // in-band forward error correction
	DTX     bool // discontinuous transmission (packets skipped in silence)
}

// Settings returns the encoder's settings as libopus holds them, or an
// error wrapping ErrClosed after Close.
func (e *Encoder) Settings() (EncoderSettings, error) {
	if e.e == nil {
		return EncoderSettings{}, ErrClosed
	}
	var dtx, fec, br C.opus_int32
	C.sm_get_dtx(e.e, &dtx)
	C.sm_get_fec(e.e, &fec)
	C.sm_get_bitrate(e.e, &br)
	return EncoderSettings{Rate: e.rate, Bitrate: int(br), FEC: fec != 0, DTX: dtx != 0}, nil
}
