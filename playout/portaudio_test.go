//go:build cgo && !noportaudio

package playout_test

import (
	"encoding/binary"
	"os"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// TestPortAudioALSAFile plays a G.711 stream through PortAudio into an
// ALSA file device and checks the raw samples equal the decode.
func TestPortAudioALSAFile(t *testing.T) {
	raw := testutil.ALSAFileDevice(t)
	sink, err := playout.OpenSink("portaudio")
	if err != nil {
		t.Skipf("skipping: no PortAudio device through ALSA here: %v", err)
	}
	if rs, ok := sink.(interface{ Rate() int }); ok && rs.Rate() != 8000 {
		sink.Close()
		t.Skipf("skipping: the ALSA file device opened at %d Hz, not 8 kHz", rs.Rate())
	}
	clk := audiotest.NewClock(t0)
	p := playout.NewPlayer(playout.Config{Clock: clk}, sink)
	audio := speechLike(8000, false, 4)
	for off := 0; off < len(audio); off += 160 {
		p.Push(playout.FromAgent, clk.Now(), rtpPacket(0, uint16(off/160), uint32(off), 9, false, audio[off:off+160]))
		clk.Advance(20 * time.Millisecond)
	}
	clk.Advance(200 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(raw)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]int16, len(b)/2)
	for i := range got {
		got[i] = int16(binary.LittleEndian.Uint16(b[2*i:]))
	}
	want := decodeRef(audio, false)
	// The device may pad its last period with silence; everything we
	// wrote must be there, exactly, first.
	if len(got) < len(want) || firstDiff(got[:len(want)], want) >= 0 {
		t.Fatalf("device received %d samples, differing from the decode at %d", len(got), firstDiff(got[:min(len(got), len(want))], want))
	}
}
