//go:build cgo

package g722

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/silentmon/silentmon/internal/testutil"
)

var (
	tone = testutil.Tone
	rms  = testutil.RMS
)

func loudest(s []int16, rate int) float64 { return testutil.Loudest(s, rate, float64(rate)/2) }

func encodeAll(t testing.TB, pcm []int16, rate int) []byte {
	t.Helper()
	enc, err := NewEncoder(rate)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	out := make([]byte, len(pcm)*RTPClockRate/rate)
	n, err := enc.Encode(pcm, out)
	if err != nil || n != len(out) {
		t.Fatalf("Encode: %d bytes, %v; want %d", n, err, len(out))
	}
	return out
}

// decodePackets decodes data in 20 ms packets (160 bytes) as RTP carries it.
func decodePackets(t testing.TB, data []byte, rate int) []int16 {
	t.Helper()
	dec, err := NewDecoder(rate)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out := make([]int16, PayloadSamples(len(data), rate))
	got := 0
	for off := 0; off < len(data); off += 160 {
		p := data[off:min(off+160, len(data))]
		n, err := dec.Decode(p, out[got:])
		if err != nil || n != PayloadSamples(len(p), rate) {
			t.Fatalf("Decode of %d bytes: %d samples, %v", len(p), n, err)
		}
		got += n
	}
	return out
}

func TestToneRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		encRate, decRate int
		hz               float64
	}{
		{16000, 16000, 1000},
		{16000, 16000, 6000}, // the upper band: only wideband carries it
		{16000, 8000, 1000},
		{8000, 8000, 440},
		{8000, 16000, 2000},
	} {
		in := tone(tc.hz, 8000, tc.encRate, tc.encRate) // 1 s
		out := decodePackets(t, encodeAll(t, in, tc.encRate), tc.decRate)
		if len(out) != tc.decRate {
			t.Fatalf("%+v: %d samples, want %d", tc, len(out), tc.decRate)
		}
		w := out[tc.decRate/10:] // after 100 ms
		if f := loudest(w, tc.decRate); math.Abs(f-tc.hz) > 10 {
			t.Errorf("%+v: loudest at %.0f Hz", tc, f)
		}
		db := 20 * math.Log10(rms(w)/rms(in[tc.encRate/10:]))
		if math.Abs(db) > 1 {
			t.Errorf("%+v: level %.2f dB from the input, want within 1 dB", tc, db)
		}
		t.Logf("%+v: level %+.2f dB", tc, db)
	}
}

func TestNarrowbandDropsUpperBand(t *testing.T) {
	in := tone(6000, 8000, 16000, 16000)
	out := decodePackets(t, encodeAll(t, in, 16000), 8000)
	if r := rms(out[800:]); r > 200 {
		t.Fatalf("a 6 kHz tone decoded at 8 kHz has RMS %.0f, want near silence", r)
	}
}

// TestMatchesFFmpeg decodes the same G.722 bytes with ffmpeg's decoder
// (libavcodec's g722, an independent implementation of the ITU
// algorithm) and compares the 16 kHz output sample by sample.
func TestMatchesFFmpeg(t *testing.T) {
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg is not installed (scripts/deps.sh installs it): the comparison with an independent decoder is skipped")
	}
	// A chord across both sub-bands with a sweep, 2 s.
	const rate = 16000
	in := make([]int16, 2*rate)
	for i := range in {
		x := float64(i) / rate
		v := 5000*math.Sin(2*math.Pi*440*x) + 3000*math.Sin(2*math.Pi*(300+1500*x)*x) + 2000*math.Sin(2*math.Pi*5500*x)
		in[i] = int16(v)
	}
	data := encodeAll(t, in, rate)
	path := filepath.Join(t.TempDir(), "x.g722")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := exec.Command(ff, "-v", "error", "-f", "g722", "-i", path, "-ar", "16000", "-f", "s16le", "-").Output()
	if err != nil {
		t.Fatalf("ffmpeg: %v", err)
	}
	ref := make([]int16, len(raw)/2)
	binary.Read(bytes.NewReader(raw), binary.LittleEndian, ref)
	ours := decodePackets(t, data, rate)
	if len(ref) != len(ours) {
		t.Fatalf("ffmpeg gave %d samples, spandsp %d", len(ref), len(ours))
	}
	maxDiff := 0
	for i := range ours {
		maxDiff = max(maxDiff, abs(int(ours[i])-int(ref[i])))
	}
	t.Logf("spandsp vs ffmpeg G.722 at 16 kHz: %d samples, max difference %d", len(ours), maxDiff)
	if maxDiff > MaxFFmpegDiff {
		t.Fatalf("max sample difference %d from ffmpeg's decoder, tolerance %d", maxDiff, MaxFFmpegDiff)
	}
}

