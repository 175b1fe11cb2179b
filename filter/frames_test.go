package filter

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/silentmon/silentmon/capture"
)

// frame describes one Ethernet frame carrying RTP over UDP, for tests that
// need a packet with exact addresses, MACs and VLAN tags.
type frame struct {
	srcMAC, dstMAC [6]byte
	// vlans are the in-frame tags, outermost first; with two, the outer
	// one is an 802.1ad service tag.
	vlans    []uint16
	src, dst netip.AddrPort
	ssrc     uint32
	payload  int // RTP payload bytes (default 160)
	notUDP   bool
}

// bytes builds the frame: Ethernet, tags, IPv4 or IPv6, UDP, RTP v2 PCMU.
func (f frame) bytes() []byte {
	b := make([]byte, 0, 256)
	b = append(b, f.dstMAC[:]...)
	b = append(b, f.srcMAC[:]...)
	for i, v := range f.vlans {
		tpid := uint16(0x8100)
		if len(f.vlans) > 1 && i == 0 {
			tpid = 0x88a8
		}
		b = binary.BigEndian.AppendUint16(b, tpid)
		b = binary.BigEndian.AppendUint16(b, 5<<13|v)
	}
	n := f.payload
	if n == 0 {
		n = 160
	}
	udp := make([]byte, 8+12+n)
	binary.BigEndian.PutUint16(udp[0:], f.src.Port())
	binary.BigEndian.PutUint16(udp[2:], f.dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
	rtp := udp[8:]
	rtp[0] = 0x80
	rtp[1] = 0 // PCMU
	binary.BigEndian.PutUint16(rtp[2:], 1)
	binary.BigEndian.PutUint32(rtp[4:], 160)
	binary.BigEndian.PutUint32(rtp[8:], f.ssrc)
	proto := byte(17)
	if f.notUDP {
		proto = 6
	}
	if f.src.Addr().Is4() {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		ip := make([]byte, 20)
		ip[0] = 0x45
		ip[1] = 0xb8
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		ip[8] = 64
		ip[9] = proto
		s, d := f.src.Addr().As4(), f.dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		b = append(b, ip...)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		ip := make([]byte, 40)
		ip[0] = 0x6b
		ip[1] = 0x80
		binary.BigEndian.PutUint16(ip[4:], uint16(len(udp)))
		ip[6] = proto
		ip[7] = 64
		s, d := f.src.Addr().As16(), f.dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		b = append(b, ip...)
	}
	return append(b, udp...)
}

// decode builds f and decodes it; info may be nil.
func (f frame) decode(t testing.TB, info *capture.Info) *capture.Packet {
	t.Helper()
	p := new(capture.Packet)
	if err := p.Decode(f.bytes(), capture.LinkEthernet, info); err != nil {
		t.Fatalf("decode %+v: %v", f, err)
	}
	if !f.notUDP && p.Kind != capture.KindRTP {
		t.Fatalf("decode %+v: kind %d, want RTP", f, p.Kind)
	}
	return p
}

func mustEndpoints(t testing.TB, ss ...string) []Endpoint {
	t.Helper()
	out := make([]Endpoint, len(ss))
	for i, s := range ss {
		e, err := ParseEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = e
	}
	return out
}

func mac(s string) [6]byte {
	e, err := ParseEndpoint(s)
	if err != nil || !e.HasMAC {
		panic("bad MAC in test: " + s)
	}
	return e.MAC
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
