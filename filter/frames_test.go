package filter

import (
	"net/netip"
	"testing"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
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

// bytes builds the frame: Ethernet, tags (priority 5), IPv4 or IPv6 with
// ToS EF, UDP, RTP v2 PCMU.
func (f frame) bytes() []byte {
	tags := make([]capture.VLANTag, len(f.vlans))
	for i, v := range f.vlans {
		tpid := uint16(0x8100)
		if len(f.vlans) > 1 && i == 0 {
			tpid = 0x88a8
		}
		tags[i] = capture.VLANTag{TPID: tpid, TCI: 5<<13 | v}
	}
	n := f.payload
	if n == 0 {
		n = 160
	}
	b := capturetest.Build(capturetest.Frame{SrcMAC: f.srcMAC, DstMAC: f.dstMAC, VLANs: tags,
		Src: f.src, Dst: f.dst, TOS: 0xb8,
		RTP: &capturetest.RTP{Seq: 1, Timestamp: 160, SSRC: f.ssrc}, Payload: make([]byte, n)})
	if f.notUDP { // the same bytes marked TCP, with a 20-byte TCP header
		ip := b[14+4*len(tags):]
		l4 := ip[40:]
		if f.src.Addr().Is4() {
			ip[9] = 6
			l4 = ip[20:]
		} else {
			ip[6] = 6
		}
		l4[12] = 5 << 4 // data offset
	}
	return b
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
