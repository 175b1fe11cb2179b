package gen

import (
	"bytes"
	"math"
	"testing"
	"time"
)

func loadConfig(t testing.TB, calls int, d time.Duration, im Impairments) *Config {
	t.Helper()
	cs, err := Build(BuildConfig{Calls: calls, Duration: d, VLAN: 85, Priority: 5, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return &Config{Calls: cs, Impair: im, Seed: 42, Record: true}
}

func TestImpairmentsDeterministic(t *testing.T) {
	im := Impairments{Loss: 0.05, BurstRate: 0.01, Jitter: 30 * time.Millisecond, Reorder: 0.02, Duplicate: 0.02}
	var a, b, c bytes.Buffer
	cfg := loadConfig(t, 4, 5*time.Second, im)
	if _, err := Write(&a, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := Write(&b, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Seed = 43
	if _, err := Write(&c, cfg); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same Config wrote different bytes")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Fatal("a different seed wrote the same bytes")
	}
}

func TestImpairmentRates(t *testing.T) {
	const calls, dur = 10, 25 * time.Second // 20 streams × 1250 packets
	tests := []struct {
		name string
		im   Impairments
		// expected fractions of sent packets
		lost, dup, reord float64
	}{
		{"clean", Impairments{}, 0, 0, 0},
		{"loss 5%", Impairments{Loss: 0.05}, 0.05, 0, 0},
		{"burst 1%x5", Impairments{BurstRate: 0.01, BurstLen: 5}, 0.05 / (1 + 0.01*4), 0, 0},
		{"duplicate 3%", Impairments{Duplicate: 0.03}, 0, 0.03, 0},
		{"reorder 2%", Impairments{Reorder: 0.02}, 0, 0, 0.02},
		{"all", Impairments{Loss: 0.02, Duplicate: 0.01, Reorder: 0.01, Jitter: 10 * time.Millisecond}, 0.02, 0.01 * 0.98, 0.01 * 0.98},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := loadConfig(t, calls, dur, tt.im)
			var buf bytes.Buffer
			res, err := Write(&buf, cfg)
			if err != nil {
				t.Fatal(err)
			}
			pkts, times := readFrames(t, buf.Bytes())
			if len(pkts) != res.Frames {
				t.Fatalf("file has %d frames, result says %d", len(pkts), res.Frames)
			}
			var sent, lost, dups, reord, written int
			for _, s := range res.Streams {
				sent += s.Sent
				lost += s.Lost
				dups += s.Duplicates
				reord += s.Reordered
				written += s.Written
				if s.Written != s.Sent-s.Lost+s.Duplicates || len(s.Packets) != s.Written || len(s.LostPackets) != s.Lost {
					t.Fatalf("stream %d: sent %d lost %d dup %d written %d recorded %d/%d",
						s.Call, s.Sent, s.Lost, s.Duplicates, s.Written, len(s.Packets), len(s.LostPackets))
				}
			}
			if sent != 2*calls*int(dur/DefaultPtime) || written != res.Frames {
				t.Fatalf("sent %d written %d frames %d", sent, written, res.Frames)
			}
			near := func(what string, got int, want float64) {
				rate := float64(got) / float64(sent)
				// 5 standard deviations of a binomial, plus a little.
				tol := 5*math.Sqrt(want*(1-want)/float64(sent)) + 0.001
				if math.Abs(rate-want) > tol {
					t.Errorf("%s rate %.4f, want %.4f ± %.4f", what, rate, want, tol)
				}
			}
			near("loss", lost, tt.lost)
			near("duplicate", dups, tt.dup)
			near("reorder", reord, tt.reord)
			for i := 1; i < len(times); i++ {
				if times[i].Before(times[i-1]) {
					t.Fatalf("frame %d at %v is before frame %d at %v", i, times[i], i-1, times[i-1])
				}
			}
		})
	}
}

// TestJitterBoundsAndReorder checks that every capture time lies within
// [nominal, nominal+Jitter] and that jitter above the packet time reorders.
func TestJitterBoundsAndReorder(t *testing.T) {
	jit := 50 * time.Millisecond
	cfg := loadConfig(t, 1, 10*time.Second, Impairments{Jitter: jit})
	var buf bytes.Buffer
	res, err := Write(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Streams {
		c := cfg.Calls[s.Call]
		dir := c.FromAgent
		if !s.FromAgent {
			dir = c.ToAgent
		}
		outOfOrder := 0
		var maxDelay time.Duration
		for i, p := range s.Packets {
			k := int(uint16(p.Seq - dir.Seq))
			nominal := DefaultEpoch.Add(c.Start + time.Duration(k)*DefaultPtime)
			d := p.Time.Sub(nominal)
			if d < 0 || d > jit {
				t.Fatalf("seq %d delayed by %v, want within [0, %v]", p.Seq, d, jit)
			}
			maxDelay = max(maxDelay, d)
			if i > 0 && int16(p.Seq-s.Packets[i-1].Seq) < 0 {
				outOfOrder++
			}
		}
		if outOfOrder == 0 || maxDelay < jit*9/10 {
			t.Fatalf("jitter %v: %d packets out of order, max delay %v", jit, outOfOrder, maxDelay)
		}
	}
}

func TestDuplicatesFollowOriginal(t *testing.T) {
	cfg := loadConfig(t, 1, 4*time.Second, Impairments{Duplicate: 0.2})
	var buf bytes.Buffer
	res, err := Write(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range res.Streams {
		seen := map[uint16]Packet{}
		for _, p := range s.Packets {
			orig, ok := seen[p.Seq]
			if p.Duplicate != ok {
				t.Fatalf("seq %d: duplicate flag %v, seen before %v", p.Seq, p.Duplicate, ok)
			}
			if ok && (!bytes.Equal(orig.Payload, p.Payload) || p.Time.Sub(orig.Time) != DefaultPtime/2) {
				t.Fatalf("seq %d: copy differs or is %v after the original", p.Seq, p.Time.Sub(orig.Time))
			}
			seen[p.Seq] = p
		}
		if s.Duplicates == 0 {
			t.Fatal("no duplicates at 20%")
		}
	}
}
