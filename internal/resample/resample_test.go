//go:build cgo

package resample

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
)

// run resamples in through a new Resampler in chunks of chunk frames.
func run(t *testing.T, in []int16, from, to, ch, chunk int) ([]int16, *Resampler) {
	t.Helper()
	r, err := New(from, to, ch)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	var out []int16
	for off := 0; off < len(in); off += chunk * ch {
		out = r.Process(out, in[off:min(off+chunk*ch, len(in))])
	}
	return out, r
}

// strongestAbove returns the power, relative to the power at hz, of the
// strongest component of s (at rate) between above and rate/2, on a
// 10 Hz grid. s is a whole second, so the tone's bins do not leak.
func strongestAbove(s []int16, rate int, hz, above float64) (float64, float64) {
	ref := testutil.Power(s, hz, rate)
	best, at := 0.0, 0.0
	for f := above; f < float64(rate)/2; f += 10 {
		if p := testutil.Power(s, f, rate); p > best {
			best, at = p, f
		}
	}
	return 10 * math.Log10(best/ref), at
}

// TestUpsampleTone: a 1 kHz tone at 8 kHz upsampled to 16 and 48 kHz in
// 20 ms packets comes out at exactly twice or six times the samples, at
// 1 kHz, at its level (within 0.1 dB), with no image above 4 kHz
// stronger than -90 dB (linear interpolation leaves the 7 kHz image about
// 34 dB down).
func TestUpsampleTone(t *testing.T) {
	in := testutil.Tone(1000, 16000, 8000, 3*8000)
	for _, rate := range []int{16000, 48000} {
		out, _ := run(t, in, 8000, rate, 1, 160)
		if len(out) != len(in)*rate/8000 {
			t.Fatalf("%d Hz: %d samples, want %d", rate, len(out), len(in)*rate/8000)
		}
		w := out[rate : 2*rate]
		if f := testutil.Loudest(w, rate, float64(rate)/2); f != 1000 {
			t.Errorf("%d Hz: loudest at %.0f Hz, want 1000", rate, f)
		}
		db := 20 * math.Log10(testutil.RMS(w)/testutil.RMS(in[8000:16000]))
		if math.Abs(db) > 0.1 {
			t.Errorf("%d Hz: level %+.3f dB, want within 0.1 dB", rate, db)
		}
		img, at := strongestAbove(w, rate, 1000, 4100)
		if img > -90 {
			t.Errorf("%d Hz: image at %.0f Hz is %.1f dB below the tone, want at most -90 dB", rate, at, img)
		}
		t.Logf("8 to %d Hz: 1 kHz at %+.3f dB, strongest image above 4 kHz %.1f dB (at %.0f Hz)", rate, db, img, at)
	}
}

// TestDownsampleAlias: from 16 and 48 kHz to 8 kHz, a 1 kHz tone keeps its
// level (within 0.1 dB); in the other channel a 3 kHz tone keeps its
// level (within 0.5 dB) and a 6 kHz tone beside it is removed: at most
// -80 dB where it would fold (2 kHz). The channels do not leak.
func TestDownsampleAlias(t *testing.T) {
	for _, rate := range []int{16000, 48000} {
		lo, mid, hi := testutil.Tone(1000, 16000, rate, 3*rate), testutil.Tone(3000, 8000, rate, 3*rate), testutil.Tone(6000, 8000, rate, 3*rate)
		in := make([]int16, 2*len(lo))
		for i := range lo {
			in[2*i], in[2*i+1] = lo[i], mid[i]+hi[i]
		}
		out, _ := run(t, in, rate, 8000, 2, 77) // odd chunks: frames carry over
		if len(out) != 2*3*8000 {
			t.Fatalf("%d Hz: %d samples, want %d", rate, len(out), 2*3*8000)
		}
		left, right := make([]int16, 8000), make([]int16, 8000)
		for i := range left {
			left[i], right[i] = out[2*(8000+i)], out[2*(8000+i)+1]
		}
		db := 20 * math.Log10(testutil.RMS(left)/testutil.RMS(lo[rate:2*rate]))
		if math.Abs(db) > 0.1 {
			t.Errorf("%d Hz: 1 kHz at %+.3f dB, want within 0.1 dB", rate, db)
		}
		if d3 := 20 * math.Log10(testutil.RMS(right)/testutil.RMS(mid[rate:2*rate])); math.Abs(d3) > 0.5 {
			t.Errorf("%d Hz: 3 kHz at %+.3f dB, want within 0.5 dB", rate, d3)
		}
		rej := 10 * math.Log10(testutil.Power(right, 2000, 8000)/testutil.Power(right, 3000, 8000))
		if rej > -80 {
			t.Errorf("%d Hz: 6 kHz folds to 2 kHz at %.1f dB, want at most -80 dB", rate, rej)
		}
		if p := testutil.Power(left, 2000, 8000) / testutil.Power(left, 1000, 8000); p > 1e-8 {
			t.Errorf("%d Hz: the right channel leaks into the left (%.1f dB)", rate, 10*math.Log10(p))
		}
		t.Logf("%d to 8000 Hz: 1 kHz %+.3f dB, 6 kHz alias %.1f dB", rate, db, rej)
	}
}

