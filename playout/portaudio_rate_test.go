//go:build cgo && !noportaudio

package playout_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/playout"
)

// TestPortAudioInputRateALSAFile: a sound card opened at 48 kHz through
// PortAudio into an ALSA file device plays 16 kHz samples (a 6 kHz tone)
// and then 8 kHz samples (a 1 kHz tone) written after SetInputRate: the
// file holds the 6 kHz tone at its level, then the 1 kHz tone with no
// image above 4 kHz stronger than -80 dB (linear interpolation leaves the
// 7 kHz image about 34 dB down). A rate other than 8, 16 and 48 kHz is
// refused naming it.
//
// It runs in a child process of the test binary: the PortAudio binding
// turns its stream number into a pointer, which the race detector's
// pointer checks reject for any stream but a process's first.
func TestPortAudioInputRateALSAFile(t *testing.T) {
	if !playout.ResamplerBuiltIn {
		t.Skip("skipping: the resampler is not built in (needs cgo and libspeexdsp-dev)")
	}
	if !testutil.InChild(t) {
		return
	}
	raw := testutil.ALSAFileDevice(t)
	sink, err := playout.OpenSinkRate("portaudio", 1, 48000)
	if err != nil {
		t.Skipf("skipping: no PortAudio device through ALSA here: %v", err)
	}
	pa := sink.(*playout.PortAudioSink)
	if pa.Rate() != 48000 {
		sink.Close()
		t.Skipf("skipping: the ALSA file device opened at %d Hz, not 48 kHz", pa.Rate())
	}
	if err := pa.SetInputRate(44100); !errors.Is(err, playout.ErrSampleRate) || !strings.Contains(err.Error(), "44100") {
		t.Errorf("SetInputRate(44100) = %v, want ErrSampleRate naming 44100", err)
	}
	write := func(rate int, tone []int16) {
		t.Helper()
		if err := pa.SetInputRate(rate); err != nil {
			t.Fatal(err)
		}
		for off := 0; off < len(tone); off += rate / 50 {
			if err := sink.Write(tone[off : off+rate/50]); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(16000, testutil.Tone(6000, 8000, 16000, 2*16000))
	write(8000, testutil.Tone(1000, 8000, 8000, 2*8000))
	if s := sink.Seconds(); math.Abs(s-4) > 1e-9 {
		t.Errorf("Seconds() = %v, want 4", s)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	s := make([]int16, len(b)/2)
	for i := range s {
		s[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	if len(s) < 4*48000 {
		t.Fatalf("the device file holds %d samples, want at least %d", len(s), 4*48000)
	}
	six, one := s[48000/2:48000/2+48000], s[2*48000+48000/2:2*48000+48000/2+48000] // whole seconds
	if f := testutil.Loudest(six, 48000, 24000); f != 6000 {
		t.Errorf("first part loudest at %.0f Hz, want 6000", f)
	}
	if db := 20 * math.Log10(testutil.RMS(six)/(8000/math.Sqrt2)); math.Abs(db) > 0.5 {
		t.Errorf("6 kHz at %+.2f dB, want within 0.5 dB", db)
	}
	ref := testutil.Power(one, 1000, 48000)
	worst, at := math.Inf(-1), 0.0
	for f := 4100.0; f < 24000; f += 50 {
		if p := 10 * math.Log10(testutil.Power(one, f, 48000)/ref); p > worst {
			worst, at = p, f
		}
	}
	if f := testutil.Loudest(one, 48000, 24000); f != 1000 {
		t.Errorf("second part loudest at %.0f Hz, want 1000", f)
	}
	if worst > -80 {
		t.Errorf("1 kHz from 8 kHz: image at %.0f Hz %.1f dB below the tone, want at most -80 dB", at, worst)
	}
	t.Logf("card at 48 kHz: 1 kHz from 8 kHz, strongest image above 4 kHz %.1f dB (%.0f Hz)", worst, at)
}
