package playout_test

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/silentmon/silentmon/playout"
)

// arrival is one packet pushed at a time.
type arrival struct {
	at  time.Duration
	dir playout.Direction
	pkt []byte
}

// runRenderer pushes the arrivals (sorted by time) through a Renderer,
// rendering as time passes, then flushes; it returns the output.
func runRenderer(t testing.TB, cfg playout.Config, arr []arrival) ([]int16, playout.Stats) {
	t.Helper()
	r := playout.NewRenderer(cfg, 1, false)
	defer r.Close()
	var out []int16
	for _, a := range arr {
		now := t0.Add(a.at)
		for b := r.Render(now); len(b) > 0; b = r.Render(now) {
			out = append(out, b...)
		}
		r.Push(a.dir, now, a.pkt)
	}
	for b := r.Flush(); len(b) > 0; b = r.Flush() {
		out = append(out, b...)
	}
	return out, r.Stats()
}

func sortArrivals(a []arrival) {
	slices.SortStableFunc(a, func(x, y arrival) int { return cmp.Compare(x.at, y.at) })
}

// TestLossAndJitter: 5% random loss, 0 to 40 ms of jitter (which reorders
// packets). The output must be continuous, as long as the call within one
// frame, exact wherever a packet and its predecessor arrived, and every
// gap concealed.
func TestLossAndJitter(t *testing.T) {
	const frames, frame = 500, 160 // 10 s
	audio := speechLike(frames*frame, false, 21)
	rng := rand.New(rand.NewPCG(5, 6))
	lost := make([]bool, frames)
	var arr []arrival
	nLost := 0
	for i := range frames {
		if i > 0 && i < frames-1 && rng.Float64() < 0.05 {
			lost[i] = true
			nLost++
			continue
		}
		jit := time.Duration(rng.Float64() * float64(40*time.Millisecond))
		if i == 0 {
			jit = 0
		}
		arr = append(arr, arrival{time.Duration(i)*20*time.Millisecond + jit, playout.FromAgent,
			rtpPacket(0, uint16(60000+i), uint32(i*frame), 77, i == 0, audio[i*frame:(i+1)*frame])})
	}
	sortArrivals(arr)
	out, st := runRenderer(t, playout.Config{}, arr)
	s := st.Dir(playout.FromAgent)
	t.Logf("lost %d: %+v", nLost, s)

	if d := len(out) - frames*frame; d < -frame || d > frame {
		t.Errorf("output is %d samples, the call %d", len(out), frames*frame)
	}
	// No run of digital silence longer than one frame.
	run, worst := 0, 0
	for _, v := range out {
		if v == 0 {
			run++
			worst = max(worst, run)
		} else {
			run = 0
		}
	}
	if worst > frame {
		t.Errorf("a run of %d zero samples inside the talkspurt", worst)
	}
	if s.Lost+s.Late < uint64(nLost) || s.Concealed < uint64(nLost) {
		t.Errorf("lost %d packets, counted lost %d late %d concealed %d", nLost, s.Lost, s.Late, s.Concealed)
	}
	if s.Frames+s.Late+s.Lost != frames || s.Frames == 0 {
		t.Errorf("frames %d + late %d + lost %d != %d", s.Frames, s.Late, s.Lost, frames)
	}
	want := decodeRef(audio, false)
	exact := 0
	// A stretch (the target growing to the jitter met) delays the rest
	// by one frame.
	for i := 1; i < frames; i++ {
		if lost[i] || lost[i-1] {
			continue
		}
		for k := range int(s.Stretches) + 1 {
			if o := (i + k) * frame; o+frame <= len(out) && firstDiff(out[o:o+frame], want[i*frame:(i+1)*frame]) < 0 {
				exact++
				break
			}
		}
	}
	// Late packets are concealed too; all others play bit-exact.
	if min := frames - 2*nLost - 2*int(s.Late) - 1; exact < min {
		t.Errorf("%d frames bit-exact, want at least %d", exact, min)
	}
}