// MaxFFmpegDiff is the tolerance against ffmpeg's decoder (docs/playout.md).
const MaxFFmpegDiff = 2

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestErrors(t *testing.T) {
	if _, err := NewDecoder(44100); !errors.Is(err, ErrRate) {
		t.Errorf("NewDecoder(44100): %v, want ErrRate", err)
	}
	if _, err := NewEncoder(48000); !errors.Is(err, ErrRate) {
		t.Errorf("NewEncoder(48000): %v, want ErrRate", err)
	}
	dec, _ := NewDecoder(16000)
	if _, err := dec.Decode(make([]byte, 160), make([]int16, 160)); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short output: %v, want ErrShortBuffer", err)
	}
	dec.Close()
	if _, err := dec.Decode(make([]byte, 10), make([]int16, 20)); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
}

func TestResetForgetsState(t *testing.T) {
	data := encodeAll(t, tone(1000, 8000, 16000, 1600), 16000)
	dec, _ := NewDecoder(16000)
	defer dec.Close()
	a := make([]int16, 320)
	b := make([]int16, 320)
	dec.Decode(data[:160], a)
	dec.Decode(data[:160], b) // state differs now
	dec.Reset()
	dec.Decode(data[:160], b)
	if !slicesEqual(a, b) {
		t.Fatal("after Reset the decoder does not decode as a new one")
	}
}

func slicesEqual(a, b []int16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestNoAllocs(t *testing.T) {
	enc, _ := NewEncoder(16000)
	defer enc.Close()
	dec, _ := NewDecoder(8000)
	defer dec.Close()
	pcm := tone(1000, 8000, 16000, 320)
	var frame [160]byte
	out := make([]int16, 320)
	if n := testing.AllocsPerRun(100, func() {
		enc.Encode(pcm, frame[:])
		dec.Decode(frame[:], out)
		dec.Reset()
	}); n != 0 {
		t.Fatalf("%v allocations per packet, want 0", n)
	}
}

// BenchmarkDecode decodes one 20 ms packet per iteration; SetBytes counts
// the 16-bit samples out, so MB/s over 0.032 (16 kHz) or 0.016 (8 kHz) is
// seconds of audio per second.
func BenchmarkDecode(b *testing.B) {
	for _, rate := range []int{8000, 16000} {
		b.Run(map[int]string{8000: "8kHz", 16000: "16kHz"}[rate], func(b *testing.B) {
			data := encodeAll(b, tone(1000, 8000, 16000, 320), 16000)
			dec, _ := NewDecoder(rate)
			defer dec.Close()
			out := make([]int16, 320)
			b.ReportAllocs()
			b.SetBytes(int64(PayloadSamples(len(data), rate) * 2))
			for b.Loop() {
				dec.Decode(data, out)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	enc, _ := NewEncoder(16000)
	defer enc.Close()
	pcm := tone(1000, 8000, 16000, 320)
	var frame [160]byte
	b.ReportAllocs()
	b.SetBytes(320 * 2)
	for b.Loop() {
		enc.Encode(pcm, frame[:])
	}
}
