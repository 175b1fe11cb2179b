//go:build cgo && !noportaudio

package playout

import (
	"fmt"
	"strings"

	"github.com/gordonklaus/portaudio"
	"github.com/silentmon/silentmon/internal/resample"
)

// PortAudioBuiltIn says whether this binary can play on a sound card.
const PortAudioBuiltIn = true

// PortAudioSink plays on a sound card through PortAudio's blocking API.
// It opens the device at the rate it is given (8, 16 or 48 kHz) when the
// device takes that rate (no resampling: what is written is exactly what
// the mixer produced), otherwise at the device's default rate, with
// libspeexdsp's resampler (internal/resample) between the two. The rate
// written may change between two writes (SetInputRate): a device opened
// once at 48 kHz plays sessions of 8, 16 and 48 kHz. It is not safe for
// concurrent use.
type PortAudioSink struct {
	st      *portaudio.Stream
	ch      int
	in      int // the rate written to the sink
	rate    int
	rs      *resample.Resampler // nil while in == rate
	buf     []int16             // the stream's buffer: resliced before each Write
	seconds float64             // of audio written, at the rates it was written at
	closed  bool
}

var _ RealtimeSink = (*PortAudioSink)(nil)

// Realtime reports true: a sound card plays at its own pace.
func (s *PortAudioSink) Realtime() bool { return true }

func openPortAudio(name string, channels, rate int) (Sink, error) {
	spec := "portaudio"
	if name != "" {
		spec += ":" + name
	}
	quietSoundLibraries()
	// A named device too: PortAudio cannot list devices without
	// aborting when ALSA defines none.
	if ok, why := alsaCanPlay(); !ok {
		return nil, noDevice(spec, "no sound card, and ALSA's default device does not open: %s", strings.ToLower(why))
	}
	if err := portaudio.Initialize(); err != nil {
		return nil, noDevice(spec, "PortAudio: %v", err)
	}
	s, err := openPortAudioDevice(spec, name, channels, rate)
	if err != nil {
		portaudio.Terminate()
		return nil, err
	}
	soundLibraryLines() // opened: what was said on the way is of no use
	return s, nil
}

// noDevice returns an error wrapping ErrNoSoundDevice with the reason and
// the sound libraries' lines since the last call.
func noDevice(spec, format string, args ...any) error {
	return &deviceError{err: fmt.Errorf("%w for output %q (%s)", ErrNoSoundDevice, spec, fmt.Sprintf(format, args...)),
		lines: soundLibraryLines()}
}

func openPortAudioDevice(spec, name string, channels, in int) (*PortAudioSink, error) {
	var dev *portaudio.DeviceInfo
	if name == "" {
		d, err := portaudio.DefaultOutputDevice()
		if err != nil {
			if devs, derr := portaudio.Devices(); derr == nil && !hasOutput(devs) {
				return nil, noDevice(spec, "PortAudio found no output device: no sound card, or none it can use")
			}
			return nil, noDevice(spec, "%v", err)
		}
		dev = d
	} else {
		devs, err := portaudio.Devices()
		if err != nil {
			return nil, noDevice(spec, "listing the devices: %v", err)
		}
		var names []string
		for _, d := range devs {
			if d.MaxOutputChannels < 1 {
				continue
			}
			names = append(names, fmt.Sprintf("%q", d.Name))
			if d.Name == name {
				dev = d
				break
			}
		}
		if dev == nil {
			return nil, fmt.Errorf("output %q: no output device named %q (devices: %s): %w",
				spec, name, strings.Join(names, ", "), ErrBadSinkSpec)
		}
	}
	if dev.MaxOutputChannels < channels {
		return nil, fmt.Errorf("output %q: device %q has %d output channels, need %d: %w",
			spec, dev.Name, dev.MaxOutputChannels, channels, ErrBadSinkSpec)
	}
	s := &PortAudioSink{ch: channels, in: in, buf: make([]int16, 0, 6*1024*channels+64)}
	p := portaudio.StreamParameters{
		Output:          portaudio.StreamDeviceParameters{Device: dev, Channels: channels, Latency: dev.DefaultHighOutputLatency},
		SampleRate:      float64(in),
		FramesPerBuffer: portaudio.FramesPerBufferUnspecified,
	}
	if portaudio.IsFormatSupported(p, &s.buf) != nil {
		p.SampleRate = dev.DefaultSampleRate
	}
	s.rate = int(p.SampleRate)
	if s.rate <= 0 {
		return nil, fmt.Errorf("output %q: device %q reports sample rate %v", spec, dev.Name, p.SampleRate)
	}
	if err := s.SetInputRate(in); err != nil {
		return nil, fmt.Errorf("output %q: %w", spec, err)
	}
	st, err := portaudio.OpenStream(p, &s.buf)
	if err != nil {
		return nil, noDevice(spec, "opening device %q at %d Hz: %v", dev.Name, s.rate, err)
	}
	if err := st.Start(); err != nil {
		st.Close()
		return nil, noDevice(spec, "starting device %q: %v", dev.Name, err)
	}
	s.st = st
	return s, nil
}

