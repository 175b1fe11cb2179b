package playout

import "errors"

// ErrNoSoundDevice: a portaudio output could not open a sound device (no
// sound card, no default device, or the device refused the stream). The
// error that wraps it gives PortAudio's reason; callers suggest another
// output (a WAV file, null).
var ErrNoSoundDevice = errors.New("no sound device could be opened")

// SoundLibraryMessages returns the lines the sound libraries (ALSA, JACK)
// wrote while a portaudio output was being opened, which are kept out of
// the terminal: err is the error of OpenSink. None when err does not come
// from a portaudio output. Programs log them at debug level.
func SoundLibraryMessages(err error) []string {
	var de *deviceError
	if errors.As(err, &de) {
		return de.lines
	}
	return nil
}

// deviceError is a portaudio output that did not open: its message, the
// sentinel it matches, and the sound libraries' lines.
type deviceError struct {
	err   error
	lines []string
}

func (e *deviceError) Error() string { return e.err.Error() }
func (e *deviceError) Unwrap() error { return e.err }
