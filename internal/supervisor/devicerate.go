package supervisor

import (
	"sync/atomic"

	"github.com/silentmon/silentmon/playout"
)

// deviceRate is the rate a portaudio output's sound card is opened at:
// every session's rate converts to it without loss of band.
const deviceRate = 48000

// openDevice opens the sound card of a portaudio output at deviceRate
// (its default rate when it refuses it; playout.PortAudioSink resamples).
func openDevice(spec string) (playout.Sink, error) {
	return playout.OpenSinkRate(spec, 1, deviceRate)
}

// inputRateSetter is a sound card that takes samples at any session rate
// and resamples them to its own (playout.PortAudioSink).
type inputRateSetter interface {
	InputRate() int
	SetInputRate(rate int) error
}

// rateDevice is such a sound card: before each write it sets the rate of
// the session playing. Writes come under the device's mutex from the
// playing session's sink, so the rate set is that of the samples written.
type rateDevice struct {
	playout.Sink
	set     inputRateSetter
	playing *atomic.Pointer[session]
	rate    int // the rate last set
}

func (r *rateDevice) Write(p []int16) error {
	if sess := r.playing.Load(); sess != nil && sess.rate != r.rate {
		if err := r.set.SetInputRate(sess.rate); err != nil {
			return err
		}
		r.rate = sess.rate
	}
	return r.Sink.Write(p)
}
