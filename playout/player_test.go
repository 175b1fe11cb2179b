package playout_test

import (
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// TestPlayerLosslessG711 is the end-to-end contract: a lossless, in-order
// G.711 stream comes out exactly as its payloads decode, nothing added.
func TestPlayerLosslessG711(t *testing.T) {
	for _, tc := range []struct {
		name  string
		pt    uint8
		alaw  bool
		dir   playout.Direction
		other bool // the other direction sends digital silence
	}{
		{"pcmu-from-agent", 0, false, playout.FromAgent, false},
		{"pcma-to-agent", 8, true, playout.ToAgent, false},
		{"pcmu-other-side-silent", 0, false, playout.FromAgent, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := audiotest.NewClock(t0)
			sink := audiotest.NewSink(1, false, clk)
			p := playout.NewPlayer(playout.Config{Clock: clk}, sink)
			audio := speechLike(8000*3, tc.alaw, 7) // 3 s
			const frame = 160
			var silence [frame]byte
			for i := range silence {
				silence[i] = 0xff // µ-law zero
				if tc.alaw {
					silence[i] = 0xd5
				}
			}
			seq, ts := uint16(65500), uint32(4294960000) // both wrap
			for off := 0; off < len(audio); off += frame {
				pkt := rtpPacket(tc.pt, seq, ts, 0x1234, off == 0, audio[off:off+frame])
				if err := p.Push(tc.dir, clk.Now(), pkt); err != nil {
					t.Fatal(err)
				}
				if tc.other {
					o := playout.FromAgent + playout.ToAgent - tc.dir
					p.Push(o, clk.Now(), rtpPacket(tc.pt, seq+7, ts+99, 0x9999, false, silence[:]))
				}
				seq++
				ts += frame
				clk.Advance(20 * time.Millisecond)
			}
			clk.Advance(time.Second) // let it play out in real time
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			got := sink.Samples()
			want := decodeRef(audio, tc.alaw)
			if i := firstDiff(got, want); i >= 0 {
				t.Fatalf("output differs from the decode at sample %d (got %d samples, want %d)", i, len(got), len(want))
			}
			// Concealment after the stream's end is counted (Underruns)
			// but never written: the comparison above proves it.
			st := p.Stats().Dir(tc.dir)
			if st.Frames != uint64(len(audio)/frame) || st.Concealed != st.Underruns || st.Late != 0 || st.Lost != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// TestPlayerLatency measures, through the injected clock, the delay from a
// packet's arrival to the write of its first sample to a real-time sink.
func TestPlayerLatency(t *testing.T) {
	clk := audiotest.NewClock(t0)
	sink := audiotest.NewSink(1, true, clk)
	cfg := playout.Config{Clock: clk}
	p := playout.NewPlayer(cfg, sink)
	audio := speechLike(8000, false, 3)
	for off := 0; off < len(audio); off += 160 {
		p.Push(playout.FromAgent, clk.Now(), rtpPacket(0, uint16(off/160), uint32(off), 1, false, audio[off:off+160]))
		clk.Advance(20 * time.Millisecond)
	}
	clk.Advance(300 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	w := sink.Writes()
	if len(w) == 0 {
		t.Fatal("nothing written")
	}
	lat := w[0].At.Sub(t0)
	target := p.Stats().Dir(playout.FromAgent).TargetMs
	t.Logf("arrival-to-sink latency of the first packet: %v (target %.1f ms)", lat, target)
	// A clean stream starts at the minimum target; its first sample
	// leaves within one 10 ms block of it.
	if target != playout.DefaultMinDelay.Seconds()*1000 {
		t.Errorf("target %.1f ms on a clean stream, want the minimum %v", target, playout.DefaultMinDelay)
	}
	if limit := playout.DefaultMinDelay + 10*time.Millisecond; lat > limit {
		t.Errorf("latency %v > minimum target + 10 ms = %v", lat, limit)
	}
}

func TestPlayerClosed(t *testing.T) {
	sink := audiotest.NewSink(1, false, nil)
	p := playout.NewPlayer(playout.Config{}, sink)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !sink.Closed() {
		t.Error("sink not closed")
	}
	if err := p.Push(playout.FromAgent, time.Now(), rtpPacket(0, 1, 1, 1, false, make([]byte, 160))); !errors.Is(err, playout.ErrClosed) {
		t.Errorf("Push after Close: %v, want ErrClosed", err)
	}
}

func TestPlayerBadInput(t *testing.T) {
	p := playout.NewPlayer(playout.Config{}, audiotest.NewSink(1, false, nil))
	defer p.Close()
	for _, tc := range []struct {
		name string
		dir  playout.Direction
		pkt  []byte
		want error
	}{
		{"direction", 3, rtpPacket(0, 1, 1, 1, false, make([]byte, 160)), playout.ErrBadDirection},
		{"short", playout.FromAgent, []byte{0x80, 0}, playout.ErrShortRTP},
		{"version", playout.FromAgent, make([]byte, 20), playout.ErrNotRTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := p.Push(tc.dir, time.Now(), tc.pkt); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if got := p.Stats().Invalid; got != 3 {
		t.Errorf("Invalid = %d, want 3", got)
	}
}

func TestOpenSink(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		spec string
		ok   bool
	}{
		{"null", true},
		{"wav:" + filepath.Join(dir, "a.wav"), true},
		{"wav:", false},
		{"wav", false},
		{"speaker", false},
		{"null:x", false},
		{"wav:" + filepath.Join(dir, "missing", "a.wav"), false},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := playout.OpenSink(tc.spec)
			if tc.ok != (err == nil) {
				t.Fatalf("OpenSink(%q) = %v", tc.spec, err)
			}
			if err != nil {
				if tc.spec != "" && !strings.Contains(err.Error(), tc.spec) {
					t.Errorf("error %q does not name the spec", err)
				}
				return
			}
			s.Close()
		})
	}
}

// readWAV returns the samples and channel count of a 16-bit PCM WAV.
func readWAV(t *testing.T, path string) ([]int16, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[0:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
		t.Fatalf("%s: not a canonical WAV", path)
	}
	if rate := binary.LittleEndian.Uint32(b[24:]); rate != 8000 {
		t.Fatalf("rate %d", rate)
	}
	n := int(binary.LittleEndian.Uint32(b[40:]))
	if riff := int(binary.LittleEndian.Uint32(b[4:])); riff != 36+n {
		t.Fatalf("RIFF size %d, data %d", riff, n)
	}
	if 44+n > len(b) {
		t.Fatalf("data size %d beyond file %d", n, len(b))
	}
	out := make([]int16, n/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[44+2*i:]))
	}
	return out, int(binary.LittleEndian.Uint16(b[22:]))
}

func TestWAVSink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.wav")
	s, err := playout.OpenSink("wav:" + path)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]int16, 8000*2+123)
	for i := range want {
		want[i] = int16(i*37 - 20000)
	}
	if err := s.Write(want[:9000]); err != nil {
		t.Fatal(err)
	}
	// After more than a second, the header is already valid on disk.
	got, _ := readWAV(t, path)
	if len(got) != 9000 || firstDiff(got, want[:9000]) >= 0 {
		t.Fatalf("mid-write file holds %d samples, want 9000 matching", len(got))
	}
	if err := s.Write(want[9000:]); err != nil {
		t.Fatal(err)
	}
	if sec := s.Seconds(); sec != float64(len(want))/8000 {
		t.Errorf("Seconds = %v", sec)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	got, ch := readWAV(t, path)
	if ch != 1 || firstDiff(got, want) >= 0 {
		t.Fatalf("file differs (channels %d, %d samples)", ch, len(got))
	}
	if err := s.Write(want); !errors.Is(err, playout.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

// TestPlayerWAV runs the contract through a real WAV file.
func TestPlayerWAV(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.wav")
	sink, err := playout.OpenSink("wav:" + path)
	if err != nil {
		t.Fatal(err)
	}
	clk := audiotest.NewClock(t0)
	p := playout.NewPlayer(playout.Config{Clock: clk}, sink)
	audio := speechLike(8000, false, 11)
	for off := 0; off < len(audio); off += 160 {
		p.Push(playout.ToAgent, clk.Now(), rtpPacket(0, uint16(off/160), uint32(off), 5, false, audio[off:off+160]))
		clk.Advance(20 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	got, _ := readWAV(t, path)
	if i := firstDiff(got, decodeRef(audio, false)); i >= 0 {
		t.Fatalf("WAV differs at sample %d (%d samples)", i, len(got))
	}
	if s := p.Stats().Seconds; s != 1 {
		t.Errorf("Seconds = %v, want 1", s)
	}
}

// TestCreateWAVNeverTruncates: call audio files are the owner's only, and
// an existing file is left as it was.
func TestCreateWAVNeverTruncates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "call.wav")
	s, err := playout.CreateWAV(path, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(make([]int16, 800)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != 44+1600 {
		t.Fatalf("mode %v, size %d; want 0600 and 1644 bytes", fi.Mode().Perm(), fi.Size())
	}
	if _, err := playout.CreateWAV(path, 1); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateWAV over an existing file: %v, want an error wrapping fs.ErrExist", err)
	}
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size() {
		t.Fatalf("the existing file was changed: %d bytes", fi2.Size())
	}
}
