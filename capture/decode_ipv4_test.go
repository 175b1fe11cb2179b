package capture_test

import (
	"net/netip"
	"testing"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
)

// checkIPv4 fails when Packet.IPv4 disagrees with Src and Dst: it must
// give both addresses of every decoded UDP packet over IPv4 (but 0.0.0.0
// to 0.0.0.0) and nothing for any other packet.
func checkIPv4(t *testing.T, p *capture.Packet) {
	t.Helper()
	s, d, ok := p.IPv4()
	src, dst := p.Src.Addr(), p.Dst.Addr()
	want := p.Kind != capture.KindOther && src.Is4() && dst.Is4() && !(src.IsUnspecified() && dst.IsUnspecified())
	if ok != want {
		t.Fatalf("IPv4() ok = %v for %v Src %v Dst %v, want %v", ok, p.Kind, p.Src, p.Dst, want)
	}
	if ok && (netip.AddrFrom4([4]byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)}) != src ||
		netip.AddrFrom4([4]byte{byte(d >> 24), byte(d >> 16), byte(d >> 8), byte(d)}) != dst) {
		t.Fatalf("IPv4() = %08x %08x, Src %v Dst %v", s, d, p.Src, p.Dst)
	}
}

// TestPacketIPv4: IPv4 gives the addresses of every golden frame that
// decodes as UDP over IPv4, on both decoding paths, and nothing for
// IPv6, non-UDP frames and a Packet filled in by hand.
func TestPacketIPv4(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.name, func(t *testing.T) {
			b := g.build()
			var p, q capture.Packet
			_ = p.Decode(b, g.linkType(), nil)
			checkIPv4(t, &p)
			_ = q.DecodeGeneral(b, g.linkType(), nil)
			checkIPv4(t, &q)
		})
	}
	hand := capture.Packet{Kind: capture.KindRTP, Src: netip.MustParseAddrPort("10.0.0.1:4000"), Dst: netip.MustParseAddrPort("10.0.0.2:4002")}
	if _, _, ok := hand.IPv4(); ok {
		t.Fatal("IPv4() ok for a Packet filled in by hand")
	}
	var p capture.Packet
	if err := p.Decode(capturetest.Build(capturetest.Frame{RTP: rtp(1)}), capture.LinkEthernet, nil); err != nil {
		t.Fatal(err)
	}
	s, d, ok := p.IPv4()
	if !ok || s != 0x0a000001 || d != 0x0a000002 {
		t.Fatalf("IPv4() = %08x %08x %v, want 0a000001 0a000002 true", s, d, ok)
	}
}
