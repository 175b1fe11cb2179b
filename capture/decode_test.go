package capture_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
)

var update = flag.Bool("update", false, "rewrite the golden captures in testdata/")

var (
	macA = [6]byte{0x02, 0, 0, 0, 0, 0x0a}
	macB = [6]byte{0x02, 0, 0, 0, 0, 0x0b}
	v6a  = netip.MustParseAddrPort("[2001:db8::1]:16384")
	v6b  = netip.MustParseAddrPort("[2001:db8::2]:16386")
)

func tag(tpid uint16, prio uint8, id uint16) capture.VLANTag {
	return capture.VLANTag{TPID: tpid, TCI: uint16(prio)<<13 | id}
}

func rtp(seq uint16) *capturetest.RTP {
	return &capturetest.RTP{PayloadType: 0, Seq: seq, Timestamp: uint32(seq) * 160, SSRC: 0x1234abcd}
}

var payload160 = bytes.Repeat([]byte{0xff}, 160)

// want is what a golden frame must decode to.
type want struct {
	err      error
	reason   capture.Reason
	kind     capture.Kind
	vlans    []capture.VLANTag
	src, dst string
	hasMAC   bool
	tos      uint8
	pt       uint8
	seq      uint16
	ssrc     uint32
	csrcs    uint8
	payload  int // RTP payload length
}

type golden struct {
	name  string
	file  string
	lt    capture.LinkType
	frame capturetest.Frame
	raw   func([]byte) []byte // mutates the built frame (truncation)
	want  want
}

