package playout_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// digitCall describes a call whose phone sends a DTMF digit as RFC 4733
// telephone events in the voice's SSRC and sequence numbers, as phones
// do: during the digit's packet times the events replace the voice, one
// update per packet time (the digit's start timestamp, the duration so
// far), then the end packet three times, 5 ms apart, each on a sequence
// number of its own; the voice resumes after the digit.
type digitCall struct {
	slots      int              // 20 ms packet times
	digits     []int            // the digits' first slots
	n          int              // slots per digit
	tsPerSlot  uint32           // RTP clock ticks per 20 ms (160, or 960 for Opus)
	pt         uint8            // the voice's payload type
	voice      func(int) []byte // the voice payload of slot k
	drop       map[int]bool     // voice slots not sent (lost before the capture)
	eventPT    uint8            // 101
	comfortOne bool             // a single comfort noise packet (PT 13) instead of the digit's events
}

// arrivals returns the call's packets in arrival order.
func (c digitCall) arrivals() []arrival {
	var arr []arrival
	seq, ts0 := uint16(65530), uint32(4294967000) // both wrap
	for k := range c.slots {
		at := time.Duration(k) * 20 * time.Millisecond
		if from := c.digitAt(k); from >= 0 {
			if c.comfortOne {
				if k == from {
					arr = append(arr, arrival{at, playout.FromAgent,
						rtpPacket(13, seq, ts0+uint32(k)*c.tsPerSlot, 0x77, false, []byte{60})})
					seq++
				}
				continue
			}
			end := k == from+c.n-1
			dur := uint32(k-from+1) * c.tsPerSlot
			copies := 1
			if end {
				copies = 3
			}
			for i := range copies {
				p := []byte{5, 10, byte(dur >> 8), byte(dur)}
				if end {
					p[1] |= 0x80
				}
				arr = append(arr, arrival{at + time.Duration(i)*5*time.Millisecond, playout.FromAgent,
					rtpPacket(c.eventPT, seq, ts0+uint32(from)*c.tsPerSlot, 0x77, k == from && i == 0, p)})
				seq++
			}
			continue
		}
		if !c.drop[k] {
			arr = append(arr, arrival{at, playout.FromAgent,
				rtpPacket(c.pt, seq, ts0+uint32(k)*c.tsPerSlot, 0x77, k == 0 || c.digitAt(k-1) >= 0, c.voice(k))})
		}
		seq++
	}
	return arr
}

// digitAt returns the first slot of the digit covering slot k, or -1.
func (c digitCall) digitAt(k int) int {
	for _, from := range c.digits {
		if k >= from && k < from+c.n {
			return from
		}
	}
	return -1
}

// voicePackets returns how many voice packets the call sends.
func (c digitCall) voicePackets() int { return c.slots - len(c.digits)*c.n - len(c.drop) }

// TestDigitsInTheVoiceStream: telephone events that take sequence
// numbers between the voice packets are not counted as lost voice, are
// never decoded, and their time plays as silence rather than as
// concealment; the voice before and after plays exactly as it decodes. A
// voice packet really lost next to the digit counts once and is concealed
// (before the digit) or falls in the silence (after it). A comfort noise
// packet (payload type 13) before a pause holds its sequence number too.
// (Before, the events were dropped ahead of the jitter buffer: each one
// counted as a lost voice packet, 7 per digit here, and the digit was
// concealed as a loss.)
func TestDigitsInTheVoiceStream(t *testing.T) {
	const frame = 160
	audio := speechLike(150*frame, false, 3)
	want := decodeRef(audio, false)
	base := digitCall{slots: 150, digits: []int{50}, n: 5, tsPerSlot: 160, pt: 0, eventPT: 101,
		voice: func(k int) []byte { return audio[k*frame : (k+1)*frame] }}
	for _, tc := range []struct {
		name      string
		drop      []int
		comfort   bool
		lost      uint64
		concealed uint64
		silent    [2]int // slots of silence in the output
	}{
		{"digit", nil, false, 0, 0, [2]int{50, 55}},
		{"lost-before-digit", []int{49}, false, 1, 1, [2]int{50, 55}},
		{"lost-after-digit", []int{55}, false, 1, 0, [2]int{50, 56}},
		{"comfort-noise-then-pause", nil, true, 0, 0, [2]int{50, 55}},
	} {
		// At 40 ms of delay the buffer runs dry during the digit; at
		// 150 ms the voice after it is buffered before the digit plays.
		for _, delay := range []time.Duration{40 * time.Millisecond, 150 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/%v", tc.name, delay), func(t *testing.T) {
				c := base
				c.comfortOne = tc.comfort
				c.drop = map[int]bool{}
				for _, k := range tc.drop {
					c.drop[k] = true
				}
				out, st := runRenderer(t, playout.Config{MinDelay: delay}, c.arrivals())
				s := st.Dir(playout.FromAgent)
				if s.Lost != tc.lost || s.Late != 0 || s.Concealed != tc.concealed || s.Frames != uint64(c.voicePackets()) {
					t.Errorf("lost %d late %d concealed %d frames %d, want lost %d late 0 concealed %d frames %d",
						s.Lost, s.Late, s.Concealed, s.Frames, tc.lost, tc.concealed, c.voicePackets())
				}
				if len(out) != len(want) {
					t.Fatalf("%d samples out, the call is %d", len(out), len(want))
				}
				for _, k := range tc.drop {
					if k < tc.silent[0] {
						// concealed: the only samples that differ
						copy(out[k*frame:(k+1)*frame], want[k*frame:(k+1)*frame])
					}
				}
				a, b := tc.silent[0]*frame, tc.silent[1]*frame
				if i := firstDiff(out[:a], want[:a]); i >= 0 {
					t.Errorf("the voice before the digit differs at sample %d", i)
				}
				for i, v := range out[a:b] {
					if v != 0 {
						t.Fatalf("sample %d of the digit's %d is %d: concealed, not silent", i, b-a, v)
					}
				}
				if i := firstDiff(out[b:], want[b:]); i >= 0 {
					t.Errorf("the voice after the digit differs at sample %d of %d", i, len(want)-b)
				}
			})
		}
	}
}

