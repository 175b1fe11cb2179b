package playout

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// timedPkt is one packet of a simulated stream and when it arrives.
type timedPkt struct {
	at  time.Duration
	pkt []byte
}

// simStream makes n 20 ms PCMU packets (SSRC 9) whose media time runs at
// rate times the receiver's clock (1.005: the sender's clock is 0.5%
// fast), each delayed by delay(k), sorted by arrival. A sequence number in
// pause starts a talkspurt after a gap of that many packets' time.
func simStream(n int, rate float64, pause map[int]int, delay func(k int) time.Duration) []timedPkt {
	var out []timedPkt
	media := 0 // in packets, pauses included
	for k := range n {
		media += pause[k]
		b := make([]byte, 12+160)
		b[0], b[1] = 0x80, 0
		if pause[k] > 0 {
			b[1] |= 0x80
		}
		binary.BigEndian.PutUint16(b[2:], uint16(k))
		binary.BigEndian.PutUint32(b[4:], uint32(media*160))
		binary.BigEndian.PutUint32(b[8:], 9)
		for i := 12; i < len(b); i++ {
			b[i] = byte(k*7+i) | 0x10 // never a zero sample
		}
		sent := time.Duration(float64(media) * float64(20*time.Millisecond) / rate)
		out = append(out, timedPkt{sent + delay(k), b})
		media++
	}
	slices.SortStableFunc(out, func(a, b timedPkt) int { return int(a.at - b.at) })
	return out
}

// simRun pushes the packets into a Renderer (not real-time) rendering
// every 10 ms, then flushes. level reports, after each push while
// playing, the buffered media ahead of the playout point in ms.
func simRun(t *testing.T, pkts []timedPkt, level func(at time.Duration, ms float64)) (int, StreamStats) {
	t.Helper()
	r := NewRenderer(Config{}, 1, false)
	defer r.Close()
	start := time.Unix(5000, 0)
	out := 0
	next := time.Duration(0)
	for _, p := range pkts {
		for ; next <= p.at; next += 10 * time.Millisecond {
			for c := r.Render(start.Add(next)); len(c) > 0; c = r.Render(start.Add(next)) {
				out += len(c)
			}
		}
		if err := r.Push(FromAgent, start.Add(p.at), p.pkt); err != nil {
			t.Fatal(err)
		}
		if s := r.last; s != nil && s.state == stPlaying && level != nil {
			hi := &s.slots[s.highSeq&(numSlots-1)]
			if hi.used && hi.seq == s.highSeq {
				level(p.at, float64(hi.ts+int64(hi.samples)-s.playTS)/8)
			}
		}
	}
	for c := r.Flush(); len(c) > 0; c = r.Flush() {
		out += len(c)
	}
	return out, r.Stats().Dir(FromAgent)
}

// TestClockDrift: over 60 s a sender whose clock runs 0.5% fast or slow
// against the playout clock is followed by slips (a packet skipped) or
// stretches (a frame inserted): the delay stays bounded near the target
// instead of growing or draining by 300 ms, and the output's length stays
// within a few frames of the media's duration on the playout clock.
func TestClockDrift(t *testing.T) {
	const n = 3000 // 60 s
	for _, tc := range []struct {
		name   string
		rate   float64
		jitter int // ms, uniform
	}{
		{"sender 0.5% fast", 1.005, 10},
		{"sender 0.5% slow", 0.995, 10},
		{"same clock", 1, 10},
		{"sender 0.5% fast, 60 ms jitter", 1.005, 60},
		{"sender 0.5% slow, 60 ms jitter", 0.995, 60},
		{"same clock, 60 ms jitter", 1, 60},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(7, 8))
			jit := make([]time.Duration, n)
			for k := range jit {
				jit[k] = time.Duration(rng.IntN(tc.jitter*1000)) * time.Microsecond
			}
			pkts := simStream(n, tc.rate, nil, func(k int) time.Duration { return 30*time.Millisecond + jit[k] })
			var maxLvl, minLvl float64 = 0, 1e9
			out, s := simRun(t, pkts, func(at time.Duration, ms float64) {
				if at > 10*time.Second {
					maxLvl, minLvl = max(maxLvl, ms), min(minLvl, ms)
				}
			})
			ideal := float64(n*160) / tc.rate // the media's length on the playout clock
			drift := int(float64(n*160) - ideal)
			t.Logf("out %d samples, ideal %.0f (drift %d); level %.1f to %.1f ms; target %.1f ms; stats %+v",
				out, ideal, drift, minLvl, maxLvl, s.TargetMs, s)
			if d := float64(out) - ideal; d > 5*160 || d < -5*160 {
				t.Errorf("output %d samples, %.0f from the ideal %.0f: drift not followed", out, d, ideal)
			}
			// Level bounded: never more than target + slip margin +
			// the jitter + two packets.
			if maxLvl > s.TargetMs+float64(slipMargin)/8+float64(tc.jitter)+40 {
				t.Errorf("buffer level up to %.1f ms with a target of %.1f ms: delay grew", maxLvl, s.TargetMs)
			}
			switch {
			case tc.rate > 1:
				if want := drift / 160; s.Slips < uint64(want)*2/3 || s.Slips > uint64(want)*3/2 || s.Stretches > 1 {
					t.Errorf("%d slips and %d stretches, want about %d slips", s.Slips, s.Stretches, want)
				}
			case tc.rate < 1:
				if want := -drift / 160; s.Stretches < uint64(want)*2/3 || s.Stretches > uint64(want)*3/2 || s.Slips > 1 {
					t.Errorf("%d stretches and %d slips, want about %d stretches", s.Stretches, s.Slips, want)
				}
			default:
				if s.Slips+s.Stretches > 1 || s.Late > 0 {
					t.Errorf("%d slips, %d stretches, %d late with no drift", s.Slips, s.Stretches, s.Late)
				}
			}
			if s.Late+s.Lost > 10 {
				t.Errorf("%d late and %d lost: drift corrected by losing packets", s.Late, s.Lost)
			}
		})
	}
}

