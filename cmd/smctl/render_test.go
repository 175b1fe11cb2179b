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

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/internal/cli"
)

// ulawTone returns n µ-law bytes of a tone at f Hz.
func ulawTone(n int, f float64) []byte {
	pcm := make([]byte, 2*n)
	for i := range n {
		v := int16(8000 * math.Sin(2*math.Pi*f*float64(i)/8000))
		binary.LittleEndian.PutUint16(pcm[2*i:], uint16(v))
	}
	return g711.EncodeUlaw(pcm)
}

func decodeUlaw(b []byte) []int16 {
	lp := g711.DecodeUlaw(b)
	out := make([]int16, len(lp)/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(lp[2*i:]))
	}
	return out
}

func readWAVFile(t *testing.T, path string) ([]int16, int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 || string(b[:4]) != "RIFF" {
		t.Fatal("not a WAV")
	}
	n := int(binary.LittleEndian.Uint32(b[40:]))
	out := make([]int16, n/2)
	for i := range out {
		out[i] = int16(binary.LittleEndian.Uint16(b[44+2*i:]))
	}
	return out, int(binary.LittleEndian.Uint16(b[22:]))
}

// writeCall writes a pcap of a call: agent 10.0.0.1:40000 ↔ customer
// 10.0.0.2:40002, 20 ms G.711 packets, plus an unrelated stream between two other addresses.
func writeCall(t *testing.T, agent, customer []byte) string {
	t.Helper()
	a := netip.MustParseAddrPort("10.0.0.1:40000")
	c := netip.MustParseAddrPort("10.0.0.2:40002")
	other := netip.MustParseAddrPort("10.9.9.9:50000")
	start := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var frames [][]byte
	var times []time.Time
	for i := 0; i*160 < len(agent); i++ {
		at := start.Add(time.Duration(i) * 20 * time.Millisecond)
		add := func(src, dst netip.AddrPort, ssrc uint32, payload []byte) {
			frames = append(frames, capturetest.Build(capturetest.Frame{Src: src, Dst: dst,
				RTP:     &capturetest.RTP{PayloadType: 0, Seq: uint16(65000 + i), Timestamp: uint32(i * 160), SSRC: ssrc},
				Payload: payload}))
			times = append(times, at)
		}
		add(a, c, 0xa, agent[i*160:i*160+160])
		if customer != nil {
			add(c, a, 0xc, customer[i*160:i*160+160])
		}
		add(other, netip.MustParseAddrPort("10.9.9.8:50002"), 0xbad, ulawTone(160, 3000))
	}
	path := filepath.Join(t.TempDir(), "call.pcap")
	var buf bytes.Buffer
	if err := capturetest.WritePcap(&buf, capture.LinkEthernet, true, frames, times); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestRenderLossless(t *testing.T) {
	agent := ulawTone(8000*2, 1000)
	customer := ulawTone(8000*2, 440)
	silent := bytes.Repeat([]byte{0xff}, len(agent))
	for _, tc := range []struct {
		name     string
		customer []byte
		args     []string
		check    func(t *testing.T, got []int16, ch int)
	}{
		{"agent-only", nil, []string{"--endpoint", "10.0.0.1"}, func(t *testing.T, got []int16, ch int) {
			want := decodeUlaw(agent)
			if ch != 1 || !slices.Equal(got, want) {
				t.Fatalf("mono output (%d samples) differs from the payloads' decode (%d)", len(got), len(want))
			}
		}},
		{"customer-silent", silent, []string{"--endpoint", "10.0.0.1:40000"}, func(t *testing.T, got []int16, ch int) {
			if !slices.Equal(got, decodeUlaw(agent)) {
				t.Fatal("a silent side changed the other side's samples")
			}
		}},
		{"auto-endpoint-stereo", customer, []string{"--stereo"}, func(t *testing.T, got []int16, ch int) {
			if ch != 2 || len(got)%2 != 0 {
				t.Fatalf("channels %d", ch)
			}
			l, r := make([]int16, len(got)/2), make([]int16, len(got)/2)
			for i := range l {
				l[i], r[i] = got[2*i], got[2*i+1]
			}
			if !slices.Equal(l, decodeUlaw(agent)) || !slices.Equal(r, decodeUlaw(customer)) {
				t.Fatal("stereo channels differ from each side's decode")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := writeCall(t, agent, tc.customer)
			out := filepath.Join(t.TempDir(), "out.wav")
			var stdout, stderr bytes.Buffer
			args := append([]string{"render", in, "--out", out}, tc.args...)
			if code := cli.Run(newRootCmd(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if !strings.HasSuffix(stdout.String(), "wrote "+out+"\n") {
				t.Errorf("stdout %q", stdout.String())
			}
			got, ch := readWAVFile(t, out)
			tc.check(t, got, ch)
		})
	}
}

func TestRenderErrors(t *testing.T) {
	dir := t.TempDir()
	in := writeCall(t, ulawTone(1600, 1000), nil)
	notCap := filepath.Join(dir, "x.txt")
	if err := os.WriteFile(notCap, []byte("hello, not a capture"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
		says string
	}{
		{[]string{"render", in}, 2, "--out"},
		{[]string{"render", filepath.Join(dir, "none.pcap"), "--out", filepath.Join(dir, "o.wav")}, 2, "none.pcap"},
		{[]string{"render", notCap, "--out", filepath.Join(dir, "o.wav")}, 2, "x.txt"},
		{[]string{"render", in, "--out", filepath.Join(dir, "o.wav"), "--endpoint", "10.0.0"}, 2, `"10.0.0"`},
		{[]string{"render", in, "--out", filepath.Join(dir, "o.wav"), "--codec", "96=OPUS"}, 2, "OPUS"},
		{[]string{"render", in, "--out", filepath.Join(dir, "o.wav"), "--endpoint", "192.0.2.1"}, 1, "192.0.2.1"},
		{[]string{"render", in, "--out", filepath.Join(dir, "no", "o.wav")}, 1, "o.wav"},
	} {
		t.Run(strings.Join(tc.args[2:], " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cli.Run(newRootCmd(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.says) || strings.Count(stderr.String(), "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want exit %d naming %s", code, stderr.String(), tc.code, tc.says)
			}
		})
	}
}
