package playout_test

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/internal/g729"
	"github.com/silentmon/silentmon/playout"
)

// vadCall encodes a call side with G.729 annex B (VAD and DTX): speech
// for the [start, end) sample ranges in talk, background noise of the
// given amplitude everywhere. Packets are 20 ms; a packet carries the
// speech frames up to and including a SID frame, and none is sent while
// every frame is silent (DTX: no sequence number used). It returns the
// arrivals (each packet 5 ms after its media time) and the input PCM.
func vadCall(t testing.TB, seconds int, talk [][2]int, noise float64) ([]arrival, []int16) {
	t.Helper()
	if !playout.G729BuiltIn {
		t.Skip("skipping: G.729 is not built in (needs cgo and libbcg729-dev)")
	}
	n := seconds * 8000
	lp := g711.DecodeUlaw(speechLike(n, false, 17))
	rng := rand.New(rand.NewPCG(3, 4))
	pcm := make([]int16, n)
	for i := range pcm {
		pcm[i] = int16(rng.NormFloat64() * noise)
	}
	for _, r := range talk {
		for i := r[0]; i < r[1]; i++ {
			pcm[i] += int16(binary.LittleEndian.Uint16(lp[2*i:]))
		}
	}
	enc, err := g729.NewEncoder(true)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var arr []arrival
	seq := uint16(40000)
	silent := true
	for off := 0; off+160 <= n; off += 160 {
		var p []byte
		sid := false
		ts := off // media time of the packet's first frame sent
		for f := range 2 {
			var b [10]byte
			k, err := enc.Encode(pcm[off+80*f:], b[:])
			if err != nil {
				t.Fatal(err)
			}
			if len(p) == 0 {
				ts = off + 80*f
			}
			if !sid {
				p = append(p, b[:k]...)
				sid = k == 2
			}
		}
		if len(p) == 0 {
			silent = true
			continue
		}
		at := time.Duration(off+160)*time.Second/8000 + 5*time.Millisecond
		arr = append(arr, arrival{at, playout.FromAgent, rtpPacket(18, seq, uint32(ts), 7, silent, p)})
		seq++
		silent = sid
	}
	return arr, pcm
}

func rms(x []int16) float64 {
	var e float64
	for _, v := range x {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(max(len(x), 1)))
}

// TestG729BComfortNoise: in the silences of a G.729B call with VAD (SID,
// then no packets), the output is comfort noise: never digital silence,
// at about the level of the sender's background noise, far below speech.
func TestG729BComfortNoise(t *testing.T) {
	const noise = 60.0
	talk := [][2]int{{0, 8000}, {24000, 32000}, {48000, 56000}} // 1 s speech, 2 s silence, ...
	arr, _ := vadCall(t, 7, talk, noise)
	sid, full := 0, 0
	for _, a := range arr {
		switch len(a.pkt) - 12 {
		case 2, 12:
			sid++
		case 20:
			full++
		}
	}
	if sid < 2 || len(arr) > 7*50*3/4 {
		t.Fatalf("the encoder sent %d packets (%d with a SID): no DTX to test", len(arr), sid)
	}
	out, st := runRenderer(t, playout.Config{}, arr)
	s := st.Dir(playout.FromAgent)
	t.Logf("%d packets, %d SID, %d samples out, stats %+v", len(arr), sid, len(out), s)

	// The output spans the call: its silences are written (comfort
	// noise), not squeezed out.
	if len(out) < 56000-800 || len(out) > 56000+4000 {
		t.Fatalf("%d samples out for a call of %d", len(out), 56000)
	}
	speech := rms(out[2000:6000])
	// The silences, away from their edges (VAD hangover, target delay).
	for _, gap := range [][2]int{{12000, 20000}, {36000, 44000}} {
		seg := out[gap[0]:gap[1]]
		zeros, run := 0, 0
		for _, v := range seg {
			if v == 0 {
				run++
				zeros = max(zeros, run)
			} else {
				run = 0
			}
		}
		lvl := rms(seg)
		t.Logf("silence %v: rms %.1f (input noise %.0f, speech %.0f), longest zero run %d", gap, lvl, noise, speech, zeros)
		if zeros > 40 {
			t.Errorf("silence %v holds %d zero samples in a row: digital silence, not comfort noise", gap, zeros)
		}
		if lvl < noise/4 || lvl > noise*4 || lvl > speech/20 {
			t.Errorf("silence %v: comfort noise rms %.1f, want about the sender's noise %.0f and far below speech %.0f", gap, lvl, noise, speech)
		}
	}
	if s.Comfort == 0 {
		t.Errorf("no comfort noise counted: %+v", s)
	}
}

// TestG729BComfortNoiseEnds: a stream that ends in a silence leaves no
// comfort noise tail when flushed, and a live stream's comfort noise stops
// after its bound.
func TestG729BComfortNoiseEnds(t *testing.T) {
	arr, _ := vadCall(t, 2, [][2]int{{0, 8000}}, 60)
	out, _ := runRenderer(t, playout.Config{}, arr)
	last := arr[len(arr)-1].pkt
	end := int(binary.BigEndian.Uint32(last[4:])) + (len(last)-12+8)/10*80
	if len(out) > end {
		t.Errorf("%d samples out, the last packet ends at %d: a comfort noise tail was written", len(out), end)
	}
	r := playout.NewRenderer(playout.Config{}, 1, true)
	defer r.Close()
	var tail []int16
	for _, a := range arr {
		r.Push(a.dir, t0.Add(a.at), a.pkt)
	}
	for ms := 0; ms < 40000; ms += 100 {
		now := t0.Add(time.Duration(ms) * time.Millisecond)
		for b := r.Render(now); len(b) > 0; b = r.Render(now) {
			if ms > 1500 {
				tail = append(tail, b...)
			}
		}
	}
	if lvl := rms(tail[:8000]); lvl < 10 {
		t.Errorf("real-time sink: rms %.1f after the speech, want comfort noise", lvl)
	}
	if lvl := rms(tail[len(tail)-8000:]); lvl != 0 {
		t.Errorf("real-time sink: rms %.1f 38 s after the last packet, want silence", lvl)
	}
}
