package playout_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/internal/g729"
	"github.com/silentmon/silentmon/playout"
)

// g729Payloads encodes speech-like audio into 20 ms G.729 payloads.
func g729Payloads(t testing.TB, seconds int) [][]byte {
	t.Helper()
	if !playout.G729BuiltIn {
		t.Skip("skipping: G.729 is not built in (needs cgo and libbcg729-dev)")
	}
	lp := g711.DecodeUlaw(speechLike(8000*seconds, false, 9))
	pcm := make([]int16, len(lp)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(lp[2*i:]))
	}
	enc, err := g729.NewEncoder(false)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	var out [][]byte
	for off := 0; off+160 <= len(pcm); off += 160 {
		p := make([]byte, 0, 20)
		for f := range 2 {
			var b [10]byte
			n, err := enc.Encode(pcm[off+80*f:off+80*f+80], b[:])
			if err != nil || n != 10 {
				t.Fatalf("encode: %d, %v", n, err)
			}
			p = append(p, b[:n]...)
		}
		out = append(out, p)
	}
	return out
}

// TestG729Lossless: the output equals bcg729 decoding the same frames.
func TestG729Lossless(t *testing.T) {
	pays := g729Payloads(t, 3)
	dec, err := g729.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	var want []int16
	var arr []arrival
	for i, p := range pays {
		buf := make([]int16, 160)
		n, err := dec.DecodePayload(p, buf)
		if err != nil || n != 160 {
			t.Fatal(n, err)
		}
		want = append(want, buf...)
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.ToAgent,
			rtpPacket(18, uint16(i+65500), uint32(i*160), 3, i == 0, p)})
	}
	out, st := runRenderer(t, playout.Config{}, arr)
	if i := firstDiff(out, want); i >= 0 {
		t.Fatalf("differs from bcg729 at sample %d (%d vs %d samples)", i, len(out), len(want))
	}
	if s := st.Dir(playout.ToAgent); s.Codec != playout.CodecG729 || s.Frames != uint64(len(pays)) || s.MOS < 3.9 || s.MOS > 4.2 {
		t.Errorf("stats %+v", s)
	}
}

// TestG729Loss: losses and a SID frame are concealed by bcg729; nothing
// runs silent.
func TestG729Loss(t *testing.T) {
	pays := g729Payloads(t, 2)
	var arr []arrival
	for i, p := range pays {
		if i%10 == 5 {
			continue
		}
		arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
			rtpPacket(18, uint16(i), uint32(i*160), 3, false, p)})
	}
	out, st := runRenderer(t, playout.Config{}, arr)
	s := st.Dir(playout.FromAgent)
	if len(out) != len(pays)*160 || s.Lost != uint64(len(pays)/10) || s.Concealed < s.Lost {
		t.Fatalf("%d samples, stats %+v", len(out), s)
	}
	for i := 5; i < len(pays); i += 10 {
		nz := 0
		for _, v := range out[i*160 : i*160+160] {
			if v != 0 {
				nz++
			}
		}
		if nz < 80 {
			t.Errorf("lost frame %d concealed with %d non-zero samples", i, nz)
		}
	}
}
