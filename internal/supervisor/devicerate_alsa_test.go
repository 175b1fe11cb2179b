//go:build cgo && !noportaudio

package supervisor

import (
	"encoding/binary"
	"math"
	"os"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/playout"
)

// TestPortAudioWidebandALSAFile: through the real device path (the
// default OpenDevice: PortAudio at 48 kHz) into an ALSA file device, a
// G.722 session's 6 kHz tone (which an 8 kHz chain removes) is heard at
// 6 kHz at its level, then a G.711 session's 1 kHz tone at 1 kHz with no
// image above 4 kHz stronger than -60 dB.
//
// It runs in a child process of the test binary: the PortAudio binding
// turns its stream number into a pointer, which the race detector's
// pointer checks reject for any stream but a process's first.
func TestPortAudioWidebandALSAFile(t *testing.T) {
	if !playout.G722BuiltIn || !playout.ResamplerBuiltIn {
		t.Skip("skipping: G.722 or the resampler is not built in")
	}
	if !testutil.InChild(t) {
		return
	}
	raw := testutil.ALSAFileDevice(t)
	var card playout.Sink
	r := newRig(t, Config{Output: "portaudio", OpenDevice: func(spec string) (playout.Sink, error) {
		sink, err := openDevice(spec) // the default
		if err != nil {
			t.Skipf("skipping: no PortAudio device through ALSA here: %v", err)
		}
		card = sink
		return sink, nil
	}})
	if rate := card.(interface{ Rate() int }).Rate(); rate != deviceRate {
		t.Skipf("skipping: the ALSA file device opened at %d Hz, not %d", rate, deviceRate)
	}
	w := newG722Call(t, "wide", 6000, 5)
	for range 50 {
		f := frame(t, w.id, w.call, w.packet(t))
		if err := r.sup.Media(r.peer, &f); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(20 * time.Millisecond)
	}
	r.play(50, newCall("narrow", 1000, 6))
	r.settle()
	if err := r.sup.Close(); err != nil {
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
	// 0.1 s windows (whole periods of both tones), each labelled by its
	// loudest tone.
	const win = deviceRate / 10
	var kinds []float64
	for off := 0; off+win <= len(s); off += win {
		w := s[off : off+win]
		p1, p6 := testutil.Power(w, 1000, deviceRate), testutil.Power(w, 6000, deviceRate)
		switch {
		case testutil.RMS(w) < 100:
			kinds = append(kinds, 0)
		case p6 > 1e4*p1:
			kinds = append(kinds, 6000)
		case p1 > 1e4*p6:
			kinds = append(kinds, 1000)
		default:
			kinds = append(kinds, -1) // both: the hand-over
		}
	}
	var six, one int
	for i, k := range kinds {
		w := s[i*win : (i+1)*win]
		inside := i > 0 && i+1 < len(kinds) && kinds[i-1] == k && kinds[i+1] == k
		switch {
		case k == 6000:
			if one > 0 {
				t.Fatalf("window %d holds 6 kHz after the G.711 session played: %v", i, kinds)
			}
			six++
			if l := testutil.RMS(w); inside && (l < 5000 || l > 6300) {
				t.Errorf("window %d: 6 kHz at RMS %.0f, want about %.0f", i, l, 8000/math.Sqrt2)
			}
		case k == 1000:
			one++
			if !inside {
				continue
			}
			ref := testutil.Power(w, 1000, deviceRate)
			for f := 4100.0; f < deviceRate/2; f += 100 {
				if img := 10 * math.Log10(testutil.Power(w, f, deviceRate)/ref); img > -60 {
					t.Fatalf("window %d: %.0f Hz at %.1f dB below the 1 kHz tone, want at most -60 dB", i, f, img)
				}
			}
		}
	}
	if six < 5 || one < 5 {
		t.Fatalf("the device file holds %d windows of 6 kHz and %d of 1 kHz, want at least 5 of each: %v", six, one, kinds)
	}
	t.Logf("device at %d Hz: %d windows of 6 kHz, %d of 1 kHz", deviceRate, six, one)
}