// TestJitterSpike: a delay spike inside a talkspurt (the network stalls
// for 100 ms, then releases the packets at once) cannot be absorbed by a
// 40 ms buffer, but it raises the target, and the raised target takes
// effect at the next talkspurt, which then absorbs the same spike without
// losing or concealing anything.
func TestJitterSpike(t *testing.T) {
	const spike = 5 // packets held back: the first waits 100 ms more
	stall := func(first int) func(k int) time.Duration {
		return func(k int) time.Duration {
			if k >= first && k <= first+spike {
				return 30*time.Millisecond + time.Duration(first+spike-k)*20*time.Millisecond
			}
			return 30 * time.Millisecond
		}
	}
	s1, s2 := stall(100), stall(170)
	delay := func(k int) time.Duration { return max(s1(k), s2(k)) }
	// Talkspurt 1: packets 0-149, a 1 s pause, talkspurt 2: 150-299.
	pkts := simStream(300, 1, map[int]int{150: 50}, delay)
	split := 0
	for i, p := range pkts {
		if binary.BigEndian.Uint16(p.pkt[2:]) == 150 {
			split = i
		}
	}
	r := NewRenderer(Config{}, 1, false)
	defer r.Close()
	start := time.Unix(5000, 0)
	next := time.Duration(0)
	var mid StreamStats
	var targetBefore, targetAfter float64
	for i, p := range pkts {
		for ; next <= p.at; next += 10 * time.Millisecond {
			for c := r.Render(start.Add(next)); len(c) > 0; c = r.Render(start.Add(next)) {
			}
		}
		if i == 99 {
			targetBefore = r.Stats().Dir(FromAgent).TargetMs
		}
		if i == split {
			mid = r.Stats().Dir(FromAgent)
			targetAfter = mid.TargetMs
		}
		r.Push(FromAgent, start.Add(p.at), p.pkt)
	}
	for c := r.Flush(); len(c) > 0; c = r.Flush() {
	}
	end := r.Stats().Dir(FromAgent)
	t.Logf("target %.1f ms before the spike, %.1f ms at the next talkspurt; talkspurt 1 %+v; end %+v", targetBefore, targetAfter, mid, end)
	bad := func(s StreamStats) uint64 { return s.Late + s.Lost + s.Stale + s.Concealed }
	if bad(mid) == 0 {
		t.Fatalf("the spike did no harm in a 40 ms buffer: the test stalls too little")
	}
	if targetAfter < max(targetBefore+30, 80) {
		t.Errorf("target %.1f ms before the spike, %.1f ms after: it did not adapt", targetBefore, targetAfter)
	}
	if d := bad(end) - bad(mid); d != 0 {
		t.Errorf("the same spike in the next talkspurt cost %d packets or frames: the raised target did not take effect", d)
	}
	if end.Talkspurts < 1 {
		t.Errorf("no talkspurt start counted: %+v", end)
	}
}
