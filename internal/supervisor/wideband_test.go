package supervisor

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/g722"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// g722Call sends a 16 kHz tone in G.722 (payload type 9, 160 bytes per
// 20 ms); want is spandsp's wideband decode of every payload sent.
type g722Call struct {
	*call
	enc  *g722.Encoder
	ref  *g722.Decoder
	want []int16
}

func newG722Call(t *testing.T, id string, hz float64, n byte) *g722Call {
	t.Helper()
	if !playout.G722BuiltIn {
		t.Skip("skipping: G.722 is not built in (needs cgo and libspandsp-dev)")
	}
	enc, err := g722.NewEncoder(16000)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := g722.NewDecoder(16000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close(); ref.Close() })
	return &g722Call{call: newCall(id, hz, n), enc: enc, ref: ref}
}

func (c *g722Call) packet(t *testing.T) []byte {
	pcm := make([]int16, 320)
	for i := range pcm {
		pcm[i] = int16(8000 * math.Sin(2*math.Pi*c.hz*float64(c.k)/16000))
		c.k++
	}
	b := c.header(9, 160)[:12+160]
	if n, err := c.enc.Encode(pcm, b[12:]); err != nil || n != 160 {
		t.Fatalf("encode: %d, %v", n, err)
	}
	out := make([]int16, 320)
	if n, err := c.ref.Decode(b[12:], out); err != nil || n != 320 {
		t.Fatalf("decode: %d, %v", n, err)
	}
	c.want = append(c.want, out...)
	c.seq++
	c.ts += 160
	return b
}

// wavSamples returns the samples of a mono 16-bit WAV of any rate.
func wavSamples(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 44 {
		t.Fatalf("%s: %d bytes, %v", path, len(b), err)
	}
	pcm := make([]int16, (len(b)-44)/2)
	for i := range pcm {
		pcm[i] = int16(binary.LittleEndian.Uint16(b[44+2*i:]))
	}
	return pcm
}

func wavRate(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 44 {
		t.Fatalf("%s: %d bytes, %v", path, len(b), err)
	}
	return int(binary.LittleEndian.Uint32(b[24:]))
}

// TestWidebandSession: a session whose first media is G.722 plays at 16
// kHz: its WAV records 16000 Hz and holds spandsp's wideband decode of
// every payload, sample for sample, so a 6 kHz tone survives; its
// listeners' frames are 16 kHz too (320 stereo frames per 20 ms, Rate
// 16000) and carry the 6 kHz tone at its level, not folded to 2 kHz. A
// G.711 session beside it keeps its 8 kHz file.
func TestWidebandSession(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{session}.wav")})
	w := newG722Call(t, "wide", 6000, 5)
	n := newCall("narrow", 1000, 6)
	var tap *Tap
	var heard []int16 // the tap's left channel (from-agent)
	var badFrames int
	drain := func() {
		for {
			select {
			case fr := <-tap.Frames():
				if fr.Rate != 16000 || fr.Len() != 320 {
					badFrames++
				}
				for i := 0; i < fr.Len(); i++ {
					heard = append(heard, fr.Samples[2*i])
				}
			default:
				return
			}
		}
	}
	for i := range 100 {
		f := frame(t, w.id, w.call, w.packet(t))
		if err := r.sup.Media(r.peer, &f); err != nil {
			t.Fatal(err)
		}
		if err := r.media(n.id, n); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			var err error
			if tap, err = r.sup.Tap("wide"); err != nil {
				t.Fatal(err)
			}
		}
		r.clock.Advance(20 * time.Millisecond)
		drain()
	}
	r.settle()
	drain()
	tap.Close()
	if err := r.sup.Close(); err != nil {
		t.Fatal(err)
	}
	wide, narrow := filepath.Join(dir, "wide.wav"), filepath.Join(dir, "narrow.wav")
	if got := wavRate(t, wide); got != 16000 {
		t.Errorf("G.722 session's WAV at %d Hz, want 16000", got)
	}
	if got := wavRate(t, narrow); got != 8000 {
		t.Errorf("G.711 session's WAV at %d Hz, want 8000", got)
	}
	wavSizes(t, wide)
	checkExact(t, "wide", wavSamples(t, wide), w.want)
	checkExact(t, "narrow", readWAV(t, narrow), n.sent)

	// The listeners' frames: 16 kHz, 2 s of the call, the 6 kHz tone at
	// its level (8000), nothing folded to 2 kHz.
	if badFrames != 0 {
		t.Errorf("%d tap frames not of 320 stereo frames at 16000 Hz", badFrames)
	}
	if len(heard) < 30000 || len(heard) > 34000 {
		t.Errorf("tap gave %d samples for 2 s of call, want about 32000 at 16 kHz", len(heard))
	}
	if len(heard) > 24000 {
		// ToneLevel measures at 8 kHz: half the frequency reads 16 kHz.
		win := heard[8000:24000]
		if l := audiotest.ToneLevel(win, 6000/2); l < 7000 || l > 9000 {
			t.Errorf("tap holds the 6 kHz tone at level %.1f, want about 8000", l)
		}
		if l := audiotest.ToneLevel(win, 2000/2); l > 50 {
			t.Errorf("tap holds a 2 kHz tone (6 kHz folded) at level %.1f, want none", l)
		}
	}
}

// TestWidebandOff: with Narrowband a G.722 session plays at 8 kHz as
// before wideband output: its WAV records 8000 Hz.
func TestWidebandOff(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{session}.wav"), Narrowband: true})
	w := newG722Call(t, "w8", 1000, 7)
	for range 20 {
		f := frame(t, w.id, w.call, w.packet(t))
		if err := r.sup.Media(r.peer, &f); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(20 * time.Millisecond)
	}
	r.settle()
	if err := r.sup.Close(); err != nil {
		t.Fatal(err)
	}
	if got := wavRate(t, filepath.Join(dir, "w8.wav")); got != 8000 {
		t.Errorf("WAV at %d Hz, want 8000 with Narrowband", got)
	}
}
