package main

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/playout/audiotest"
)

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
		add(other, netip.MustParseAddrPort("10.9.9.8:50002"), 0xbad, audiotest.ULawTone(3000, 0, 160))
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
	agent := audiotest.ULawTone(1000, 0, 8000*2)
	customer := audiotest.ULawTone(440, 0, 8000*2)
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
	in := writeCall(t, audiotest.ULawTone(1000, 0, 1600), nil)
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
		{[]string{"render", in, "--out", filepath.Join(dir, "o.wav"), "--codec", "96=iLBC"}, 2, "iLBC"},
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

// Call-flow captures: every stream of the agent's calls must be heard,
// checked by ear (a Goertzel detector per 100 ms window), not by counting
// packets.

var t0 = gen.DefaultEpoch

// phoneEP is agent phone n (10.10.0.n, MAC 02:00:0a:0a:00:n); gatewayEP
// the customer's gateway n (10.20.0.n).
func phoneEP(n byte, port uint16) gen.Endpoint {
	return gen.Endpoint{MAC: [6]byte{2, 0, 10, 10, 0, n}, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 10, 0, n}), port)}
}

func gatewayEP(n byte, port uint16) gen.Endpoint {
	return gen.Endpoint{MAC: [6]byte{2, 0, 10, 20, 0, n}, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 20, 0, n}), port)}
}

// call is a PCMU call from start for dur: the agent sends fromHz with SSRC
// ssrc, the far side toHz with SSRC ssrc+1 (a zero tone: silence).
func call(agent, far gen.Endpoint, vlan uint16, start, dur time.Duration, ssrc uint32, fromHz, toHz float64) gen.Call {
	return gen.Call{
		AgentID: "1001", Agent: agent, Far: far, VLAN: vlan, TOS: 0xb8,
		Start: start, Duration: dur,
		FromAgent: gen.Direction{SSRC: ssrc, Seq: uint16(ssrc * 7), Timestamp: ssrc * 1000, ToneHz: fromHz},
		ToAgent:   gen.Direction{SSRC: ssrc + 1, Seq: uint16(ssrc * 11), Timestamp: ssrc * 3000, ToneHz: toHz},
	}
}

// extraPkt is a frame added to a generated capture at offset at.
type extraPkt struct {
	at time.Duration
	f  capturetest.Frame
}

// rtpRun returns n packets of 20 ms, payload type pt, from src to dst
// starting at from; payload(i) is packet i's payload.
func rtpRun(src, dst gen.Endpoint, vlan uint16, ssrc uint32, pt uint8, from time.Duration, n int, payload func(i int) []byte) []extraPkt {
	var out []extraPkt
	for i := range n {
		f := capturetest.Frame{SrcMAC: src.MAC, DstMAC: dst.MAC, Src: src.Addr, Dst: dst.Addr, TOS: 0xb8,
			RTP:     &capturetest.RTP{PayloadType: pt, Seq: uint16(1000 + i), Timestamp: uint32(8000 + 160*i), SSRC: ssrc},
			Payload: payload(i)}
		if vlan != 0 {
			f.VLANs = []capture.VLANTag{{TPID: 0x8100, TCI: vlan}}
		}
		out = append(out, extraPkt{from + time.Duration(i)*20*time.Millisecond, f})
	}
	return out
}

func g722Payload(int) []byte { return bytes.Repeat([]byte{0x5a}, 160) }

