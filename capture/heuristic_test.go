package capture_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
)

func TestServicePort(t *testing.T) {
	tests := []struct {
		port uint16
		want bool
	}{
		{0, true}, {53, true}, {67, true}, {68, true}, {69, true}, {88, true}, {123, true},
		{137, true}, {138, true}, {161, true}, {162, true}, {500, true}, {514, true},
		{546, true}, {547, true}, {1023, true}, {1812, true}, {1813, true}, {1900, true},
		{4500, true}, {5060, true}, {5061, true}, {5353, true}, {5355, true}, {1645, true}, {1719, true},
		{1024, false}, {2048, false}, {2152, false}, {3329, false}, {47808, false}, {49152, false}, {5004, false}, {5005, false}, {8000, false}, {16384, false}, {20000, false},
		{32767, false}, {40000, false}, {65535, false},
	}
	for _, tt := range tests {
		if got := capture.ServicePort(tt.port); got != tt.want {
			t.Errorf("ServicePort(%d) = %v, want %v", tt.port, got, tt.want)
		}
	}
	for _, p := range capture.ServicePorts {
		if !capture.ServicePort(p) {
			t.Errorf("listed service port %d is not a ServicePort (above maxServicePort?)", p)
		}
	}
}

// TestDecodeServices checks that datagrams of well-known services whose
// first byte looks like RTP version 2 decode as plain UDP, on both decoding
// paths, while the same bytes between two ephemeral ports would be taken
// for RTP.
func TestDecodeServices(t *testing.T) {
	for _, s := range capturetest.Services(1) {
		t.Run(s.Name, func(t *testing.T) {
			if b := s.Payload[0]; b < 0x80 || b > 0xbf {
				t.Fatalf("first byte %#x does not look like RTP version 2", b)
			}
			frame := capturetest.Build(s.Frame())
			var p, g capture.Packet
			err := p.Decode(frame, capture.LinkEthernet, nil)
			gerr := g.DecodeGeneral(frame, capture.LinkEthernet, nil)
			if err != nil || gerr != nil {
				t.Fatalf("Decode: %v, general: %v", err, gerr)
			}
			var c capture.DecodeCounters
			if p.Kind != capture.KindUDP || g.Kind != capture.KindUDP || c.Count(&p, err) != capture.ReasonUDP || p.RTPErr != nil {
				t.Errorf("kind %d (general %d), reason %v, RTPErr %v; want plain UDP", p.Kind, g.Kind, capture.ReasonOf(&p, err), p.RTPErr)
			}
			if p.Src != s.Src || p.Dst != s.Dst || !bytes.Equal(p.UDP, s.Payload) {
				t.Errorf("%v → %v with %d bytes, want %v → %v with %d", p.Src, p.Dst, len(p.UDP), s.Src, s.Dst, len(s.Payload))
			}
			// Control: between ephemeral ports the same datagram is taken
			// for RTP, or for RTP with a bad header (CSRC count, padding).
			off := s
			off.Src = netip.AddrPortFrom(s.Src.Addr(), 40010)
			off.Dst = netip.AddrPortFrom(s.Dst.Addr(), 40012)
			if err := p.Decode(capturetest.Build(off.Frame()), capture.LinkEthernet, nil); err != nil || (p.Kind != capture.KindRTP && p.RTPErr == nil) {
				t.Errorf("between ports 40010 and 40012: kind %d, err %v; want RTP or RTPErr (the version test alone takes it)", p.Kind, err)
			}
		})
	}
	// RTCP is ruled out on a service port as well.
	rtcp := capturetest.Frame{Src: netip.MustParseAddrPort("10.0.0.1:40001"), Dst: netip.MustParseAddrPort("10.0.0.53:53"),
		UDPRaw: append([]byte{0x81, 201, 0, 7}, make([]byte, 28)...)}
	var p capture.Packet
	if err := p.Decode(capturetest.Build(rtcp), capture.LinkEthernet, nil); err != nil || p.Kind != capture.KindUDP {
		t.Errorf("RTCP receiver report to port 53: kind %d, err %v; want plain UDP", p.Kind, err)
	}
}

// Calls of the golden capture that mixes services with RTP.
type mixedCall struct {
	a, b   netip.AddrPort
	ssrcA  uint32
	ssrcB  uint32
	pt     uint8
	vlan   uint16
	seqA   uint16
	tsA    uint32
	frames int
}

var mixedCalls = []mixedCall{
	{netip.MustParseAddrPort("10.1.0.10:16384"), netip.MustParseAddrPort("10.2.0.20:20000"), 0x11110001, 0x22220001, 0, 0, 65500, 0xfffff000, 50},
	{netip.MustParseAddrPort("10.1.0.11:16386"), netip.MustParseAddrPort("10.2.0.21:20002"), 0x11110002, 0x22220002, 8, 85, 100, 1000, 50},
}