// hasOutput reports whether one of devs can play.
func hasOutput(devs []*portaudio.DeviceInfo) bool {
	for _, d := range devs {
		if d.MaxOutputChannels > 0 {
			return true
		}
	}
	return false
}

// Rate returns the device's sample rate.
func (s *PortAudioSink) Rate() int { return s.rate }

// InputRate returns the rate the sink takes samples at.
func (s *PortAudioSink) InputRate() int { return s.in }

// SetInputRate sets the rate of the samples written from now on (8000,
// 16000 or 48000 Hz); the device keeps its rate and the resampler
// converts. An error names the rate and wraps ErrSampleRate, or says the
// resampler is not built in.
func (s *PortAudioSink) SetInputRate(rate int) error {
	if rate != 8000 && rate != 16000 && rate != 48000 {
		return fmt.Errorf("sample rate %d is not 8000, 16000 or 48000: %w", rate, ErrSampleRate)
	}
	if rate == s.rate || rate == s.in && s.rs != nil {
		s.in = rate
		return nil
	}
	if s.rs == nil {
		rs, err := resample.New(rate, s.rate, s.ch)
		if err != nil {
			return fmt.Errorf("playing %d Hz on a device at %d Hz: %w", rate, s.rate, err)
		}
		s.rs = rs
	} else if err := s.rs.SetRates(rate, s.rate); err != nil {
		return fmt.Errorf("playing %d Hz on a device at %d Hz: %w", rate, s.rate, err)
	}
	s.in = rate
	return nil
}

func (s *PortAudioSink) Write(p []int16) error {
	if s.closed {
		return ErrClosed
	}
	s.seconds += float64(len(p)/s.ch) / float64(s.in)
	for len(p) > 0 {
		// at most 1024 input frames per device write
		n := min(len(p), 1024*s.ch)
		if s.rate == s.in {
			s.buf = append(s.buf[:0], p[:n]...)
		} else {
			s.buf = s.rs.Process(s.buf[:0], p[:n])
		}
		p = p[n:]
		if len(s.buf) == 0 {
			continue
		}
		if err := s.st.Write(); err != nil {
			return fmt.Errorf("play: %w", err)
		}
	}
	return nil
}

func (s *PortAudioSink) Channels() int    { return s.ch }
func (s *PortAudioSink) Seconds() float64 { return s.seconds }

// Close waits for the device to play what it holds, then releases it.
func (s *PortAudioSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.st.Stop()
	if cerr := s.st.Close(); err == nil {
		err = cerr
	}
	if terr := portaudio.Terminate(); err == nil {
		err = terr
	}
	if s.rs != nil {
		s.rs.Close()
	}
	return err
}
