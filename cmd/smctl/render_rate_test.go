package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/g722"
	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// writeG722Call writes a pcap of 2 s of G.722 (payload type 9) from
// 10.0.0.1:40000 to 10.0.0.2:40002 carrying a tone of hz encoded at
// 16 kHz: above 4 kHz it is wideband content an 8 kHz chain removes.
func writeG722Call(t *testing.T, hz float64) string {
	t.Helper()
	if !playout.G722BuiltIn {
		t.Skip("skipping: G.722 is not built in (needs cgo and libspandsp-dev)")
	}
	enc, err := g722.NewEncoder(16000)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	pcm := testutil.Tone(hz, 8000, 16000, 2*16000)
	a, c := netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:40002")
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var frames [][]byte
	var times []time.Time
	for i := 0; i*320 < len(pcm); i++ {
		p := make([]byte, 160)
		if n, err := enc.Encode(pcm[i*320:i*320+320], p); err != nil || n != 160 {
			t.Fatalf("encode: %d, %v", n, err)
		}
		frames = append(frames, capturetest.Build(capturetest.Frame{Src: a, Dst: c,
			RTP:     &capturetest.RTP{PayloadType: 9, Seq: uint16(100 + i), Timestamp: uint32(i * 160), SSRC: 0x722},
			Payload: p}))
		times = append(times, start.Add(time.Duration(i)*20*time.Millisecond))
	}
	path := filepath.Join(t.TempDir(), "g722.pcap")
	var buf bytes.Buffer
	if err := capturetest.WritePcap(&buf, capture.LinkEthernet, true, frames, times); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// renderTo runs smctl render with args and returns the WAV's rate and
// samples.
func renderTo(t *testing.T, in string, args ...string) (int, []int16, []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.wav")
	var stdout, stderr bytes.Buffer
	if code := cli.Run(newRootCmd(), append([]string{"render", in, "--out", out}, args...), &stdout, &stderr); code != 0 {
		t.Fatalf("render %v: exit %d: %s", args, code, stderr.String())
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pcm, _ := readWAVFile(t, out)
	return int(binary.LittleEndian.Uint32(b[24:])), pcm, b
}

// TestRenderWidebandRate: a G.722 capture renders at 16 kHz (the WAV's
// header says so, with the matching byte rate) and its 6 kHz tone is
// there at its level; --rate 48000 keeps it at 48 kHz; --rate 8000
// writes 8 kHz, where the tone cannot be.
func TestRenderWidebandRate(t *testing.T) {
	in := writeG722Call(t, 6000)
	for _, tc := range []struct {
		args []string
		rate int
		six  bool
	}{{nil, 16000, true}, {[]string{"--rate", "48000"}, 48000, true}, {[]string{"--rate", "8000"}, 8000, false}} {
		rate, pcm, b := renderTo(t, in, tc.args...)
		if rate != tc.rate || int(binary.LittleEndian.Uint32(b[28:])) != 2*tc.rate {
			t.Errorf("%v: WAV at %d Hz (byte rate %d), want %d", tc.args, rate, binary.LittleEndian.Uint32(b[28:]), tc.rate)
			continue
		}
		if len(pcm) < rate*3/2 {
			t.Fatalf("%v: %d samples, want about 2 s at %d Hz", tc.args, len(pcm), rate)
		}
		w := pcm[rate/4 : rate/4+rate] // a whole second inside the call
		if tc.six {
			if f := testutil.Loudest(w, rate, float64(rate)/2); f != 6000 {
				t.Errorf("%v: loudest at %.0f Hz, want 6000", tc.args, f)
			}
			if db := 20 * math.Log10(testutil.RMS(w)/(8000/math.Sqrt2)); math.Abs(db) > 1 {
				t.Errorf("%v: 6 kHz tone at %+.2f dB from what was sent, want within 1 dB", tc.args, db)
			}
		} else if l := testutil.RMS(w); l > 800 {
			t.Errorf("%v: RMS %.0f at 8 kHz, where a 6 kHz tone cannot be", tc.args, l)
		}
	}
}

// TestRenderNarrowbandRate: a G.711 capture still renders at 8 kHz, its
// samples the payloads' decode exactly, the file the same byte for byte
// as with --rate 8000.
func TestRenderNarrowbandRate(t *testing.T) {
	agent := audiotest.ULawTone(1000, 0, 8000*2)
	in := writeCall(t, agent, nil)
	rate, pcm, b := renderTo(t, in, "--endpoint", "10.0.0.1")
	if rate != 8000 {
		t.Errorf("WAV at %d Hz, want 8000", rate)
	}
	if !slices.Equal(pcm, decodeUlaw(agent)) {
		t.Error("the samples differ from the payloads' decode")
	}
	if _, _, forced := renderTo(t, in, "--endpoint", "10.0.0.1", "--rate", "8000"); !bytes.Equal(b, forced) {
		t.Error("the file differs from the one --rate 8000 writes")
	}
}

// TestRenderRateBad: --rate other than 8000, 16000 or 48000 exits 2 with
// one line naming the value, and writes nothing.
func TestRenderRateBad(t *testing.T) {
	in := writeCall(t, audiotest.ULawTone(1000, 0, 800), nil)
	out := filepath.Join(t.TempDir(), "out.wav")
	var stdout, stderr bytes.Buffer
	code := cli.Run(newRootCmd(), []string{"render", in, "--out", out, "--rate", "44100"}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "44100") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Errorf("exit %d, stderr %q: want 2 and one line naming 44100", code, stderr.String())
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a file was written")
	}
}
