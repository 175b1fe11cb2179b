package gen

import (
	"io"
	"testing"
	"time"
)

// countingWriter counts bytes so the benchmark reports throughput without
// holding the capture.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) { w.n += int64(len(p)); return len(p), nil }

func benchWrite(b *testing.B, calls int, d time.Duration, im Impairments) {
	cs, err := Build(BuildConfig{Calls: calls, Duration: d, VLAN: 85, Priority: 5})
	if err != nil {
		b.Fatal(err)
	}
	cfg := &Config{Calls: cs, Impair: im, Seed: 1}
	var w countingWriter
	res, err := Write(&w, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(res.Bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Write(io.Discard, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Frames), "frames/op")
}

// BenchmarkWrite1000Calls writes 1,000 calls × 10 s × 2 directions = 1 M
// frames per operation.
func BenchmarkWrite1000Calls(b *testing.B) {
	benchWrite(b, 1000, 10*time.Second, Impairments{})
}

func BenchmarkWrite1000CallsImpaired(b *testing.B) {
	benchWrite(b, 1000, 10*time.Second, Impairments{Loss: 0.02, BurstRate: 0.002, Jitter: 30 * time.Millisecond,
		Reorder: 0.01, Duplicate: 0.01})
}

func BenchmarkWrite20Calls(b *testing.B) {
	benchWrite(b, 20, 10*time.Second, Impairments{})
}

// TestNoPerPacketAllocations checks that Write's allocations do not grow
// with the number of packets: calls ten times longer allocate only what
// the per-stream pools grow by at rare jitter peaks (far below one
// allocation per 100 packets).
func TestNoPerPacketAllocations(t *testing.T) {
	allocs := func(d time.Duration) float64 {
		cs, err := Build(BuildConfig{Calls: 10, Duration: d, VLAN: 85})
		if err != nil {
			t.Fatal(err)
		}
		cfg := &Config{Calls: cs, Impair: Impairments{Loss: 0.01, Jitter: 30 * time.Millisecond, Duplicate: 0.01}}
		return testing.AllocsPerRun(3, func() {
			if _, err := Write(io.Discard, cfg); err != nil {
				t.Fatal(err)
			}
		})
	}
	short, long := allocs(time.Second), allocs(10*time.Second)
	extra := float64(10 * 2 * (500 - 50)) // packets added by the longer calls
	if long-short > extra/100 {
		t.Fatalf("%v allocations for 1 s calls, %v for 10 s calls: Write allocates per packet", short, long)
	}
}
