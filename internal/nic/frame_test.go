package nic

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/silentmon/silentmon/capture"
)

func TestBuildFrameDecodes(t *testing.T) {
	tests := []struct {
		name string
		spec FrameSpec
		dst  [6]byte
	}{
		{"defaults broadcast", FrameSpec{Src: [6]byte{2, 0, 0, 0, 0, 1}, VLAN: 85, Priority: 5, RunID: 7, Index: 0, Total: 5}, Broadcast},
		{"unicast vlan 4094 p 0", FrameSpec{Dst: [6]byte{0, 0xd0, 0x59, 0xd8, 0xf7, 0xd9}, VLAN: 4094, RunID: 0xdeadbeef, Index: 4, Total: 5}, [6]byte{0, 0xd0, 0x59, 0xd8, 0xf7, 0xd9}},
		{"priority 7 vlan 1", FrameSpec{VLAN: 1, Priority: 7, Index: 65535, Total: 65535,
			SrcIP: netip.MustParseAddr("192.0.2.1"), DstIP: netip.MustParseAddr("192.0.2.2"), SrcPort: 4000, DstPort: 5000}, Broadcast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := make([]byte, FrameLen+10)
			n, err := BuildFrame(buf, &tt.spec)
			if err != nil || n != FrameLen {
				t.Fatalf("BuildFrame = %d, %v", n, err)
			}
			var p capture.Packet
			if err := p.Decode(buf[:n], capture.LinkEthernet, nil); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if p.Kind != capture.KindRTP || p.NumVLANs != 1 || p.DstMAC != tt.dst || p.SrcMAC != tt.spec.Src {
				t.Fatalf("decoded %+v", p)
			}
			tag := p.VLANs[0]
			if tag.TPID != 0x8100 || tag.ID() != tt.spec.VLAN || tag.Priority() != tt.spec.Priority {
				t.Errorf("tag %+v, want VLAN %d p %d", tag, tt.spec.VLAN, tt.spec.Priority)
			}
			if p.TOS != 0xb8 || p.RTP.SequenceNumber != tt.spec.Index || p.RTP.PayloadType != 0 || len(p.RTP.Payload) != PayloadLen {
				t.Errorf("RTP %+v TOS %#x", p.RTP, p.TOS)
			}
			if ipChecksum(buf[18:38]) != 0 {
				t.Error("IPv4 header checksum does not verify")
			}
			m, ok := ParseMarker(p.UDP)
			if !ok || m != (Marker{RunID: tt.spec.RunID, Index: tt.spec.Index, Total: tt.spec.Total}) {
				t.Errorf("marker %+v %v", m, ok)
			}
			if tt.spec.SrcPort != 0 && (p.Src.Port() != tt.spec.SrcPort || p.Dst.Addr() != tt.spec.DstIP) {
				t.Errorf("addresses %v > %v", p.Src, p.Dst)
			}
		})
	}
}

func TestBuildFrameErrors(t *testing.T) {
	buf := make([]byte, FrameLen)
	if _, err := BuildFrame(buf[:FrameLen-1], &FrameSpec{}); !errors.Is(err, ErrFrameTooShort) {
		t.Errorf("short buffer: %v", err)
	}
	if _, err := BuildFrame(buf, &FrameSpec{VLAN: 4096}); err == nil {
		t.Error("VLAN 4096 accepted")
	}
	if _, err := BuildFrame(buf, &FrameSpec{Priority: 8}); err == nil {
		t.Error("priority 8 accepted")
	}
}

func TestParseMarkerRejects(t *testing.T) {
	buf := make([]byte, FrameLen)
	n, _ := BuildFrame(buf, &FrameSpec{VLAN: 85, RunID: 1})
	rtp := buf[n-rtpLen-PayloadLen : n]
	tests := []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"too short", func(b []byte) []byte { return b[:rtpLen+markerLen-1] }},
		{"RTP version 1", func(b []byte) []byte { b[0] = 0x40; return b }},
		{"bad magic", func(b []byte) []byte { b[rtpLen] = 'X'; return b }},
		{"CSRC count hides the marker", func(b []byte) []byte { b[0] |= 0x0f; return b[:rtpLen+40] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.mod(append([]byte(nil), rtp...))
			if m, ok := ParseMarker(b); ok {
				t.Errorf("ParseMarker accepted %+v", m)
			}
		})
	}
}