var goldens = []golden{
	{name: "ipv4 rtp", file: "ipv4_rtp.pcap", frame: capturetest.Frame{SrcMAC: macA, DstMAC: macB, TOS: 0xb8, RTP: rtp(7), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true, tos: 0xb8, seq: 7, ssrc: 0x1234abcd, payload: 160}},
	{name: "802.1Q priority 5 VLAN 85", file: "dot1q_rtp.pcap", frame: capturetest.Frame{VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}, RTP: rtp(8), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, vlans: []capture.VLANTag{tag(0x8100, 5, 85)}, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true, seq: 8, ssrc: 0x1234abcd, payload: 160}},
	{name: "QinQ 802.1ad outer 100 inner 85", file: "qinq_rtp.pcap", frame: capturetest.Frame{VLANs: []capture.VLANTag{tag(0x88a8, 3, 100), tag(0x8100, 5, 85)}, RTP: rtp(9), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, vlans: []capture.VLANTag{tag(0x88a8, 3, 100), tag(0x8100, 5, 85)}, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true, seq: 9, ssrc: 0x1234abcd, payload: 160}},
	{name: "three stacked tags 0x9100", file: "triple_tag_rtp.pcap", frame: capturetest.Frame{VLANs: []capture.VLANTag{tag(0x9100, 1, 4000), tag(0x88a8, 2, 200), tag(0x8100, 6, 85)}, RTP: rtp(10), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, vlans: []capture.VLANTag{tag(0x9100, 1, 4000), tag(0x88a8, 2, 200), tag(0x8100, 6, 85)}, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true, seq: 10, ssrc: 0x1234abcd, payload: 160}},
	{name: "IPv6 rtp in VLAN", file: "ipv6_rtp.pcap", frame: capturetest.Frame{VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}, Src: v6a, Dst: v6b, TOS: 0xb8, RTP: rtp(11), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, vlans: []capture.VLANTag{tag(0x8100, 5, 85)}, src: v6a.String(), dst: v6b.String(), hasMAC: true, tos: 0xb8, seq: 11, ssrc: 0x1234abcd, payload: 160}},
	{name: "IPv4 with options", file: "ipv4_options_rtp.pcap", frame: capturetest.Frame{IPv4Options: []byte{0x94, 0x04, 0, 0, 1, 1, 1, 0}, RTP: rtp(12), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true, seq: 12, ssrc: 0x1234abcd, payload: 160}},
	{name: "Linux cooked SLL", file: "sll_rtp.pcap", lt: capture.LinkSLL, frame: capturetest.Frame{LinkType: capture.LinkSLL, SrcMAC: macA, RTP: rtp(13), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", seq: 13, ssrc: 0x1234abcd, payload: 160}},
	{name: "Linux cooked SLL2 with VLAN", file: "sll2_rtp.pcap", lt: capture.LinkSLL2, frame: capturetest.Frame{LinkType: capture.LinkSLL2, SrcMAC: macA, VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}, RTP: rtp(14), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, vlans: []capture.VLANTag{tag(0x8100, 5, 85)}, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", seq: 14, ssrc: 0x1234abcd, payload: 160}},
	{name: "raw IPv6", file: "raw_ipv6_rtp.pcap", lt: capture.LinkRaw, frame: capturetest.Frame{LinkType: capture.LinkRaw, Src: v6a, Dst: v6b, RTP: rtp(15), Payload: payload160},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, src: v6a.String(), dst: v6b.String(), seq: 15, ssrc: 0x1234abcd, payload: 160}},
	{name: "RTP with CSRCs, extension and padding", file: "rtp_ext_pad.pcap", frame: capturetest.Frame{RTP: &capturetest.RTP{PayloadType: 8, Seq: 16, SSRC: 7, CSRCs: []uint32{1, 2}, Extension: make([]byte, 8), ExtProfile: 0xbede, Padding: 4}, Payload: payload160[:80]},
		want: want{reason: capture.ReasonRTP, kind: capture.KindRTP, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true, pt: 8, seq: 16, ssrc: 7, csrcs: 2, payload: 80}},
	{name: "RTP padding longer than packet", file: "rtp_bad_padding.pcap", frame: capturetest.Frame{RTP: &capturetest.RTP{Seq: 17, SSRC: 7, Padding: 2}, Payload: payload160[:20]},
		raw:  func(b []byte) []byte { b[len(b)-1] = 200; return b },
		want: want{reason: capture.ReasonNotRTP, kind: capture.KindUDP, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true}},
	{name: "RTP extension beyond packet", file: "rtp_bad_extension.pcap", frame: capturetest.Frame{RTP: &capturetest.RTP{Seq: 18, SSRC: 7, Extension: []byte{}}, UDPRaw: []byte{0x90, 0, 0, 18, 0, 0, 0, 0, 0, 0, 0, 7, 0xbe, 0xde, 0, 9, 1, 2, 3, 4}},
		want: want{reason: capture.ReasonNotRTP, kind: capture.KindUDP, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true}},
	{name: "RTCP sender report", file: "rtcp_sr.pcap", frame: capturetest.Frame{UDPRaw: append([]byte{0x80, 200, 0, 6}, make([]byte, 24)...)},
		want: want{reason: capture.ReasonRTCPSR, kind: capture.KindRTCP, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true}},
	{name: "RTCP receiver report", file: "rtcp_rr.pcap", frame: capturetest.Frame{UDPRaw: append([]byte{0x81, 201, 0, 7}, make([]byte, 28)...)},
		want: want{reason: capture.ReasonRTCPRR, kind: capture.KindRTCP, src: "10.0.0.1:40000", dst: "10.0.0.2:40002", hasMAC: true}},
	{name: "UDP not RTP", file: "udp_dns.pcap", frame: capturetest.Frame{Dst: netip.MustParseAddrPort("10.0.0.53:53"), UDPRaw: []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}},
		want: want{reason: capture.ReasonUDP, kind: capture.KindUDP, src: "10.0.0.1:40000", dst: "10.0.0.53:53", hasMAC: true}},
	{name: "IPv4 fragment", file: "ipv4_fragment.pcap", frame: capturetest.Frame{MoreFragments: true, RTP: rtp(19), Payload: payload160},
		want: want{err: capture.ErrFragment, reason: capture.ReasonFragment}},
	{name: "truncated Ethernet", file: "truncated_ethernet.pcap", frame: capturetest.Frame{RTP: rtp(20)}, raw: func(b []byte) []byte { return b[:10] },
		want: want{err: capture.ErrTruncatedEthernet, reason: capture.ReasonTruncatedLink}},
	{name: "truncated VLAN tag", file: "truncated_vlan.pcap", frame: capturetest.Frame{VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}, RTP: rtp(21)}, raw: func(b []byte) []byte { return b[:16] },
		want: want{err: capture.ErrTruncatedVLAN, reason: capture.ReasonTruncatedVLAN}},
	{name: "truncated IPv4", file: "truncated_ipv4.pcap", frame: capturetest.Frame{RTP: rtp(22), Payload: payload160}, raw: func(b []byte) []byte { return b[:100] },
		want: want{err: capture.ErrTruncatedIP, reason: capture.ReasonTruncatedIP}},
	{name: "truncated IPv6", file: "truncated_ipv6.pcap", frame: capturetest.Frame{Src: v6a, Dst: v6b, RTP: rtp(23), Payload: payload160}, raw: func(b []byte) []byte { return b[:40] },
		want: want{err: capture.ErrTruncatedIP, reason: capture.ReasonTruncatedIP}},
	{name: "UDP length beyond IP packet", file: "truncated_udp.pcap", frame: capturetest.Frame{RTP: rtp(24), Payload: payload160},
		raw:  func(b []byte) []byte { b[14+20+4] = 0xff; return b },
		want: want{err: capture.ErrTruncatedUDP, reason: capture.ReasonTruncatedUDP}},
	{name: "truncated SLL2", file: "truncated_sll2.pcap", lt: capture.LinkSLL2, frame: capturetest.Frame{LinkType: capture.LinkSLL2, RTP: rtp(25)}, raw: func(b []byte) []byte { return b[:12] },
		want: want{err: capture.ErrTruncatedLink, reason: capture.ReasonTruncatedLink}},
	{name: "bad IP version", file: "bad_ip_version.pcap", frame: capturetest.Frame{RTP: rtp(26)}, raw: func(b []byte) []byte { b[14] = 0x55; return b },
		want: want{err: capture.ErrBadIPVersion, reason: capture.ReasonBadIPVersion}},
}