// TestDelay: a click comes out Delay later (to the nearest output
// sample), and Delay is 3 ms from 8 kHz and to 8 kHz, 1.5 ms from 16 to
// 48 kHz.
func TestDelay(t *testing.T) {
	for _, c := range []struct {
		from, to int
		want     time.Duration
	}{{8000, 16000, 3 * time.Millisecond}, {8000, 48000, 3 * time.Millisecond},
		{16000, 48000, 1500 * time.Microsecond}, {48000, 8000, 3 * time.Millisecond}, {16000, 8000, 3 * time.Millisecond}} {
		in := make([]int16, c.from/10)
		in[c.from/100] = 16000 // at 10 ms
		out, r := run(t, in, c.from, c.to, 1, len(in))
		if d := r.Delay(); d != c.want {
			t.Errorf("%d to %d Hz: Delay %v, want %v", c.from, c.to, d, c.want)
		}
		peak := 0
		for i, v := range out {
			if v > out[peak] {
				peak = i
			}
		}
		got := time.Duration(peak)*time.Second/time.Duration(c.to) - 10*time.Millisecond
		if tol := time.Second / time.Duration(c.to); got < c.want-tol || got > c.want+tol {
			t.Errorf("%d to %d Hz: the click comes out %v late, want %v", c.from, c.to, got, c.want)
		}
		t.Logf("%d to %d Hz: delay %v (Delay %v)", c.from, c.to, got, r.Delay())
	}
}

// TestProcessNoAllocs: resampling a 20 ms packet into a buffer with room
// allocates nothing.
func TestProcessNoAllocs(t *testing.T) {
	r, err := New(8000, 48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	in := testutil.Tone(1000, 8000, 8000, 160)
	out := make([]int16, 960) // exactly the room: written in place
	if n := testing.AllocsPerRun(100, func() {
		if got := r.Process(out[:0], in); len(got) != 960 || &got[0] != &out[0] {
			t.Fatalf("%d samples, not in dst's memory", len(got))
		}
	}); n != 0 {
		t.Errorf("%v allocations per packet, want 0", n)
	}
}

// TestReset: after Reset the Resampler gives what a new one gives.
func TestReset(t *testing.T) {
	in := testutil.Tone(700, 12000, 8000, 800)
	fresh, r := run(t, in, 8000, 16000, 1, 160)
	r.Reset()
	again := r.Process(nil, in)
	for i := range fresh {
		if fresh[i] != again[i] {
			t.Fatalf("after Reset sample %d is %d, a new resampler gives %d", i, again[i], fresh[i])
		}
	}
}

// TestSetRates: a Resampler switched from 16 to 8 kHz input plays a 1 kHz
// tone at 1 kHz at 48 kHz, exactly six output frames per input frame.
func TestSetRates(t *testing.T) {
	r, err := New(16000, 48000, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.Process(nil, testutil.Tone(500, 8000, 16000, 1600))
	if err := r.SetRates(8000, 48000); err != nil {
		t.Fatal(err)
	}
	var out []int16
	in := testutil.Tone(1000, 16000, 8000, 16000)
	for off := 0; off < len(in); off += 160 {
		out = r.Process(out, in[off:off+160])
	}
	if len(out) < 6*len(in)-6 || len(out) > 6*len(in)+6 {
		t.Fatalf("%d samples, want about %d", len(out), 6*len(in))
	}
	if f := testutil.Loudest(out[48000:96000], 48000, 8000); f != 1000 {
		t.Errorf("loudest at %.0f Hz, want 1000", f)
	}
	if err := r.SetRates(0, 48000); !errors.Is(err, ErrRate) || !strings.Contains(err.Error(), "0 Hz") {
		t.Errorf("SetRates(0, 48000) = %v, want ErrRate naming 0 Hz", err)
	}
}

// TestNewErrors: bad rates and channel counts are refused, naming them;
// a closed Resampler does nothing.
func TestNewErrors(t *testing.T) {
	for _, c := range []struct {
		in, out, ch int
		word        string
	}{{0, 8000, 1, "0 Hz"}, {8000, -1, 1, "-1 Hz"}, {8000, 16000, 3, "3 channels"}} {
		if _, err := New(c.in, c.out, c.ch); !errors.Is(err, ErrRate) || !strings.Contains(err.Error(), c.word) {
			t.Errorf("New(%d, %d, %d) = %v, want ErrRate naming %q", c.in, c.out, c.ch, err, c.word)
		}
	}
	r, err := New(8000, 16000, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close()
	if out := r.Process(nil, make([]int16, 160)); len(out) != 0 {
		t.Errorf("closed: %d samples", len(out))
	}
	if err := r.SetRates(8000, 48000); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: SetRates = %v, want ErrClosed", err)
	}
}

// BenchmarkProcess resamples 20 ms packets: from 8 kHz to 16 and 48 kHz
// (a narrowband stream in a wideband session) and from 48 kHz stereo to
// 8 kHz (the console's PCMU).
func BenchmarkProcess(b *testing.B) {
	for _, c := range []struct {
		name         string
		from, to, ch int
	}{{"8k-16k", 8000, 16000, 1}, {"8k-48k", 8000, 48000, 1}, {"48k-8k-stereo", 48000, 8000, 2}} {
		b.Run(c.name, func(b *testing.B) {
			r, err := New(c.from, c.to, c.ch)
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			in := make([]int16, c.from/50*c.ch)
			copy(in, testutil.Tone(1000, 8000, c.from, len(in)))
			out := make([]int16, 0, c.to/50*c.ch+8)
			b.ReportAllocs()
			b.SetBytes(int64(2 * len(in)))
			for b.Loop() {
				out = r.Process(out[:0], in)
			}
		})
	}
}