// TestStreamEvents covers duplicates, sequence and timestamp wrap, an SSRC
// change and a 2-second hold.
func TestStreamEvents(t *testing.T) {
	const frame = 160
	a := speechLike(8000, false, 1)
	b := speechLike(8000, false, 2)
	pkts := func(audio []byte, start time.Duration, seq0 uint16, ts0, ssrc uint32, dup bool) []arrival {
		var arr []arrival
		for i := 0; i*frame < len(audio); i++ {
			p := rtpPacket(0, seq0+uint16(i), ts0+uint32(i*frame), ssrc, i == 0, audio[i*frame:(i+1)*frame])
			at := start + time.Duration(i)*20*time.Millisecond
			arr = append(arr, arrival{at, playout.FromAgent, p})
			if dup && i%3 == 0 {
				arr = append(arr, arrival{at + 5*time.Millisecond, playout.FromAgent, p})
			}
		}
		return arr
	}
	wa, wb := decodeRef(a, false), decodeRef(b, false)
	for _, tc := range []struct {
		name  string
		arr   []arrival
		check func(t *testing.T, out []int16, s playout.StreamStats)
	}{
		{"duplicates", pkts(a, 0, 100, 0, 1, true), func(t *testing.T, out []int16, s playout.StreamStats) {
			if firstDiff(out, wa) >= 0 || s.Duplicates != 17 {
				t.Errorf("duplicates %d, output differs at %d", s.Duplicates, firstDiff(out, wa))
			}
		}},
		{"wrap", pkts(a, 0, 65530, 4294967000, 1, false), func(t *testing.T, out []int16, s playout.StreamStats) {
			if firstDiff(out, wa) >= 0 || s.Lost != 0 || s.Resyncs != 0 {
				t.Errorf("wrap: %+v, differs at %d", s, firstDiff(out, wa))
			}
		}},
		{"ssrc-change", append(pkts(a, 0, 100, 0, 1, false), pkts(b, time.Second, 9000, 123456, 2, false)...),
			func(t *testing.T, out []int16, s playout.StreamStats) {
				// b plays whole and last; a's buffered tail is not played after b starts.
				if len(out) < len(wb) || firstDiff(out[len(out)-len(wb):], wb) >= 0 {
					t.Fatalf("the new call's audio is not played exactly at the end")
				}
				head := out[:len(out)-len(wb)]
				n := min(len(head), len(wa)-800)
				if s.SSRCChanges != 1 || firstDiff(head[:n], wa[:n]) >= 0 {
					t.Errorf("old call: %+v differs at %d", s, firstDiff(head[:n], wa[:n]))
				}
				if len(head) > len(wa)+160 {
					t.Errorf("%d samples between the calls", len(head)-len(wa))
				}
			}},
		{"hold-2s", append(pkts(a, 0, 100, 0, 1, false), pkts(b, 3*time.Second, 150, 24000, 1, false)...),
			func(t *testing.T, out []int16, s playout.StreamStats) {
				if firstDiff(out[:len(wa)], wa) >= 0 {
					t.Fatal("before hold differs")
				}
				if firstDiff(out[len(out)-len(wb):], wb) >= 0 {
					t.Fatal("after hold differs: stale or missing audio")
				}
				gap := out[len(wa) : len(out)-len(wb)]
				if d := len(gap) - 2*8000; d < -frame || d > frame {
					t.Errorf("the hold lasts %d samples, want 16000", len(gap))
				}
				for i, v := range gap[maxUnderrunSamples:] {
					if v != 0 {
						t.Fatalf("sound %d at %d samples into the hold", v, i+maxUnderrunSamples)
					}
				}
			}},
		{"hold-2s-timestamps-stopped", append(pkts(a, 0, 100, 0, 1, false), pkts(b, 3*time.Second, 150, 8000, 1, false)...),
			func(t *testing.T, out []int16, s playout.StreamStats) {
				if firstDiff(out[len(out)-len(wb):], wb) >= 0 || firstDiff(out[:len(wa)], wa) >= 0 {
					t.Fatal("audio around the hold differs")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sortArrivals(tc.arr)
			out, st := runRenderer(t, playout.Config{}, tc.arr)
			tc.check(t, out, st.Dir(playout.FromAgent))
		})
	}
}

const maxUnderrunSamples = 480

// TestMixSaturates: both directions are summed with saturation.
func TestMixSaturates(t *testing.T) {
	loud := make([]byte, 160*50)
	for i := range loud {
		loud[i] = 0x80 // µ-law +32124
	}
	var arr []arrival
	for i := range 50 {
		at := time.Duration(i) * 20 * time.Millisecond
		arr = append(arr, arrival{at, playout.FromAgent, rtpPacket(0, uint16(i), uint32(i*160), 1, false, loud[i*160:(i+1)*160])},
			arrival{at, playout.ToAgent, rtpPacket(0, uint16(i), uint32(i*160), 2, false, loud[i*160:(i+1)*160])})
	}
	out, _ := runRenderer(t, playout.Config{}, arr)
	if len(out) != len(loud) {
		t.Fatalf("%d samples", len(out))
	}
	for i, v := range out {
		if v != 32767 {
			t.Fatalf("sample %d = %d, want 32767", i, v)
		}
	}
}

func TestUnknownCodecReportedOnce(t *testing.T) {
	var arr []arrival
	for i := range 20 {
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
			rtpPacket(99, uint16(i), uint32(i*160), 1, false, make([]byte, 160))})
	}
	var logs countHandler
	out, st := runRenderer(t, playout.Config{Logger: newLogger(&logs)}, arr)
	if len(out) != 0 || st.Dir(playout.FromAgent).UnknownCodec != 20 || logs.n != 1 {
		t.Errorf("out %d, unknown %d, log lines %d", len(out), st.Dir(playout.FromAgent).UnknownCodec, logs.n)
	}
	// Mapped by configuration, the same type plays.
	out, _ = runRenderer(t, playout.Config{PayloadTypes: map[uint8]playout.Codec{99: playout.CodecPCMA}}, arr)
	if len(out) != 20*160 {
		t.Errorf("mapped dynamic type: %d samples", len(out))
	}
}