func TestParseMAC(t *testing.T) {
	want := [6]byte{0x00, 0xd0, 0x59, 0xd8, 0xf7, 0xd9}
	tests := []struct {
		in string
		ok bool
	}{
		{"00:d0:59:d8:f7:d9", true},
		{"00-D0-59-D8-F7-D9", true},
		{"00d0.59d8.f7d9", true},
		{"00D059d8f7d9", true},
		{" 00:d0:59:d8:f7:d9 ", true},
		{"", false},
		{"zz", false},
		{"00:d0:59:d8:f7", false},
		{"00:d0:59:d8:f7:d9:00:11", false},
		{"00D059d8f7dz", false},
		{"00:00:00:00:fe:80:00:00:00:00:00:00:02:00:5e:10:00:00:00:01", false}, // IPoIB, 20 bytes
	}
	for _, tt := range tests {
		got, err := ParseMAC(tt.in)
		if tt.ok && (err != nil || got != want) {
			t.Errorf("ParseMAC(%q) = %x, %v", tt.in, got, err)
		}
		if !tt.ok && !errors.Is(err, ErrBadMAC) {
			t.Errorf("ParseMAC(%q) error %v, want ErrBadMAC", tt.in, err)
		}
	}
}

func TestRewrite(t *testing.T) {
	buf := make([]byte, FrameLen)
	BuildFrame(buf, &FrameSpec{VLAN: 85})
	dst, src := [6]byte{1, 2, 3, 4, 5, 6}, [6]byte{6, 5, 4, 3, 2, 1}
	if RewriteDst(buf, dst) != nil || RewriteSrc(buf, src) != nil {
		t.Fatal("rewrite failed")
	}
	if [6]byte(buf[0:6]) != dst || [6]byte(buf[6:12]) != src || binary.BigEndian.Uint16(buf[12:]) != 0x8100 {
		t.Errorf("frame head %x", buf[:14])
	}
	if RewriteDst(buf[:13], dst) == nil || RewriteSrc(buf[:5], src) == nil {
		t.Error("short frame rewritten")
	}
}

func TestZeroAllocs(t *testing.T) {
	buf := make([]byte, FrameLen)
	spec := FrameSpec{VLAN: 85, Priority: 5, RunID: 9}
	if n := testing.AllocsPerRun(100, func() { _, _ = BuildFrame(buf, &spec) }); n != 0 {
		t.Errorf("BuildFrame allocates %v times", n)
	}
	udp := buf[18+ipv4Len+udpLen : FrameLen]
	if n := testing.AllocsPerRun(100, func() { _, _ = ParseMarker(udp) }); n != 0 {
		t.Errorf("ParseMarker allocates %v times", n)
	}
	o := &Observer{VLAN: 85}
	info := &RxInfo{VLANValid: true, VLANTCI: 5<<13 | 85}
	if n := testing.AllocsPerRun(100, func() { _ = o.Observe(buf, info) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}

func BenchmarkBuildFrame(b *testing.B) {
	buf := make([]byte, FrameLen)
	spec := FrameSpec{VLAN: 85, Priority: 5, RunID: 9}
	b.ReportAllocs()
	b.SetBytes(FrameLen)
	for i := 0; b.Loop(); i++ {
		spec.Index = uint16(i)
		if _, err := BuildFrame(buf, &spec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkObserve(b *testing.B) {
	buf := make([]byte, FrameLen)
	BuildFrame(buf, &FrameSpec{VLAN: 85, Priority: 5, RunID: 9})
	o := &Observer{VLAN: 85, RunID: 9}
	info := &RxInfo{}
	b.ReportAllocs()
	b.SetBytes(FrameLen)
	for b.Loop() {
		_ = o.Observe(buf, info)
	}
}

func FuzzParseMarker(f *testing.F) {
	buf := make([]byte, FrameLen)
	BuildFrame(buf, &FrameSpec{VLAN: 85, RunID: 3, Index: 2, Total: 5})
	f.Add(buf[18+ipv4Len+udpLen:])
	f.Add([]byte{0x80, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := ParseMarker(b)
		if !ok && m != (Marker{}) {
			t.Fatalf("rejected with a non-zero marker %+v", m)
		}
	})
}

// FuzzObserve feeds arbitrary frames and out-of-band tags to the observer:
// it must not panic and its counts must stay consistent.
func FuzzObserve(f *testing.F) {
	buf := make([]byte, FrameLen)
	BuildFrame(buf, &FrameSpec{VLAN: 85, RunID: 3, Index: 2, Total: 5})
	f.Add(buf, false, uint16(0))
	f.Add(buf[:16], true, uint16(5<<13|86))
	f.Add(append(append([]byte(nil), buf[:12]...), buf[16:]...), true, uint16(85))
	f.Fuzz(func(t *testing.T, frame []byte, valid bool, tci uint16) {
		o := &Observer{VLAN: 85}
		ob := o.Observe(frame, &RxInfo{VLANValid: valid, VLANTCI: tci})
		c := o.Counts
		others := 0
		for _, n := range c.OtherVLANs {
			others += n
		}
		if c.Seen != 1 || c.Tagged+c.Untagged+c.WrongVLAN+c.Other != 1 || c.InFrame+c.OutOfBand != c.Tagged || others > 1 {
			t.Fatalf("inconsistent counts %+v for %+v", c, ob)
		}
		if valid && ob.Tag != TagOutOfBand {
			t.Fatalf("out-of-band tag not reported: %+v", ob)
		}
		_ = ob.Line()
	})
}
