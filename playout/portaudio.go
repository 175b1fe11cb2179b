//go:build cgo && !noportaudio

package playout

import (
	"fmt"
	"strings"

	"github.com/gordonklaus/portaudio"
)

// PortAudioBuiltIn says whether this binary can play on a sound card.
const PortAudioBuiltIn = true

// PortAudioSink plays on a sound card through PortAudio's blocking API.
// It opens the device at 8 kHz when the device takes that rate (no
// resampling: what is written is exactly what the mixer produced),
// otherwise at the device's default rate with linear-interpolation
// resampling from 8 kHz. It is not safe for concurrent use.
type PortAudioSink struct {
	st     *portaudio.Stream
	ch     int
	rate   int
	rs     resampler
	buf    []int16 // the stream's buffer: resliced before each Write
	frames int64
	closed bool
}

var _ RealtimeSink = (*PortAudioSink)(nil)

// Realtime reports true: a sound card plays at its own pace.
func (s *PortAudioSink) Realtime() bool { return true }

func openPortAudio(name string, channels int) (Sink, error) {
	spec := "portaudio"
	if name != "" {
		spec += ":" + name
	}
	if err := portaudio.Initialize(); err != nil {
		return nil, fmt.Errorf("output %q: PortAudio: %w", spec, err)
	}
	s, err := openPortAudioDevice(spec, name, channels)
	if err != nil {
		portaudio.Terminate()
		return nil, err
	}
	return s, nil
}

func openPortAudioDevice(spec, name string, channels int) (*PortAudioSink, error) {
	var dev *portaudio.DeviceInfo
	if name == "" {
		d, err := portaudio.DefaultOutputDevice()
		if err != nil {
			return nil, fmt.Errorf("output %q: no default output device: %w", spec, err)
		}
		dev = d
	} else {
		devs, err := portaudio.Devices()
		if err != nil {
			return nil, fmt.Errorf("output %q: list devices: %w", spec, err)
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
	s := &PortAudioSink{ch: channels, buf: make([]int16, 0, 8192)}
	p := portaudio.StreamParameters{
		Output:          portaudio.StreamDeviceParameters{Device: dev, Channels: channels, Latency: dev.DefaultHighOutputLatency},
		SampleRate:      SampleRate,
		FramesPerBuffer: portaudio.FramesPerBufferUnspecified,
	}
	if portaudio.IsFormatSupported(p, &s.buf) != nil {
		p.SampleRate = dev.DefaultSampleRate
	}
	s.rate = int(p.SampleRate)
	if s.rate <= 0 {
		return nil, fmt.Errorf("output %q: device %q reports sample rate %v", spec, dev.Name, p.SampleRate)
	}
	s.rs = resampler{in: SampleRate, out: s.rate, ch: channels}
	st, err := portaudio.OpenStream(p, &s.buf)
	if err != nil {
		return nil, fmt.Errorf("output %q: open device %q at %d Hz: %w", spec, dev.Name, s.rate, err)
	}
	if err := st.Start(); err != nil {
		st.Close()
		return nil, fmt.Errorf("output %q: start device %q: %w", spec, dev.Name, err)
	}
	s.st = st
	return s, nil
}

// Rate returns the device's sample rate.
func (s *PortAudioSink) Rate() int { return s.rate }

func (s *PortAudioSink) Write(p []int16) error {
	if s.closed {
		return ErrClosed
	}
	s.frames += int64(len(p) / s.ch)
	for len(p) > 0 {
		// at most 1024 input frames per device write
		n := min(len(p), 1024*s.ch)
		if s.rate == SampleRate {
			s.buf = append(s.buf[:0], p[:n]...)
		} else {
			s.buf = s.rs.process(s.buf[:0], p[:n])
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
func (s *PortAudioSink) Seconds() float64 { return float64(s.frames) / SampleRate }

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
	return err
}
