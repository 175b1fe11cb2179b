package playout_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/opus"
	"github.com/silentmon/silentmon/playout"
)

// opusPackets encodes a 48 kHz signal into 20 ms Opus packets.
func opusPackets(t testing.TB, in []int16, fec bool) [][]byte {
	t.Helper()
	if !playout.OpusBuiltIn {
		t.Skip("skipping: Opus is not built in (needs cgo and libopus-dev)")
	}
	cfg := opus.EncoderConfig{Bitrate: 24000}
	if fec {
		cfg.FEC, cfg.LossPercent = true, 20
	}
	enc, err := opus.NewEncoder(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out [][]byte
	buf := make([]byte, 1275)
	for off := 0; off+960 <= len(in); off += 960 {
		n, err := enc.Encode(in[off:off+960], buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(buf[:n]))
	}
	return out
}

// opusRef decodes packets with libopus at SampleRate, as a reference.
func opusRef(t testing.TB, pkts [][]byte) []int16 {
	t.Helper()
	dec, err := opus.NewDecoder(playout.SampleRate)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var want []int16
	buf := make([]int16, 960)
	for _, p := range pkts {
		n, err := dec.Decode(p, buf)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, buf[:n]...)
	}
	return want
}

// opusArrivals sends pkts as payload type 111 with 48 kHz timestamps
// (960 per 20 ms) that wrap past 2^32, leaving out the indexes in lost.
func opusArrivals(pkts [][]byte, lost map[int]bool) []arrival {
	var arr []arrival
	for i, p := range pkts {
		if lost[i] {
			continue
		}
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
			rtpPacket(111, uint16(i+100), uint32(i*960)-20*960, 0x0b05, i == 0, p)})
	}
	return arr
}

// TestOpusTone: an Opus call on a dynamic payload type (--codec 111=opus)
// with its 48 kHz RTP clock plays 160 samples per 20 ms packet at 8 kHz,
// exactly as libopus decodes it, across a timestamp wrap; the tone comes
// out at its frequency and level. (Before, Opus was unknown: nothing
// played; an 8000 Hz clock would read each 960-tick step as a 120 ms
// pause.)
func TestOpusTone(t *testing.T) {
	in := sine(1000, 8000, 48000, 2*48000)
	pkts := opusPackets(t, in, false)
	want := opusRef(t, pkts)
	cfg := playout.Config{PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}
	out, st := runRenderer(t, cfg, opusArrivals(pkts, nil))
	if i := firstDiff(out, want); i >= 0 {
		t.Fatalf("differs from libopus at sample %d (%d vs %d samples)", i, len(out), len(want))
	}
	checkTone(t, out, sine(1000, 8000, 8000, 16000), 1000)
	s := st.Dir(playout.FromAgent)
	if s.Codec != playout.CodecOpus || s.Frames != uint64(len(pkts)) || s.Talkspurts != 0 || s.Lost != 0 {
		t.Errorf("stats %+v", s)
	}
}

// TestOpusFEC: a lost packet is rebuilt from the next packet's in-band
// FEC data: the output there is close to the lossless decode (libopus's
// concealment alone is far off on a tone, see internal/opus), and the
// call keeps its length.
func TestOpusFEC(t *testing.T) {
	in := sine(700, 8000, 48000, 48000)
	pkts := opusPackets(t, in, true)
	ref := opusRef(t, pkts)
	lost := map[int]bool{20: true, 30: true} // packets whose successor carries FEC data (libopus decides per frame)
	cfg := playout.Config{PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}
	out, st := runRenderer(t, cfg, opusArrivals(pkts, lost))
	if len(out) != len(ref) {
		t.Fatalf("%d samples, want %d", len(out), len(ref))
	}
	for i := range lost {
		seg := out[i*160 : i*160+160]
		d := make([]int16, 160)
		for k := range d {
			d[k] = seg[k] - ref[i*160+k]
		}
		if e, s := rms(d), rms(ref[i*160:i*160+160]); e > s/5 {
			t.Errorf("lost packet %d: error RMS %.0f against the lossless decode (signal %.0f): not rebuilt from FEC", i, e, s)
		} else {
			t.Logf("lost packet %d: error RMS %.0f, signal %.0f", i, e, s)
		}
	}
	if s := st.Dir(playout.FromAgent); s.Lost != 2 {
		t.Errorf("stats %+v", s)
	}
}
