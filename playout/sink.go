package playout

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
)

// SampleRate is the narrowband rate, 8000 Hz: the unit of playout's
// timing (RTP's 8 kHz clock) and the output rate of a session of G.711 or
// G.729 (Config.SampleRate; RateFor).
const SampleRate = 8000

// Sink receives the mixed 16-bit samples of a Player: interleaved frames of
// Channels() samples at the Player's Config.SampleRate (8000 unless set). A Sink is used by one goroutine at a
// time (a Player writes from its own goroutine); it is not safe for
// concurrent use.
type Sink interface {
	// Write plays or stores samples. len(samples) is a multiple of
	// Channels(). The sink does not keep samples after it returns.
	Write(samples []int16) error
	// Channels returns 1 (mono mix) or 2 (agent left, customer right).
	Channels() int
	// Seconds returns the duration of the audio written so far.
	Seconds() float64
	// Close flushes and releases the sink. It is safe to call twice.
	Close() error
}

// RealtimeSink is implemented by sinks that play at the pace of a device.
// A Player writes silence to a real-time sink whenever nothing plays;
// to other sinks (files) it writes no leading or trailing silence and
// writes a pause between two talkspurts only once sound follows it.
type RealtimeSink interface {
	Sink
	Realtime() bool
}

func isRealtime(s Sink) bool {
	r, ok := s.(RealtimeSink)
	return ok && r.Realtime()
}

// OpenSink opens a mono sink from its spec:
//
//	wav:PATH               16-bit PCM WAV file (8 kHz; OpenSinkRate: any of 8, 16, 48 kHz)
//	null                   discard (counts seconds)
//	portaudio              the default output device
//	portaudio:DEVICE NAME  the output device with that name
//
// A spec it does not know is an error wrapping ErrBadSinkSpec that names
// the spec.
func OpenSink(spec string) (Sink, error) { return OpenSinkChannels(spec, 1) }

// OpenSinkChannels is OpenSink with 1 (mono) or 2 (stereo) channels.
func OpenSinkChannels(spec string, channels int) (Sink, error) {
	return OpenSinkRate(spec, channels, SampleRate)
}

// OpenSinkRate is OpenSinkChannels for samples at rate (8000, 16000 or
// 48000: a Renderer's Config.SampleRate): a WAV file records it, a sound
// card is opened at it when it takes it, else at its default rate with
// libspeexdsp's resampler between the two (PortAudioSink).
func OpenSinkRate(spec string, channels, rate int) (Sink, error) {
	if rate != 8000 && rate != 16000 && rate != 48000 {
		return nil, fmt.Errorf("output %q: sample rate %d is not 8000, 16000 or 48000: %w", spec, rate, ErrSampleRate)
	}
	if channels != 1 && channels != 2 {
		return nil, fmt.Errorf("output %q: %d channels, want 1 or 2: %w", spec, channels, ErrBadSinkSpec)
	}
	kind, arg, hasArg := strings.Cut(spec, ":")
	switch {
	case kind == "wav":
		if !hasArg || arg == "" {
			return nil, fmt.Errorf("output %q needs a file name, as in wav:/tmp/out.wav: %w", spec, ErrBadSinkSpec)
		}
		return CreateWAVRate(arg, channels, rate)
	case kind == "null" && !hasArg:
		return NewNullSinkRate(channels, rate), nil
	case kind == "portaudio":
		return openPortAudio(arg, channels, rate)
	}
	return nil, fmt.Errorf("output %q is not portaudio, portaudio:DEVICE, wav:PATH or null: %w", spec, ErrBadSinkSpec)
}

// NullSink discards samples and counts them. It is not safe for concurrent
// use.
type NullSink struct {
	ch     int
	rate   int
	frames int64
}

// NewNullSink returns a NullSink with 1 or 2 channels at 8 kHz.
func NewNullSink(channels int) *NullSink { return &NullSink{ch: channels, rate: SampleRate} }

// NewNullSinkRate returns a NullSink with 1 or 2 channels at rate, which
// Seconds counts in.
func NewNullSinkRate(channels, rate int) *NullSink {
	return &NullSink{ch: channels, rate: max(rate, 1)}
}

func (s *NullSink) Write(p []int16) error { s.frames += int64(len(p) / s.ch); return nil }
func (s *NullSink) Channels() int         { return s.ch }
func (s *NullSink) Seconds() float64      { return float64(s.frames) / float64(s.rate) }
func (s *NullSink) Close() error          { return nil }

