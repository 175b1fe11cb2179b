package playout_test

import (
	"math"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/g722"
	"github.com/silentmon/silentmon/playout"
)

// sine returns n samples of a tone at rate.
func sine(hz, amp float64, rate, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(math.Round(amp * math.Sin(2*math.Pi*hz*float64(i)/float64(rate))))
	}
	return out
}

// goertzel returns the power of s at hz.
func goertzel(s []int16, hz float64, rate int) float64 {
	c := 2 * math.Cos(2*math.Pi*hz/float64(rate))
	var s1, s2 float64
	for _, v := range s {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

// loudestHz returns the frequency, on a 10 Hz grid below rate/2, where s
// has the most power.
func loudestHz(s []int16, rate int) float64 {
	best, hz := -1.0, 0.0
	for f := 10.0; f < float64(rate)/2; f += 10 {
		if p := goertzel(s, f, rate); p > best {
			best, hz = p, f
		}
	}
	return hz
}

// checkTone asserts that out (at SampleRate) is a tone of hz whose level
// is within 1 dB of in's.
func checkTone(t *testing.T, out, in []int16, hz float64) {
	t.Helper()
	if len(out) < playout.SampleRate/2 {
		t.Fatalf("%d samples out, want at least half a second", len(out))
	}
	w := out[playout.SampleRate/10:]
	if f := loudestHz(w, playout.SampleRate); f != hz {
		t.Errorf("loudest at %.0f Hz, want %.0f", f, hz)
	}
	db := 20 * math.Log10(rms(w)/rms(in[len(in)/10:]))
	if math.Abs(db) > 1 {
		t.Errorf("level %+.2f dB from the input, want within 1 dB", db)
	}
	t.Logf("tone %.0f Hz: level %+.2f dB from the input", hz, db)
}

// g722Packets encodes a 16 kHz tone into 20 ms G.722 payloads (160 bytes).
func g722Packets(t testing.TB, in []int16) [][]byte {
	t.Helper()
	if !playout.G722BuiltIn {
		t.Skip("skipping: G.722 is not built in (needs cgo and libspandsp-dev)")
	}
	enc, err := g722.NewEncoder(16000)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out [][]byte
	for off := 0; off+320 <= len(in); off += 320 {
		p := make([]byte, 160)
		if n, err := enc.Encode(in[off:off+320], p); err != nil || n != 160 {
			t.Fatalf("encode: %d, %v", n, err)
		}
		out = append(out, p)
	}
	return out
}

// TestG722Tone: a G.722 call (static payload type 9, RTP clock 8000)
// plays as spandsp decodes it, sample for sample, and the tone comes out
// at its frequency and level. (Before G.722 was built in, payload type 9
// was unknown and nothing played.)
func TestG722Tone(t *testing.T) {
	in := sine(1000, 8000, 16000, 2*16000)
	pays := g722Packets(t, in)
	want, arr := g722Session(t, pays, playout.SampleRate)
	out, st := runRenderer(t, playout.Config{}, arr)
	if i := firstDiff(out, want); i >= 0 {
		t.Fatalf("differs from spandsp at sample %d (%d vs %d samples)", i, len(out), len(want))
	}
	checkTone(t, out, sine(1000, 8000, 8000, 16000), 1000)
	if s := st.Dir(playout.ToAgent); s.Codec != playout.CodecG722 || s.Frames != uint64(len(pays)) || s.UnknownCodec != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestG722Loss: lost packets are concealed, not silent, and the output
// keeps its length.
func TestG722Loss(t *testing.T) {
	pays := g722Packets(t, sine(500, 8000, 16000, 2*16000))
	var arr []arrival
	for i, p := range pays {
		if i%10 == 5 {
			continue
		}
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
			rtpPacket(9, uint16(i), uint32(i*160), 3, false, p)})
	}
	out, st := runRenderer(t, playout.Config{}, arr)
	s := st.Dir(playout.FromAgent)
	if len(out) != len(pays)*160 || s.Lost != uint64(len(pays)/10) || s.Concealed < s.Lost {
		t.Fatalf("%d samples, stats %+v", len(out), s)
	}
	for i := 5; i < len(pays); i += 10 {
		if r := rms(out[i*160 : i*160+80]); r < 1000 {
			t.Errorf("lost packet %d concealed at RMS %.0f", i, r)
		}
	}
}

func TestCodecNamesAndRates(t *testing.T) {
	for _, tc := range []struct {
		enc   string
		codec playout.Codec
	}{
		{"G722/8000", playout.CodecG722},
		{"g722/8000/1", playout.CodecG722},
		{"G722/16000", playout.CodecUnknown},
		{"opus/48000/2", playout.CodecOpus},
		{"OPUS/48000", playout.CodecOpus},
		{"opus/8000", playout.CodecUnknown},
		{"opus/48000/3", playout.CodecUnknown},
		{"PCMU/8000", playout.CodecPCMU},
		{"iLBC/8000", playout.CodecUnknown},
	} {
		if got := playout.EncodingCodec(tc.enc); got != tc.codec {
			t.Errorf("EncodingCodec(%q) = %v, want %v", tc.enc, got, tc.codec)
		}
	}
	m, err := playout.ParsePayloadTypes([]string{"111=opus", "96=G722", "97=OPUS"})
	if err != nil || m[111] != playout.CodecOpus || m[96] != playout.CodecG722 || m[97] != playout.CodecOpus {
		t.Errorf("ParsePayloadTypes: %v, %v", m, err)
	}
	if c := (playout.Config{}).Codec(9); c != playout.CodecG722 {
		t.Errorf("static payload type 9 is %v, want G722", c)
	}
	if playout.CodecOpus.ClockRate() != 48000 || playout.CodecG722.ClockRate() != 8000 {
		t.Error("Opus's RTP clock must be 48000 Hz and G.722's 8000 Hz")
	}
	if playout.CodecG722.String() != "G722" || playout.CodecOpus.String() != "opus" {
		t.Errorf("names %q, %q", playout.CodecG722, playout.CodecOpus)
	}
	feats := map[string]bool{}
	for _, f := range playout.Features() {
		feats[f] = true
	}
	for _, c := range []struct {
		name string
		in   bool
	}{{"G.722", playout.G722BuiltIn}, {"Opus", playout.OpusBuiltIn}} {
		want := c.name + " left out"
		if c.in {
			want = c.name + " built in"
		}
		if !feats[want] {
			t.Errorf("Features() %v lacks %q", playout.Features(), want)
		}
	}
}

// g722Session decodes pays with spandsp at rate (the samples a session
// at that rate must play) and returns them with the packets' arrivals:
// one every 20 ms towards the agent, sequence numbers and timestamps
// wrapping.
func g722Session(t *testing.T, pays [][]byte, rate int) (want []int16, arr []arrival) {
	t.Helper()
	dec, err := g722.NewDecoder(rate)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	n := 160 * rate / 8000
	for i, p := range pays {
		buf := make([]int16, n)
		if got, err := dec.Decode(p, buf); err != nil || got != n {
			t.Fatal(got, err)
		}
		want = append(want, buf...)
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.ToAgent,
			rtpPacket(9, uint16(i+65500), uint32(i*160)-800, 7, i == 0, p)})
	}
	return want, arr
}