// TestDigitsInTheVoiceStreamPlayer: through a live Player, a call with
// three digits in its voice stream, played with 150 ms of delay (the
// voice after a digit is buffered before the digit plays), reports no loss and a MOS as high as
// the same call without digits.
func TestDigitsInTheVoiceStreamPlayer(t *testing.T) {
	const frame = 160
	audio := speechLike(200*frame, false, 4)
	run := func(digits bool) playout.StreamStats {
		clk := audiotest.NewClock(t0)
		sink := audiotest.NewSink(1, false, clk)
		p := playout.NewPlayer(playout.Config{Clock: clk, MinDelay: 150 * time.Millisecond}, sink)
		c := digitCall{slots: 200, n: 5, tsPerSlot: 160, eventPT: 101,
			voice: func(k int) []byte { return audio[k*frame : (k+1)*frame] }}
		if digits {
			c.digits = []int{40, 80, 120}
		}
		arr := c.arrivals()
		start := clk.Now()
		for _, a := range arr {
			clk.Advance(start.Add(a.at).Sub(clk.Now()))
			if err := p.Push(a.dir, clk.Now(), a.pkt); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(time.Second)
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		return p.Stats().Dir(playout.FromAgent)
	}
	plain, dig := run(false), run(true)
	if dig.Lost != 0 || dig.Late != 0 || dig.Concealed != dig.Underruns {
		t.Errorf("with digits: lost %d late %d concealed %d (underruns %d), want no loss", dig.Lost, dig.Late, dig.Concealed, dig.Underruns)
	}
	if dig.MOS < plain.MOS {
		t.Errorf("MOS %.2f with digits, %.2f without: the digits count as loss", dig.MOS, plain.MOS)
	}
}

// TestDigitsInAnOpusStream: in an Opus call the events carry the voice's
// 48 kHz timestamps (telephone-event/48000); they hold their sequence
// numbers, the digit plays as silence, not as libopus's concealment, and
// the voice resumes.
func TestDigitsInAnOpusStream(t *testing.T) {
	in := sine(600, 8000, 48000, 3*48000)
	pkts := opusPackets(t, in, false)
	c := digitCall{slots: len(pkts), digits: []int{60}, n: 5, tsPerSlot: 960, pt: 111, eventPT: 101,
		voice: func(k int) []byte { return pkts[k] }}
	cfg := playout.Config{PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus, 101: playout.CodecNone}}
	out, st := runRenderer(t, cfg, c.arrivals())
	s := st.Dir(playout.FromAgent)
	if s.Lost != 0 || s.Late != 0 || s.Concealed != 0 || s.Frames != uint64(c.voicePackets()) {
		t.Errorf("lost %d late %d concealed %d frames %d, want 0 0 0 %d", s.Lost, s.Late, s.Concealed, s.Frames, c.voicePackets())
	}
	if len(out) != len(pkts)*160 {
		t.Fatalf("%d samples out, the call is %d", len(out), len(pkts)*160)
	}
	for i, v := range out[60*160 : 65*160] {
		if v != 0 {
			t.Fatalf("sample %d of the digit is %d: concealed, not silent", i, v)
		}
	}
	if lv := audiotest.ToneLevel(out[66*160:70*160], 600); lv < 4000 {
		t.Errorf("the tone after the digit is at %.0f, want about 8000", lv)
	}
}

// TestDigitsNoAllocs: once a call plays, its digits (event packets kept in
// the jitter buffer, the silence, the voice resuming) allocate nothing.
func TestDigitsNoAllocs(t *testing.T) {
	const frame = 160
	audio := speechLike(600*frame, false, 5)
	c := digitCall{slots: 600, n: 5, tsPerSlot: 160, eventPT: 101,
		voice: func(k int) []byte { return audio[k*frame : (k+1)*frame] }}
	for k := 20; k < 600; k += 15 {
		c.digits = append(c.digits, k)
	}
	arr := c.arrivals()
	r := playout.NewRenderer(playout.Config{MinDelay: 100 * time.Millisecond}, 1, false)
	defer r.Close()
	i := 0
	step := func() {
		at := arr[i].at
		for ; i < len(arr) && arr[i].at == at; i++ {
			if err := r.Push(arr[i].dir, t0.Add(at), arr[i].pkt); err != nil {
				t.Fatal(err)
			}
		}
		for b := r.Render(t0.Add(at)); len(b) > 0; b = r.Render(t0.Add(at)) {
		}
	}
	for i < len(arr) && arr[i].at < 2*time.Second { // several digits played
		step()
	}
	if n := testing.AllocsPerRun(300, step); n != 0 {
		t.Fatalf("%v allocations per push and render, want 0", n)
	}
	if s := r.Stats().Dir(playout.FromAgent); s.Lost != 0 || s.Frames == 0 {
		t.Errorf("lost %d, frames %d", s.Lost, s.Frames)
	}
}