var goldenTime = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC)

func (g golden) linkType() capture.LinkType {
	if g.lt == 0 {
		return capture.LinkEthernet
	}
	return g.lt
}

// build returns the golden frame's bytes.
func (g golden) build() []byte {
	b := capturetest.Build(g.frame)
	if g.raw != nil {
		b = g.raw(b)
	}
	return b
}

// TestGoldenUpdate rewrites the golden captures with -update; the
// decoding tests then read them back from testdata/.
func TestGoldenUpdate(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/*.pcap")
	}
	for _, g := range goldens {
		b := g.build()
		var buf bytes.Buffer
		if err := capturetest.WritePcap(&buf, g.linkType(), true, [][]byte{b}, []time.Time{goldenTime}); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("testdata", g.file), buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeMixedGolden(t)
}

func readGolden(t *testing.T, file string) ([]byte, capture.Info, capture.LinkType) {
	t.Helper()
	src, err := capture.OpenFile(filepath.Join("testdata", file), capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	frames := make([][]byte, 4)
	infos := make([]capture.Info, 4)
	n, err := src.ReadBatch(frames, infos)
	if err != nil || n != 1 {
		t.Fatalf("ReadBatch = %d, %v; want one frame", n, err)
	}
	if _, err := src.ReadBatch(frames, infos); err != io.EOF {
		t.Fatalf("second ReadBatch: %v, want io.EOF", err)
	}
	return append([]byte(nil), frames[0]...), infos[0], src.LinkType()
}

func TestDecodeGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			frame, info, lt := readGolden(t, g.file)
			if lt != g.linkType() {
				t.Fatalf("link type %d, want %d", lt, g.linkType())
			}
			if !info.Timestamp.Equal(goldenTime) {
				t.Errorf("timestamp %v, want %v (nanosecond pcap)", info.Timestamp, goldenTime)
			}
			var p capture.Packet
			err := p.Decode(frame, lt, &info)
			var c capture.DecodeCounters
			if r := c.Count(&p, err); r != g.want.reason {
				t.Errorf("reason %v, want %v", r, g.want.reason)
			}
			if !errors.Is(err, g.want.err) || (err == nil) != (g.want.err == nil) {
				t.Fatalf("Decode error %v, want %v", err, g.want.err)
			}
			if err != nil {
				return
			}
			w := g.want
			if p.Kind != w.kind {
				t.Errorf("kind %d, want %d", p.Kind, w.kind)
			}
			if p.NumVLANs != len(w.vlans) {
				t.Fatalf("%d VLAN tags, want %d", p.NumVLANs, len(w.vlans))
			}
			for i, v := range w.vlans {
				if p.VLANs[i] != v {
					t.Errorf("tag %d = %+v, want %+v", i, p.VLANs[i], v)
				}
			}
			if len(w.vlans) > 0 {
				outer, ok := p.OuterVLAN()
				if !ok || outer.ID() != w.vlans[0].ID() || outer.Priority() != w.vlans[0].Priority() {
					t.Errorf("outer VLAN %d prio %d, want %d prio %d", outer.ID(), outer.Priority(), w.vlans[0].ID(), w.vlans[0].Priority())
				}
			}
			if p.Src.String() != w.src || p.Dst.String() != w.dst {
				t.Errorf("%v → %v, want %s → %s", p.Src, p.Dst, w.src, w.dst)
			}
			if p.HasMAC != w.hasMAC || (w.hasMAC && g.frame.SrcMAC != p.SrcMAC) {
				t.Errorf("HasMAC %v src %x, want %v %x", p.HasMAC, p.SrcMAC, w.hasMAC, g.frame.SrcMAC)
			}
			if p.TOS != w.tos {
				t.Errorf("TOS %#x, want %#x", p.TOS, w.tos)
			}
			if p.Kind == capture.KindRTP {
				h := p.RTP
				if h.PayloadType != w.pt || h.SequenceNumber != w.seq || h.SSRC != w.ssrc || h.CSRCCount != w.csrcs || len(h.Payload) != w.payload {
					t.Errorf("RTP pt %d seq %d ssrc %#x csrcs %d payload %d, want %d %d %#x %d %d",
						h.PayloadType, h.SequenceNumber, h.SSRC, h.CSRCCount, len(h.Payload), w.pt, w.seq, w.ssrc, w.csrcs, w.payload)
				}
			}
		})
	}
}

// TestDecodeKernelVLAN checks that a tag reported out of band (the kernel
// stripped it) comes first, before the tags still in the frame.
func TestDecodeKernelVLAN(t *testing.T) {
	tests := []struct {
		name    string
		info    capture.Info
		inFrame []capture.VLANTag
		want    []capture.VLANTag
	}{
		{"stripped 802.1Q", capture.Info{VLANValid: true, VLANTCI: 5<<13 | 85, VLANTPID: 0x8100}, nil, []capture.VLANTag{tag(0x8100, 5, 85)}},
		{"stripped without TPID", capture.Info{VLANValid: true, VLANTCI: 7<<13 | 4094}, nil, []capture.VLANTag{tag(0x8100, 7, 4094)}},
		{"stripped outer 802.1ad, inner in frame", capture.Info{VLANValid: true, VLANTCI: 3<<13 | 100, VLANTPID: 0x88a8}, []capture.VLANTag{tag(0x8100, 5, 85)}, []capture.VLANTag{tag(0x88a8, 3, 100), tag(0x8100, 5, 85)}},
		{"VLAN 0 priority tag", capture.Info{VLANValid: true, VLANTCI: 5 << 13, VLANTPID: 0x8100}, nil, []capture.VLANTag{tag(0x8100, 5, 0)}},
		{"not valid", capture.Info{VLANTCI: 85}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := capturetest.Build(capturetest.Frame{VLANs: tt.inFrame, RTP: rtp(1), Payload: payload160})
			var p capture.Packet
			if err := p.Decode(b, capture.LinkEthernet, &tt.info); err != nil {
				t.Fatal(err)
			}
			if p.NumVLANs != len(tt.want) {
				t.Fatalf("%d tags, want %d", p.NumVLANs, len(tt.want))
			}
			for i := range tt.want {
				if p.VLANs[i] != tt.want[i] {
					t.Errorf("tag %d = %+v, want %+v", i, p.VLANs[i], tt.want[i])
				}
			}
		})
	}
}

// TestDecodeReuse checks that Decode resets every field: a packet reused
// for a shorter, untagged frame keeps nothing of the previous one.
func TestDecodeReuse(t *testing.T) {
	var p capture.Packet
	info := capture.Info{VLANValid: true, VLANTCI: 85}
	if err := p.Decode(capturetest.Build(capturetest.Frame{VLANs: []capture.VLANTag{tag(0x8100, 1, 2)}, RTP: rtp(1), Payload: payload160}), capture.LinkEthernet, &info); err != nil {
		t.Fatal(err)
	}
	if err := p.Decode(capturetest.Build(capturetest.Frame{UDPRaw: []byte{1, 2, 3}}), capture.LinkEthernet, nil); err != nil {
		t.Fatal(err)
	}
	if p.NumVLANs != 0 || p.Kind != capture.KindUDP || p.RTP.SSRC != 0 || p.RTPErr != nil || len(p.UDP) != 3 {
		t.Errorf("stale fields after reuse: %+v", p)
	}
}

func TestDecodeZeroAlloc(t *testing.T) {
	frames := [][]byte{
		capturetest.Build(capturetest.Frame{VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}, RTP: rtp(1), Payload: payload160}),
		capturetest.Build(capturetest.Frame{VLANs: []capture.VLANTag{tag(0x88a8, 3, 100), tag(0x8100, 5, 85)}, Src: v6a, Dst: v6b, RTP: rtp(2), Payload: payload160}),
		capturetest.Build(capturetest.Frame{RTP: rtp(3)})[:40],
		capturetest.Build(capturetest.Frame{RTP: &capturetest.RTP{Padding: 250}}),
	}
	var p capture.Packet
	var c capture.DecodeCounters
	info := capture.Info{VLANValid: true, VLANTCI: 85}
	allocs := testing.AllocsPerRun(1000, func() {
		for _, f := range frames {
			err := p.Decode(f, capture.LinkEthernet, &info)
			c.Count(&p, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Decode allocates %.1f times per run, want 0", allocs)
	}
}

func TestRTPUnmarshal(t *testing.T) {
	tests := []struct {
		name    string
		b       []byte
		err     error
		payload int
	}{
		{"minimal", capturetest.RTPBytes(capturetest.RTP{Seq: 1}, nil), nil, 0},
		{"short", []byte{0x80, 0, 0}, capture.ErrTruncatedRTP, 0},
		{"version 1", []byte{0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, capture.ErrBadRTPVersion, 0},
		{"15 CSRCs missing", []byte{0x8f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, capture.ErrTruncatedRTP, 0},
		{"extension header missing", []byte{0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2}, capture.ErrTruncatedRTP, 0},
		{"padding zero", []byte{0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0}, capture.ErrBadRTPPadding, 0},
		{"padding all payload", capturetest.RTPBytes(capturetest.RTP{Padding: 4}, nil), nil, 0},
		{"padding and payload", capturetest.RTPBytes(capturetest.RTP{Padding: 3, CSRCs: []uint32{9}}, make([]byte, 20)), nil, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h capture.RTPHeader
			err := h.Unmarshal(tt.b)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err == nil && len(h.Payload) != tt.payload {
				t.Errorf("payload %d bytes, want %d", len(h.Payload), tt.payload)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	for _, g := range goldens {
		b := g.build()
		f.Add(b, uint16(g.linkType()), false, uint16(0))
	}
	for _, s := range capturetest.Services(1) {
		f.Add(capturetest.Build(s.Frame()), uint16(capture.LinkEthernet), false, uint16(0))
	}
	// The second bytes where the straight pass and the general path once
	// disagreed (RTCP feedback against marked RTP of payload type 77 and
	// 78), and the edges of the RTCP range.
	for _, b := range []byte{0xCD, 0xCE, 0xBF, 0xC0, 0xDF, 0xE0, 0x48, 0x4C, 0xC8, 0xCC} {
		f.Add(secondByteFrame(b), uint16(capture.LinkEthernet), false, uint16(0))
		f.Add(secondByteFrame(b), uint16(capture.LinkEthernet), true, uint16(85))
	}
	f.Fuzz(func(t *testing.T, b []byte, lt uint16, vlanValid bool, tci uint16) {
		var p capture.Packet
		info := capture.Info{VLANValid: vlanValid, VLANTCI: tci}
		err := p.Decode(b, capture.LinkType(lt), &info)
		r := capture.ReasonOf(&p, err)
		if err != nil && !r.IsError() {
			t.Fatalf("error %v classified as %v", err, r)
		}
		if err == nil && p.Kind == capture.KindRTP {
			if len(p.RTP.Payload) > len(p.UDP) {
				t.Fatalf("RTP payload %d longer than UDP payload %d", len(p.RTP.Payload), len(p.UDP))
			}
		}
		if p.NumVLANs > capture.MaxVLANs {
			t.Fatalf("%d VLAN tags", p.NumVLANs)
		}
		// The fast path for common frames must agree with the general one.
		var g capture.Packet
		gerr := g.DecodeGeneral(b, capture.LinkType(lt), &info)
		if gerr != err || g.Kind != p.Kind || g.RTCPType != p.RTCPType || g.RTPErr != p.RTPErr || g.Src != p.Src || g.Dst != p.Dst || g.NumVLANs != p.NumVLANs ||
			g.VLANs != p.VLANs || g.TOS != p.TOS || g.HasMAC != p.HasMAC || g.SrcMAC != p.SrcMAC || g.DstMAC != p.DstMAC ||
			len(g.UDP) != len(p.UDP) || g.RTP.SSRC != p.RTP.SSRC || g.RTP.SequenceNumber != p.RTP.SequenceNumber ||
			g.RTP.Timestamp != p.RTP.Timestamp || g.RTP.Marker != p.RTP.Marker || g.RTP.PayloadType != p.RTP.PayloadType ||
			len(g.RTP.Payload) != len(p.RTP.Payload) {
			t.Fatalf("fast and general decoding differ:\n%+v %v\n%+v %v", p, err, g, gerr)
		}
		var br capture.Brief
		if capture.LinkType(lt) == capture.LinkEthernet && br.Decode(b, &info) &&
			(gerr != nil || g.Kind != capture.KindRTP || br != g.BriefOf().WithOffset(br.Offset())) {
			t.Fatalf("Brief.Decode took the frame as %+v; the general path: %v %v %+v", br, gerr, g.Kind, g.BriefOf())
		}
		checkIPv4(t, &p)
		checkIPv4(t, &g)
		if p.Kind == capture.KindRTP {
			f1, k1, v1, m1 := p.StreamKeyFields()
			f2, k2, v2, m2 := g.StreamKeyFields()
			if f1 != f2 || k1 != k2 || v1 != v2 || m1 != m2 {
				t.Fatalf("fast and general decoding give different stream keys: %x %x %x %x, %x %x %x %x", f1, k1, v1, m1, f2, k2, v2, m2)
			}
		}
	})
}

// TestDecodeTCP: a TCP segment's ports, sequence number, flags and
// payload are decoded (SIP over TCP is read from them); the Kind stays
// capture.KindOther, and an RTP packet decoded next has no TCP payload.
func TestDecodeTCP(t *testing.T) {
	frame := []byte{
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, // Ethernet
		0x45, 0, 0, 20 + 20 + 5, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, // IPv4, TCP
		0x13, 0xc4, 0x13, 0xc4, 0, 0, 0x10, 0, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0, // TCP 5060 → 5060, seq 4096, PSH|ACK
		'I', 'N', 'V', 'I', 'T',
	}
	var p capture.Packet
	if err := p.Decode(frame, capture.LinkEthernet, nil); err != nil {
		t.Fatal(err)
	}
	if p.Kind != capture.KindOther || p.IPProto != 6 || string(p.TCP) != "INVIT" || p.TCPSeq != 4096 || p.TCPFlags != 0x18 ||
		p.Src.String() != "10.0.0.1:5060" || p.Dst.String() != "10.0.0.2:5060" {
		t.Fatalf("decoded %+v", p)
	}
	if err := p.Decode(frame[:14+20+10], capture.LinkEthernet, nil); err == nil {
		t.Error("a truncated TCP header decoded")
	}
}
