package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/internal/cli"
)

// writeAnalyzeCapture writes 50 packets of one PCMU stream on VLAN 85, the
// 10th lost and the 20th sent twice, plus an ARP frame and a truncated one.
func writeAnalyzeCapture(t *testing.T) string {
	t.Helper()
	var frames [][]byte
	var times []time.Time
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 50; i++ {
		if i == 10 {
			continue
		}
		f := capturetest.Build(capturetest.Frame{
			VLANs:   []capture.VLANTag{{TPID: 0x8100, TCI: 5<<13 | 85}},
			RTP:     &capturetest.RTP{Seq: uint16(i), Timestamp: uint32(i) * 160, SSRC: 0x1234abcd},
			Payload: make([]byte, 160),
		})
		n := 1
		if i == 20 {
			n = 2
		}
		for k := 0; k < n; k++ {
			frames = append(frames, f)
			times = append(times, t0.Add(time.Duration(i)*20*time.Millisecond+time.Duration(k)*time.Millisecond))
		}
	}
	arp := capturetest.Build(capturetest.Frame{Payload: make([]byte, 28)})
	arp[12], arp[13] = 0x08, 0x06
	frames = append(frames, arp, frames[0][:20])
	times = append(times, t0.Add(time.Second), t0.Add(time.Second))
	path := filepath.Join(t.TempDir(), "a.pcap")
	var buf bytes.Buffer
	if err := capturetest.WritePcap(&buf, capture.LinkEthernet, false, frames, times); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAnalyzeJSON(t *testing.T) {
	path := writeAnalyzeCapture(t)
	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), []string{"analyze", path, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep struct {
		Streams []map[string]any `json:"streams"`
		Capture map[string]any   `json:"capture"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if len(rep.Streams) != 1 {
		t.Fatalf("%d streams, want 1", len(rep.Streams))
	}
	s := rep.Streams[0]
	want := map[string]any{
		"ssrc": "0x1234abcd", "src": "10.0.0.1:40000", "dst": "10.0.0.2:40002", "vlan": 85.0,
		"payload_type": 0.0, "codec": "PCMU", "packets": 50.0, "lost": 0.0, "lost_rfc3550": 0.0,
		"expected": 50.0, "duplicates": 1.0, "max_delta_ms": 40.0, "lost_network": 0.0, "lost_capture": 0.0,
		"sequential": true,
	}
	for k, v := range want {
		if s[k] != v {
			t.Errorf("%s = %v, want %v", k, s[k], v)
		}
	}
	for _, k := range []string{"max_jitter_ms", "mean_jitter_ms"} {
		if _, ok := s[k].(float64); !ok {
			t.Errorf("%s missing", k)
		}
	}
	c := rep.Capture
	if c["frames"] != 52.0 || c["non_rtp"] != 1.0 || c["decode_errors"] != 1.0 {
		t.Errorf("capture counters %v, want 52 frames, 1 non-RTP, 1 decode error", c)
	}
}

func TestAnalyzeTableAndErrors(t *testing.T) {
	path := writeAnalyzeCapture(t)
	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), []string{"analyze", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "1234ABCD") || !strings.Contains(out.String(), "PCMU") {
		t.Errorf("table lacks the stream:\n%s", out.String())
	}
	notCapture := filepath.Join(t.TempDir(), "notes.txt")
	os.WriteFile(notCapture, []byte("not a capture at all\n"), 0o644)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"analyze", filepath.Join(t.TempDir(), "missing.pcap")}, cli.ExitFailed, "missing.pcap"},
		{[]string{"analyze", notCapture}, cli.ExitFailed, "notes.txt"},
		{[]string{"analyze"}, cli.ExitUsage, "arg"},
		{[]string{"analyze", path, "--bogus"}, cli.ExitUsage, "bogus"},
	} {
		out.Reset()
		errb.Reset()
		code := cli.Run(newRootCmd(), tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.msg) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line naming %q", tt.args, code, errb.String(), tt.code, tt.msg)
		}
	}
}

// TestAnalyzeServices analyzes capture's golden capture that mixes two
// calls with DNS, NBNS, mDNS, LLMNR, NTP, IKE, SNMP, syslog, DHCP and
// DHCPv6 datagrams looking like RTP: only the calls' four streams are
// reported, and the datagrams count as non-RTP.
func TestAnalyzeServices(t *testing.T) {
	var out, errb bytes.Buffer
	path := filepath.Join("..", "..", "capture", "testdata", "services_and_calls.pcap")
	if code := cli.Run(newRootCmd(), []string{"analyze", path, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var rep analyzeReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	want := map[string]bool{
		"10.1.0.10:16384>10.2.0.20:20000": true, "10.2.0.20:20000>10.1.0.10:16384": true,
		"10.1.0.11:16386>10.2.0.21:20002": true, "10.2.0.21:20002>10.1.0.11:16386": true,
	}
	if len(rep.Streams) != len(want) {
		t.Errorf("%d streams, want %d", len(rep.Streams), len(want))
	}
	for _, s := range rep.Streams {
		if !want[s.Src+">"+s.Dst] || s.Packets != 50 || s.Lost != 0 || !s.Sequential {
			t.Errorf("stream %s > %s ssrc %s: %d packets, lost %d, sequential %v; want one of the calls, 50, 0, true",
				s.Src, s.Dst, s.SSRC, s.Packets, s.Lost, s.Sequential)
		}
	}
	if rep.Capture.RTP != 200 || rep.Capture.Reasons["udp"] != 130 {
		t.Errorf("capture %+v, want 200 RTP and 130 other UDP", rep.Capture)
	}
}