// WAVSink writes a 16-bit PCM WAV file at 8 kHz (CreateWAVRate and
// NewWAVSinkRate: 16 or 48 kHz too). The header is written
// first and its sizes are brought up to date every second of audio and at
// Close, so a killed process still leaves a readable file. It is not safe
// for concurrent use.
type WAVSink struct {
	f        *os.File
	w        *bufio.Writer
	ch       int
	rate     int
	frames   int64
	sinceHdr int64
	buf      []byte
	err      error
	closed   bool
}

const wavHeaderLen = 44

// CreateWAV creates the WAV file at path, readable by its owner only
// (call audio, mode 0600). It never truncates and never writes through a
// symbolic link (O_CREATE|O_EXCL|O_NOFOLLOW): an existing file, or a link
// in its place even to nothing, is an error wrapping fs.ErrExist, and
// for a link the message says so. A link among the directories of path
// is followed: the directory is the operator's choice.
func CreateWAV(path string, channels int) (*WAVSink, error) {
	return CreateWAVRate(path, channels, SampleRate)
}

// CreateWAVRate is CreateWAV for samples at rate (8000, 16000 or 48000).
func CreateWAVRate(path string, channels, rate int) (*WAVSink, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		if fi, lerr := os.Lstat(path); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return nil, fmt.Errorf("output %q: %s is a symbolic link; refusing to write through it: %w", "wav:"+path, path, fs.ErrExist)
		}
		return nil, fmt.Errorf("output %q: %w", "wav:"+path, err)
	}
	s, err := NewWAVSinkRate(f, channels, rate)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("output %q: %w", "wav:"+path, err)
	}
	return s, nil
}

// NewWAVSink writes a WAV to f from its current position, which must be
// its start: the caller chose the name and the permissions. The sink owns
// f from now on (Close closes it).
func NewWAVSink(f *os.File, channels int) (*WAVSink, error) {
	return NewWAVSinkRate(f, channels, SampleRate)
}

// NewWAVSinkRate is NewWAVSink for samples at rate (8000, 16000 or 48000:
// a Renderer's Config.SampleRate), which the header records.
func NewWAVSinkRate(f *os.File, channels, rate int) (*WAVSink, error) {
	if channels != 2 {
		channels = 1
	}
	if rate != 8000 && rate != 16000 && rate != 48000 {
		return nil, fmt.Errorf("WAV sample rate %d is not 8000, 16000 or 48000: %w", rate, ErrSampleRate)
	}
	if _, err := f.Write(wavHeader(channels, rate, 0)); err != nil {
		return nil, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return &WAVSink{f: f, w: bufio.NewWriterSize(f, 16<<10), ch: channels, rate: rate, buf: make([]byte, 0, 4096)}, nil
}

// Rate returns the sample rate the file records.
func (s *WAVSink) Rate() int { return s.rate }

func wavHeader(channels, rate int, dataBytes uint32) []byte {
	h := make([]byte, wavHeaderLen)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+dataBytes)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1) // PCM
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*2))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels)*2)
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataBytes)
	return h
}

func (s *WAVSink) Write(p []int16) error {
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	for len(p) > 0 {
		n := min(len(p), cap(s.buf)/2)
		b := s.buf[:2*n]
		for i, v := range p[:n] {
			binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
		}
		if _, err := s.w.Write(b); err != nil {
			s.err = fmt.Errorf("write %s: %w", s.f.Name(), err)
			return s.err
		}
		p = p[n:]
		s.frames += int64(n / s.ch)
		s.sinceHdr += int64(n / s.ch)
	}
	if s.sinceHdr >= int64(s.rate) {
		s.sinceHdr = 0
		return s.sync()
	}
	return nil
}

// sync flushes the buffered samples and rewrites the header's sizes.
func (s *WAVSink) sync() error {
	if err := s.w.Flush(); err != nil {
		s.err = fmt.Errorf("write %s: %w", s.f.Name(), err)
		return s.err
	}
	if _, err := s.f.WriteAt(wavHeader(s.ch, s.rate, uint32(s.frames)*uint32(s.ch)*2), 0); err != nil {
		s.err = fmt.Errorf("write %s: %w", s.f.Name(), err)
		return s.err
	}
	return nil
}

func (s *WAVSink) Channels() int    { return s.ch }
func (s *WAVSink) Seconds() float64 { return float64(s.frames) / float64(s.rate) }

// Close writes the final header and closes the file.
func (s *WAVSink) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.sync()
	if cerr := s.f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}
