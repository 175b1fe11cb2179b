//go:build cgo

package g729

import (
	"errors"
	"math"
	"testing"
)

func tone(hz, amp float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*hz*float64(i)/8000)))
	}
	return out
}

func rms(s []int16) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(s)))
}

// bestCorrelation returns the largest normalized cross-correlation of a and
// b over lags 0..maxLag (b delayed), computed over a's window [from, to).
func bestCorrelation(a, b []int16, from, to, maxLag int) (float64, int) {
	best, bestLag := -1.0, 0
	for lag := 0; lag <= maxLag; lag++ {
		var ab, aa, bb float64
		for i := from; i < to; i++ {
			x, y := float64(a[i]), float64(b[i+lag])
			ab += x * y
			aa += x * x
			bb += y * y
		}
		if c := ab / math.Sqrt(aa*bb); c > best {
			best, bestLag = c, lag
		}
	}
	return best, bestLag
}

func roundTrip(t *testing.T, in []int16, vad bool) ([]int16, []int) {
	t.Helper()
	enc, err := NewEncoder(vad)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out := make([]int16, len(in))
	var sizes []int
	var frame [FrameBytes]byte
	for f := 0; f+FrameSamples <= len(in); f += FrameSamples {
		n, err := enc.Encode(in[f:f+FrameSamples], frame[:])
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
		if n == 0 {
			// Nothing sent (DTX): a receiver runs the decoder with the
			// erasure flag, which continues comfort noise after a SID.
			if err := dec.Decode(nil, true, out[f:]); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := dec.Decode(frame[:n], false, out[f:]); err != nil {
			t.Fatal(err)
		}
	}
	return out, sizes
}

func TestRoundTripTone(t *testing.T) {
	for _, hz := range []float64{400, 1000, 2000} {
		in := tone(hz, 8000, 8000)
		out, sizes := roundTrip(t, in, false)
		for i, n := range sizes {
			if n != FrameBytes {
				t.Fatalf("%v Hz: frame %d encoded to %d bytes, want 10", hz, i, n)
			}
		}
		c, lag := bestCorrelation(in, out, 2000, 7000, 200)
		if c < 0.9 {
			t.Errorf("%v Hz: correlation %.3f at lag %d, want >= 0.9", hz, c, lag)
		}
		if r := rms(out[2000:7000]) / rms(in[2000:7000]); r < 0.5 || r > 1.5 {
			t.Errorf("%v Hz: level ratio %.2f out of [0.5, 1.5]", hz, r)
		}
		t.Logf("%v Hz: correlation %.3f at lag %d", hz, c, lag)
	}
}

func TestErasedFramesConceal(t *testing.T) {
	in := tone(1000, 8000, 8000)
	enc, _ := NewEncoder(false)
	defer enc.Close()
	dec, _ := NewDecoder()
	defer dec.Close()
	var frame [FrameBytes]byte
	out := make([]int16, FrameSamples)
	for f := 0; f < 50; f++ {
		if _, err := enc.Encode(in[f*80:], frame[:]); err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(frame[:], false, out); err != nil {
			t.Fatal(err)
		}
	}
	speech := rms(out)
	if err := dec.Decode(nil, true, out); err != nil {
		t.Fatal(err)
	}
	if r := rms(out); r < speech/4 {
		t.Fatalf("concealed frame RMS %.0f, speech RMS %.0f: concealment is near silent", r, speech)
	}
}

func TestVADSendsSIDOnSilence(t *testing.T) {
	// Speech first, then digital silence: with VAD the encoder switches to
	// SID frames (2 bytes) and no-transmission frames (0 bytes).
	in := append(tone(800, 8000, 8000), make([]int16, 16000)...)
	out, sizes := roundTrip(t, in, true)
	counts := map[int]int{}
	for _, n := range sizes {
		counts[n]++
	}
	if counts[FrameBytes] == 0 || counts[SIDBytes] == 0 {
		t.Fatalf("frame sizes %v: want both speech and SID frames", counts)
	}
	for n := range counts {
		if n != 0 && n != SIDBytes && n != FrameBytes {
			t.Fatalf("unexpected frame size %d", n)
		}
	}
	if r, s := rms(out[16000:]), rms(out[2000:7000]); r > s/10 {
		t.Fatalf("comfort noise RMS %.0f is not well below speech RMS %.0f", r, s)
	}
}

func TestDecodePayload(t *testing.T) {
	dec, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	out := make([]int16, 4*FrameSamples)
	tests := []struct {
		n       int
		samples int
		err     error
	}{
		{0, 0, nil},
		{10, 80, nil},
		{20, 160, nil},
		{22, 240, nil},
		{2, 80, nil},
		{7, 0, ErrFrameSize},
		{15, 0, ErrFrameSize},
		{50, 0, ErrShortBuffer},
	}
	for _, tt := range tests {
		got, err := dec.DecodePayload(make([]byte, tt.n), out)
		if !errors.Is(err, tt.err) || (err == nil && got != tt.samples) {
			t.Errorf("payload of %d bytes: %d samples, err %v; want %d, %v", tt.n, got, err, tt.samples, tt.err)
		}
	}
	if err := dec.Decode(make([]byte, 5), false, out); !errors.Is(err, ErrFrameSize) {
		t.Errorf("5-byte frame: err %v, want ErrFrameSize", err)
	}
	if err := dec.Decode(make([]byte, 10), false, out[:10]); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("short output: err %v, want ErrShortBuffer", err)
	}
	dec.Close()
	if err := dec.Decode(make([]byte, 10), false, out); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: err %v, want ErrClosed", err)
	}
}

func TestNoAllocs(t *testing.T) {
	enc, _ := NewEncoder(false)
	defer enc.Close()
	dec, _ := NewDecoder()
	defer dec.Close()
	pcm := tone(1000, 8000, FrameSamples)
	var frame [FrameBytes]byte
	out := make([]int16, FrameSamples)
	if n := testing.AllocsPerRun(100, func() {
		enc.Encode(pcm, frame[:])
		dec.Decode(frame[:], false, out)
		dec.Decode(nil, true, out)
		dec.DecodePayload(frame[:], out)
	}); n != 0 {
		t.Fatalf("%v allocations per frame, want 0", n)
	}
}

func BenchmarkEncode(b *testing.B) {
	enc, _ := NewEncoder(false)
	defer enc.Close()
	pcm := tone(1000, 8000, FrameSamples)
	var frame [FrameBytes]byte
	b.ReportAllocs()
	b.SetBytes(FrameSamples * 2)
	for b.Loop() {
		enc.Encode(pcm, frame[:])
	}
}

func BenchmarkDecode(b *testing.B) {
	enc, _ := NewEncoder(false)
	defer enc.Close()
	dec, _ := NewDecoder()
	defer dec.Close()
	var frame [FrameBytes]byte
	enc.Encode(tone(1000, 8000, FrameSamples), frame[:])
	out := make([]int16, FrameSamples)
	b.ReportAllocs()
	b.SetBytes(FrameBytes)
	for b.Loop() {
		dec.Decode(frame[:], false, out)
	}
}