// writeCapture writes the calls and datagrams with bench/gen, adds extra
// frames at their times and returns the pcap's path.
func writeCapture(t *testing.T, calls []gen.Call, dgs []gen.Datagram, extra []extraPkt) string {
	t.Helper()
	dir := t.TempDir()
	genPath := filepath.Join(dir, "gen.pcap")
	var buf bytes.Buffer
	if _, err := gen.Write(&buf, &gen.Config{Calls: calls, Datagrams: dgs, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(genPath, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(extra) == 0 {
		return genPath
	}
	type rec struct {
		at    time.Time
		frame []byte
	}
	var recs []rec
	src, err := capture.OpenFile(genPath, capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	frames := make([][]byte, 64)
	infos := make([]capture.Info, 64)
	for {
		n, err := src.ReadBatch(frames, infos)
		for i := range n {
			recs = append(recs, rec{infos[i].Timestamp, bytes.Clone(frames[i])})
		}
		if err != nil {
			break
		}
	}
	for _, e := range extra {
		recs = append(recs, rec{t0.Add(e.at), capturetest.Build(e.f)})
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return a.at.Compare(b.at) })
	var fs [][]byte
	var ts []time.Time
	for _, r := range recs {
		fs, ts = append(fs, r.frame), append(ts, r.at)
	}
	path := filepath.Join(dir, "capture.pcap")
	buf.Reset()
	if err := capturetest.WritePcap(&buf, capture.LinkEthernet, false, fs, ts); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// heard is a tone expected in the output from from to to (offsets in the
// capture, which are the output's: the calls start at offset 0).
type heard struct {
	hz       float64
	from, to time.Duration
}

const (
	window  = 100 * time.Millisecond
	guard   = 200 * time.Millisecond // around a leg's start and end
	present = 2000.0                 // tones are sent at amplitude 8000
	absent  = 600.0
)

// listen checks every 100 ms window of pcm: each tone of want is present
// within its span (away from its edges) and absent outside it, and each
// tone of never is absent throughout. It returns the windows right and
// checked.
func listen(t *testing.T, pcm []int16, want []heard, never []float64) (right, checked int) {
	t.Helper()
	w := int(window.Seconds() * 8000)
	bad := 0
	for k := 0; (k+1)*w <= len(pcm); k++ {
		x := pcm[k*w : (k+1)*w]
		from, to := time.Duration(k)*window, time.Duration(k+1)*window
		ok := true
		for _, h := range want {
			a := audiotest.ToneLevel(x, h.hz)
			switch {
			case from >= h.from+guard && to <= h.to-guard:
				if a < present {
					ok = false
					if bad++; bad <= 5 {
						t.Errorf("window %v-%v: %v Hz at %.0f, want present", from, to, h.hz, a)
					}
				}
			case to <= h.from-guard || from >= h.to+guard:
				if !covered(want, h.hz, from, to) && a > absent {
					ok = false
					if bad++; bad <= 5 {
						t.Errorf("window %v-%v: %v Hz at %.0f, want silent", from, to, h.hz, a)
					}
				}
			}
		}
		for _, hz := range never {
			if a := audiotest.ToneLevel(x, hz); a > absent {
				ok = false
				if bad++; bad <= 5 {
					t.Errorf("window %v-%v: %v Hz at %.0f, never sent to or from the endpoint", from, to, hz, a)
				}
			}
		}
		checked++
		if ok {
			right++
		}
	}
	return right, checked
}

// covered reports whether another span of tone hz in want reaches into
// [from, to) with its guard.
func covered(want []heard, hz float64, from, to time.Duration) bool {
	for _, h := range want {
		if h.hz == hz && from < h.to+guard && to > h.from-guard {
			return true
		}
	}
	return false
}

func TestRenderCallFlows(t *testing.T) {
	p1, p1b, p2 := phoneEP(1, 20000), phoneEP(1, 21000), phoneEP(2, 20002)
	g1, g2 := gatewayEP(1, 30000), gatewayEP(2, 30002)
	s := time.Second
	stray := call(p1, g1, 0, 4*s, 20*time.Millisecond, 0x5700, 0, 2100)
	stray.FromAgent.Holds = []gen.Interval{{From: 0, To: s}} // the far side's packet alone
	nbns := gen.Endpoint{MAC: [6]byte{2, 0, 10, 10, 0, 50}, Addr: netip.MustParseAddrPort("10.10.0.50:137")}
	bcast := gen.Endpoint{MAC: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Addr: netip.MustParseAddrPort("10.10.255.255:137")}
	dnsc := gen.Endpoint{MAC: [6]byte{2, 0, 10, 10, 0, 60}, Addr: netip.MustParseAddrPort("10.10.0.60:40053")}
	dnss := gen.Endpoint{MAC: [6]byte{2, 0, 10, 0, 0, 53}, Addr: netip.MustParseAddrPort("10.0.0.53:53")}
	var dgs []gen.Datagram
	for i := range 1500 {
		at := time.Duration(i) * 6 * time.Millisecond
		dgs = append(dgs,
			gen.Datagram{At: at, Src: nbns, Dst: bcast, Payload: capturetest.NBNSQuery(0x8000, "WPAD")},
			gen.Datagram{At: at, Src: dnsc, Dst: dnss, Payload: capturetest.DNS{ID: 0x8008, Flags: 0x0100, Name: "sip.example.com"}.Bytes()},
			gen.Datagram{At: at + time.Millisecond, Src: dnss, Dst: dnsc,
				Payload: capturetest.DNS{ID: 0x8008, Flags: 0x8180, Name: "sip.example.com", Answer: netip.MustParseAddr("10.0.0.5"), TTL: 3600}.Bytes()})
	}
	// Most flows are one or two 10 s calls: A's tones are 700 and 1300 Hz,
	// B's 900 and 1700 Hz.
	callA := func(agent, far gen.Endpoint, vlan uint16) gen.Call {
		return call(agent, far, vlan, 0, 10*s, 0x1100, 700, 1300)
	}
	callB := func(agent, far gen.Endpoint, vlan uint16) gen.Call {
		return call(agent, far, vlan, 0, 10*s, 0x2200, 900, 1700)
	}
	heardA := []heard{{700, 0, 10 * s}, {1300, 0, 10 * s}}
	heardB := []heard{{900, 0, 10 * s}, {1700, 0, 10 * s}}
	tonesA, tonesB := []float64{700, 1300}, []float64{900, 1700}
	autoCall := callA(p1, g1, 0)
	autoCall.ToAgent.Holds = []gen.Interval{{From: 0, To: 100 * time.Millisecond}} // the phone's packet first
	mapped := func(i int) []byte { return audiotest.ULawTone(1100, 160*i, 160) }

	for _, tc := range []struct {
		name   string
		calls  []gen.Call
		dgs    []gen.Datagram
		extra  []extraPkt
		args   []string
		want   []heard
		never  []float64
		secs   float64  // at least this much audio
		stderr []string // substrings of stderr
		quiet  bool     // nothing on stderr
	}{
		{
			name: "ssrc-change",
			calls: []gen.Call{
				call(p1, g1, 0, 0, 5*s, 0x1100, 700, 1300),
				call(p1, g1, 0, 5*s, 5*s, 0x2200, 900, 1700),
			},
			args: []string{"--endpoint", "10.10.0.1"},
			want: []heard{{700, 0, 5 * s}, {1300, 0, 5 * s}, {900, 5 * s, 10 * s}, {1700, 5 * s, 10 * s}},
			secs: 9.9, quiet: true,
		},
		{
			name: "overlapping-calls",
			calls: []gen.Call{
				call(p1, g1, 0, 0, 8*s, 0x1100, 700, 1300),
				call(phoneEP(1, 20010), g2, 0, 3*s, 7*s, 0x2200, 900, 1700),
			},
			args: []string{"--endpoint", "10.10.0.1"},
			want: []heard{{700, 0, 8 * s}, {1300, 0, 8 * s}, {900, 3 * s, 10 * s}, {1700, 3 * s, 10 * s}},
			secs: 9.9, quiet: true,
		},
		{
			name:  "stray-packet",
			calls: []gen.Call{callA(p1, g1, 0), stray},
			args:  []string{"--endpoint", "10.10.0.1"},
			want:  heardA,
			secs:  9.9, quiet: true,
		},
		{
			name: "hold-resume",
			calls: []gen.Call{func() gen.Call {
				c := callA(p1, g1, 0)
				c.FromAgent.Holds = []gen.Interval{{From: 3 * s, To: 6 * s}}
				c.ToAgent.Holds = c.FromAgent.Holds
				return c
			}()},
			args: []string{"--endpoint", "10.10.0.1"},
			want: []heard{{700, 0, 3 * s}, {1300, 0, 3 * s}, {700, 6 * s, 10 * s}, {1300, 6 * s, 10 * s}},
			secs: 9.9, quiet: true,
		},
		{
			name:  "two-vlans-one-selected",
			calls: []gen.Call{callA(p1, g1, 85), callB(p1, g2, 86)},
			args:  []string{"--endpoint", "vlan85/10.10.0.1"},
			want:  heardA,
			never: tonesB,
			secs:  9.9, quiet: true,
		},
		{
			name: "two-vlans-both",
			calls: []gen.Call{
				callA(p1, g1, 85),
				call(p1, g1, 86, 0, 10*s, 0x1100, 900, 1700), // B's tones, A's addresses and SSRCs
			},
			args: []string{"--endpoint", "10.10.0.1"},
			want: slices.Concat(heardA, heardB),
			secs: 9.9, quiet: true,
		},
		{
			name:  "mac-endpoint",
			calls: []gen.Call{callA(p1, g1, 0), callB(p2, g2, 0)},
			args:  []string{"--endpoint", "02:00:0a:0a:00:02"},
			want:  heardB,
			never: tonesA,
			secs:  9.9, quiet: true,
		},
		{
			name:  "port-range-endpoint",
			calls: []gen.Call{callA(p1, g1, 0), callB(p1b, g2, 0)},
			args:  []string{"--endpoint", "10.10.0.1:20000-20998"},
			want:  heardA,
			never: tonesB,
			secs:  9.9, quiet: true,
		},
		{
			name:   "auto-pick-among-dns-nbns",
			calls:  []gen.Call{autoCall},
			dgs:    dgs,
			want:   []heard{{700, 0, 10 * s}, {1300, 100 * time.Millisecond, 10 * s}},
			secs:   9.9,
			stderr: []string{"render: no --endpoint given; using 10.10.0.1, the endpoint with the most decodable RTP (995 packets in 2 streams)\n"},
		},
		{
			name:   "mixed-decodable-undecodable",
			calls:  []gen.Call{callA(p1, g1, 0)},
			extra:  rtpRun(phoneEP(1, 20020), gatewayEP(9, 30020), 0, 0x909, 3, 2*s, 100, g722Payload),
			args:   []string{"--endpoint", "10.10.0.1"},
			want:   heardA,
			secs:   9.9,
			stderr: []string{"render: skipped stream ssrc 0x00000909 10.10.0.1:20020->10.20.0.9:30020 (from-agent): 100 packets of payload type 3 (GSM)"},
		},
		{
			name:  "dynamic-type-mapped",
			calls: []gen.Call{call(p1, g1, 0, 0, 10*s, 0x1100, 700, 0)},
			extra: rtpRun(gatewayEP(1, 30000), phoneEP(1, 20000), 0, 0x97, 97, 0, 500, mapped),
			args:  []string{"--endpoint", "10.10.0.1", "--codec", "97=PCMU"},
			want:  []heard{{700, 0, 10 * s}, {1100, 0, 10 * s}},
			secs:  9.9, quiet: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := writeCapture(t, tc.calls, tc.dgs, tc.extra)
			out := filepath.Join(t.TempDir(), "out.wav")
			var stdout, stderr bytes.Buffer
			args := append([]string{"render", in, "--out", out}, tc.args...)
			if code := cli.Run(newRootCmd(), args, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			if tc.quiet && stderr.Len() > 0 {
				t.Errorf("stderr %q", stderr.String())
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q lacks %q", stderr.String(), want)
				}
			}
			lines := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")
			if n := len(lines); n < 3 || !strings.HasPrefix(lines[n-2], "rendered ") || lines[n-1] != "wrote "+out {
				t.Errorf("stdout %q", stdout.String())
			}
			pcm, ch := readWAVFile(t, out)
			if ch != 1 {
				t.Fatalf("%d channels", ch)
			}
			if secs := float64(len(pcm)) / 8000; secs < tc.secs {
				t.Errorf("rendered %.2f s, want at least %.2f s\n%s", secs, tc.secs, stdout.String())
			}
			right, checked := listen(t, pcm, tc.want, tc.never)
			t.Logf("windows right %d/%d", right, checked)
			if right != checked {
				t.Logf("stdout:\n%s", stdout.String())
			}
		})
	}
}

func TestRenderUndecodable(t *testing.T) {
	p1, g1 := phoneEP(1, 20000), gatewayEP(1, 30000)
	both := func(pt uint8) []extraPkt {
		return append(rtpRun(p1, g1, 0, 0xa1, pt, 0, 250, g722Payload), rtpRun(g1, p1, 0, 0xa2, pt, 0, 250, g722Payload)...)
	}
	cn := func(int) []byte { return []byte{40} }
	for _, tc := range []struct {
		name     string
		extra    []extraPkt
		args     []string
		existing bool     // out exists before the render
		stderr   []string // substrings of stderr
	}{
		{"gsm-auto-endpoint", both(3), nil, false, []string{
			"render: no --endpoint given and no decodable RTP; using 10.10.0.1",
			"render: skipped stream ssrc 0x000000a1 10.10.0.1:20000->10.20.0.1:30000 (from-agent): 250 packets of payload type 3 (GSM)",
			"render: skipped stream ssrc 0x000000a2 10.20.0.1:30000->10.10.0.1:20000 (to-agent): 250 packets of payload type 3 (GSM)",
			"no RTP to or from 10.10.0.1 could be decoded (2 streams of payload type 3 skipped)",
		}},
		{"dynamic-unmapped", both(97), []string{"--endpoint", "10.10.0.1"}, true, []string{
			"payload type 97 (dynamic; map it with --codec 97=NAME",
			"(2 streams of payload type 97 skipped)",
		}},
		{"comfort-noise-only", rtpRun(p1, g1, 0, 0xc1, 13, 0, 50, cn), []string{"--endpoint", "10.10.0.1"}, true, []string{
			"50 RTP packets to or from 10.10.0.1 decoded to no audio",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := writeCapture(t, nil, nil, tc.extra)
			dir := t.TempDir()
			out := filepath.Join(dir, "out.wav")
			if tc.existing {
				if err := os.WriteFile(out, []byte("an unrelated file"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var stdout, stderr bytes.Buffer
			args := append([]string{"render", in, "--out", out}, tc.args...)
			if code := cli.Run(newRootCmd(), args, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, stderr.String())
			}
			for _, want := range tc.stderr {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr %q lacks %q", stderr.String(), want)
				}
			}
			if strings.Contains(stdout.String(), "wrote") {
				t.Errorf("stdout %q", stdout.String())
			}
			ents, _ := os.ReadDir(dir)
			switch b, err := os.ReadFile(out); {
			case tc.existing && string(b) != "an unrelated file":
				t.Errorf("the existing %s was changed: %q, %v", out, b, err)
			case !tc.existing && err == nil:
				t.Errorf("a failed render left %s (%d bytes)", out, len(b))
			case len(ents) != map[bool]int{true: 1, false: 0}[tc.existing]:
				t.Errorf("the output directory holds %v", ents)
			}
		})
	}
}
