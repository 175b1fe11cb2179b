//go:build !cgo

package playout_test

import (
	"testing"
	"time"

	"github.com/silentmon/silentmon/playout"
)

// TestG722OpusLeftOut: without cgo, a G.722 or Opus stream plays nothing,
// is reported once in the log and counted per packet, and Features says
// both are left out, with G.729, the resampler and PortAudio.
func TestG722OpusLeftOut(t *testing.T) {
	if playout.G722BuiltIn || playout.OpusBuiltIn || playout.CodecG722.Decodable() || playout.CodecOpus.Decodable() {
		t.Fatal("G.722 or Opus reported built in without cgo")
	}
	for _, tc := range []struct {
		pt   uint8
		step uint32
	}{{9, 160}, {111, 960}} {
		var arr []arrival
		for i := range 20 {
			arr = append(arr, arrival{time.Duration(i) * 20 * time.Millisecond, playout.FromAgent,
				rtpPacket(tc.pt, uint16(i), uint32(i)*tc.step, 1, false, make([]byte, 80))})
		}
		var logs countHandler
		cfg := playout.Config{Logger: newLogger(&logs), PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}
		out, st := runRenderer(t, cfg, arr)
		if len(out) != 0 || st.Dir(playout.FromAgent).UnknownCodec != 20 || logs.n != 1 {
			t.Errorf("payload type %d: out %d, unknown %d, log lines %d", tc.pt, len(out), st.Dir(playout.FromAgent).UnknownCodec, logs.n)
		}
	}
	f := playout.Features()
	want := map[string]bool{"G.722 left out": false, "Opus left out": false, "G.729 left out": false,
		"resampler left out": false, "PortAudio left out": false}
	for _, s := range f {
		if _, ok := want[s]; ok {
			want[s] = true
		}
	}
	for s, seen := range want {
		if !seen {
			t.Errorf("Features() %v lacks %q", f, s)
		}
	}
}
