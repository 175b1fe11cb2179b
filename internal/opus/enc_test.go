//go:build cgo

package opus

import (
	"errors"
	"math"
	"testing"
)

// level is the amplitude of the hz tone in s sampled at rate.
func level(s []int16, hz float64, rate int) float64 {
	return 2 * math.Sqrt(max(0, power(s, hz, rate))) / float64(len(s))
}

var power = func(s []int16, hz float64, rate int) float64 {
	w := 2 * math.Pi * hz / float64(rate)
	c := 2 * math.Cos(w)
	var s1, s2 float64
	for _, v := range s {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// TestEncodeAtSessionRates encodes a tone at each rate a session plays
// at, with the browser output's settings (20 ms frames, VoIP, in-band
// FEC, no DTX; 32, 48 and 64 kbit/s), and decodes it at 48 kHz: the
// tone is there at its frequency and its level within 25 % (the figures
// are logged), content above narrowband (6 kHz at 16 kHz, 12 kHz at 48
// kHz) included; libopus reports the settings asked for.
func TestEncodeAtSessionRates(t *testing.T) {
	for _, tc := range []struct {
		rate, bitrate int
		hz            float64
	}{
		{8000, 32000, 1000},
		{16000, 48000, 1000},
		{16000, 48000, 6000},
		{48000, 64000, 1000},
		{48000, 64000, 12000},
	} {
		cfg := EncoderConfig{Rate: tc.rate, Bitrate: tc.bitrate, FEC: true, LossPercent: 5}
		enc, err := NewEncoder(cfg)
		if err != nil {
			t.Fatal(err)
		}
		st, err := enc.Settings()
		enc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := (EncoderSettings{Rate: tc.rate, Bitrate: tc.bitrate, FEC: true}); st != want {
			t.Errorf("%d Hz: settings %+v, want %+v", tc.rate, st, want)
		}
		in := tone(tc.hz, 8000, tc.rate, tc.rate) // 1 s
		out := decodeAll(t, encodePackets(t, in, cfg), 48000)
		win := out[24000:] // past the first 0.5 s
		got := level(win, tc.hz, 48000)
		loud := loudest(win, 48000)
		if tc.hz > 4000 {
			loud = 0
			best := 0.0
			for hz := 100.0; hz < 23900; hz += 10 {
				if l := level(win, hz, 48000); l > best {
					best, loud = l, hz
				}
			}
		}
		t.Logf("%d Hz input at %d bit/s: %.0f Hz tone decoded at level %.0f of 8000 (%.1f dB), loudest at %.0f Hz",
			tc.rate, tc.bitrate, tc.hz, got, 20*math.Log10(got/8000), loud)
		if math.Abs(loud-tc.hz) > 20 {
			t.Errorf("%d Hz input: loudest at %.0f Hz, want %.0f", tc.rate, loud, tc.hz)
		}
		if math.Abs(got-8000) > 0.25*8000 {
			t.Errorf("%d Hz input: %.0f Hz tone at %.0f, want 8000 ± 25%%", tc.rate, tc.hz, got)
		}
	}
}

// TestEncodeNoAllocs: encoding 20 ms at 16 and 48 kHz with FEC on
// allocates nothing.
func TestEncodeNoAllocs(t *testing.T) {
	for _, rate := range []int{16000, 48000} {
		enc, err := NewEncoder(EncoderConfig{Rate: rate, Bitrate: 48000, FEC: true, LossPercent: 5})
		if err != nil {
			t.Fatal(err)
		}
		pcm := tone(1000, 8000, rate, rate/50)
		pkt := make([]byte, 1275)
		if n := testing.AllocsPerRun(100, func() { enc.Encode(pcm, pkt) }); n != 0 {
			t.Errorf("%d Hz: %v allocations per packet, want 0", rate, n)
		}
		enc.Close()
		if _, err := enc.Settings(); !errors.Is(err, ErrClosed) {
			t.Errorf("Settings after Close: %v, want ErrClosed", err)
		}
	}
}