// mixedCapture returns the frames of the golden capture
// services_and_calls.pcap: the calls above, 20 ms packets, interleaved
// with ten datagrams of each of capturetest.Services.
func mixedCapture() ([][]byte, []time.Time) {
	type frame struct {
		at time.Duration
		b  []byte
	}
	var fs []frame
	payload := bytes.Repeat([]byte{0xd5}, 160)
	for i, c := range mixedCalls {
		var tags []capture.VLANTag
		if c.vlan != 0 {
			tags = []capture.VLANTag{tag(0x8100, 5, c.vlan)}
		}
		for k := 0; k < c.frames; k++ {
			at := time.Duration(k)*20*time.Millisecond + time.Duration(i)*3*time.Millisecond
			for dir := 0; dir < 2; dir++ {
				src, dst, ssrc := c.a, c.b, c.ssrcA
				if dir == 1 {
					src, dst, ssrc = c.b, c.a, c.ssrcB
				}
				h := &capturetest.RTP{PayloadType: c.pt, Seq: c.seqA + uint16(k) + uint16(dir)*1000,
					Timestamp: c.tsA + uint32(k)*160 + uint32(dir)*7777, SSRC: ssrc, Marker: k == 0}
				fs = append(fs, frame{at + time.Duration(dir)*time.Millisecond,
					capturetest.Build(capturetest.Frame{VLANs: tags, Src: src, Dst: dst, TOS: 0xb8, RTP: h, Payload: payload})})
			}
		}
	}
	svc := capturetest.Services(10)
	for i, s := range svc {
		fs = append(fs, frame{time.Duration(i) * time.Second / time.Duration(len(svc)), capturetest.Build(s.Frame())})
	}
	sort.SliceStable(fs, func(i, j int) bool { return fs[i].at < fs[j].at })
	frames := make([][]byte, len(fs))
	times := make([]time.Time, len(fs))
	for i, f := range fs {
		frames[i], times[i] = f.b, goldenTime.Add(f.at)
	}
	return frames, times
}

const mixedGolden = "services_and_calls.pcap"

func writeMixedGolden(t *testing.T) {
	t.Helper()
	frames, times := mixedCapture()
	var buf bytes.Buffer
	if err := capturetest.WritePcap(&buf, capture.LinkEthernet, false, frames, times); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", mixedGolden), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAnalyzeMixedServices analyzes the golden capture that mixes DNS,
// NBNS, mDNS, LLMNR, NTP, IKE, SNMP, syslog, DHCP and DHCPv6 datagrams
// looking like RTP with two calls: the streams found are exactly the
// calls' four. bench.TestAnalyzeMatchesTsharkWithServices checks the same
// file against tshark.
func TestAnalyzeMixedServices(t *testing.T) {
	a := capturetest.AnalyzeFile(t, filepath.Join("testdata", mixedGolden))
	want := map[capture.StreamKey]bool{}
	for _, c := range mixedCalls {
		vlan := uint16(capture.NoVLAN)
		if c.vlan != 0 {
			vlan = c.vlan
		}
		want[capture.StreamKey{VLAN: vlan, Src: c.a, Dst: c.b, SSRC: c.ssrcA}] = true
		want[capture.StreamKey{VLAN: vlan, Src: c.b, Dst: c.a, SSRC: c.ssrcB}] = true
	}
	if len(a.Streams) != len(want) {
		for _, s := range a.Streams {
			t.Logf("stream %v → %v ssrc %#x, %d packets", s.Src, s.Dst, s.SSRC, s.Packets)
		}
		t.Fatalf("%d streams, want %d", len(a.Streams), len(want))
	}
	for _, s := range a.Streams {
		if !want[s.StreamKey] {
			t.Errorf("stream %+v is not one of the calls", s.StreamKey)
		}
		if s.Packets != 50 || s.Lost != 0 || !s.Sequential {
			t.Errorf("stream %v → %v: %d packets, lost %d, sequential %v; want 50, 0, true", s.Src, s.Dst, s.Packets, s.Lost, s.Sequential)
		}
	}
	services := uint64(len(capturetest.Services(10)))
	if c := a.Counters; c.Counts[capture.ReasonRTP] != 200 || c.Counts[capture.ReasonUDP] != services || c.Frames != 200+services {
		t.Errorf("counters %+v, want 200 RTP and %d UDP", c, services)
	}
}

// TestStreamSequential checks the probation of RFC 3550 appendix A.1: a
// stream is Sequential once two consecutive sequence numbers arrived one
// after the other.
func TestStreamSequential(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		pkts   []pkt
		marker int // index of a packet with the marker bit (general path), -1 none
		want   bool
	}{
		{"one packet", []pkt{{seq: 7}}, -1, false},
		{"in order", seqs(7, 3), -1, true},
		{"in order, second with marker", seqs(7, 2), 1, true},
		{"gaps only", []pkt{{seq: 7}, {seq: 9, at: 40 * ms}, {seq: 11, at: 80 * ms}}, -1, false},
		{"duplicate", []pkt{{seq: 7}, {seq: 7, at: 5 * ms}}, -1, false},
		{"backwards", []pkt{{seq: 8}, {seq: 7, at: 5 * ms}}, -1, false},
		{"wrap", []pkt{{seq: 65535}, {seq: 0, at: 20 * ms}}, -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := capture.NewStreamTable(capture.StreamTableConfig{})
			base := time.Unix(1700000000, 0)
			for i, k := range tt.pkts {
				p := decodeRTP(t, capturetest.Frame{RTP: &capturetest.RTP{Seq: k.seq, Timestamp: uint32(k.seq) * 160, SSRC: 42, Marker: i == tt.marker}, Payload: payload160})
				tab.Update(p, base.Add(k.at))
			}
			s := tab.Snapshot(nil)
			if len(s) != 1 || s[0].Sequential != tt.want {
				t.Fatalf("snapshot %+v, want one stream with Sequential %v", s, tt.want)
			}
		})
	}
}
