package supervisor

import (
	"math"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/opus"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// opusCall sends a 48 kHz Opus tone on payload type 111 (20 ms, 960
// samples per packet).
type opusCall struct {
	*call
	enc *opus.Encoder
}

func newOpusCall(t *testing.T, id string, hz float64, n byte) *opusCall {
	t.Helper()
	if !playout.OpusBuiltIn {
		t.Skip("skipping: Opus is not built in (needs cgo and libopus-dev)")
	}
	enc, err := opus.NewEncoder(opus.EncoderConfig{Rate: 48000, Bitrate: 64000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close() })
	return &opusCall{call: newCall(id, hz, n), enc: enc}
}

func (c *opusCall) packet(t *testing.T) []byte {
	pcm := make([]int16, 960)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*c.hz*float64(c.k)/48000))
		c.k++
	}
	b := c.header(111, 1275)[:12+1275]
	n, err := c.enc.Encode(pcm, b[12:])
	if err != nil {
		t.Fatal(err)
	}
	c.seq++
	c.ts += 960
	return b[:12+n]
}

// TestTapRates: a session's tap delivers frames at the session's own
// rate, 20 ms each: 160 stereo frames at 8 kHz (G.711), 320 at 16 kHz
// (G.722), 960 at 48 kHz (Opus); Tap.Rate says the rate before any
// frame; the left channel carries the agent's tone at its frequency and
// level (a 6 kHz tone at 16 kHz and 15 kHz at 48 kHz, which an 8 kHz
// chain cannot carry).
func TestTapRates(t *testing.T) {
	for _, tc := range []struct {
		name    string
		rate    int
		hz      float64
		level   float64 // the tone's level in the tap, with the codec's tolerance
		tol     float64
		packets func(t *testing.T, r *rig) func() []byte
	}{
		{"PCMU", 8000, 1000, 8000, 0.05, func(t *testing.T, r *rig) func() []byte {
			c := newCall("s", 1000, 3)
			return c.next
		}},
		{"G722", 16000, 6000, 8000, 0.1, func(t *testing.T, r *rig) func() []byte {
			c := newG722Call(t, "s", 6000, 3)
			return func() []byte { return c.packet(t) }
		}},
		{"Opus", 48000, 15000, 8000, 0.15, func(t *testing.T, r *rig) func() []byte {
			c := newOpusCall(t, "s", 15000, 3)
			return func() []byte { return c.packet(t) }
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, Config{Output: "null", Playout: playout.Config{PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}})
			next := tc.packets(t, r)
			c := newCall("s", 0, 3) // addresses of the session's stream
			var tap *Tap
			var frames []TapFrame
			for i := range 100 {
				f := frame(t, "s", c, next())
				if err := r.sup.Media(r.peer, &f); err != nil {
					t.Fatal(err)
				}
				if i == 0 {
					var err error
					if tap, err = r.sup.Tap("s"); err != nil {
						t.Fatal(err)
					}
					if tap.Rate() != tc.rate {
						t.Errorf("Tap.Rate() = %d, want %d", tap.Rate(), tc.rate)
					}
				}
				r.clock.Advance(20 * time.Millisecond)
				frames = append(frames, drainTap(tap)...)
			}
			tap.Close()
			want := tc.rate / 50
			for i, f := range frames {
				if f.Rate != tc.rate || f.Len() != want || len(f.Stereo()) != 2*want {
					t.Fatalf("frame %d: rate %d, %d stereo frames, want %d and %d", i, f.Rate, f.Len(), tc.rate, want)
				}
			}
			left, _ := channels(frames)
			if len(left) < 80*want {
				t.Fatalf("tap gave %d samples per channel for 2 s, want at least %d", len(left), 80*want)
			}
			// A whole number of the tone's periods past the start.
			win := left[len(left)-50*want:]
			// ToneLevel measures at 8 kHz: scale the frequency.
			got := audiotest.ToneLevel(win, tc.hz*playout.SampleRate/float64(tc.rate))
			t.Logf("%s tap: %d frames of %d, %.0f Hz at %.0f", tc.name, len(frames), want, tc.hz, got)
			if math.Abs(got-tc.level) > tc.tol*tc.level {
				t.Errorf("%.0f Hz tone at level %.0f in the tap, want %.0f ± %.0f%%", tc.hz, got, tc.level, 100*tc.tol)
			}
		})
	}
}

// TestTapNoAllocs: cutting a 16 kHz session's writes into frames and
// handing them to a subscriber allocates nothing per frame.
func TestTapNoAllocs(t *testing.T) {
	clock := audiotest.NewClock(time.Unix(1_700_000_000, 0))
	k := newTapSink(playout.NewNullSinkRate(1, 16000), clock, 16000)
	tap, err := k.subscribe("s")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	p := make([]int16, 2*320)
	for i := range p {
		p[i] = int16(i)
	}
	var got TapFrame
	allocs := testing.AllocsPerRun(200, func() {
		if err := k.Write(p); err != nil {
			t.Fatal(err)
		}
		got = <-tap.Frames()
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per 20 ms frame, want 0", allocs)
	}
	if got.Rate != 16000 || got.Len() != 320 || got.Samples[639] != 639 {
		t.Errorf("frame: rate %d, %d stereo frames, last sample %d; want 16000, 320, 639", got.Rate, got.Len(), got.Samples[639])
	}
}
