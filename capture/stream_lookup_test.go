package capture_test

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
)

// TestStreamStatsLookup checks that StreamTable.Stats returns, for every
// tracked stream, exactly the entry Snapshot gives (IPv4 and IPv6, tagged
// and untagged, streams whose IPv6 digests collide, after gaps,
// reordering and expiry), and reports a stream that differs in any one
// key field, or was expired, as not tracked.
func TestStreamStatsLookup(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	tab := capture.NewStreamTable(capture.StreamTableConfig{IdleTimeout: time.Second})
	base := time.Unix(1700000000, 0)
	srcs := []netip.AddrPort{
		netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.3:40000"),
		netip.MustParseAddrPort("[::]:5000"), netip.MustParseAddrPort("[200::100:0:0:0]:5000"), // digests collide
	}
	dsts := []netip.AddrPort{netip.MustParseAddrPort("10.0.0.2:40002"), netip.MustParseAddrPort("[2001:db8::2]:6000")}
	var now time.Time
	for i := 0; i < 3000; i++ {
		src := srcs[rng.IntN(len(srcs))]
		dst := dsts[0]
		if !src.Addr().Is4() {
			dst = dsts[1]
		}
		f := capturetest.Frame{Src: src, Dst: dst, Payload: payload160,
			RTP: &capturetest.RTP{SSRC: uint32(rng.IntN(40)), Seq: uint16(i/3 - rng.IntN(3)), Timestamp: uint32(i/3) * 160}}
		if rng.IntN(2) == 0 {
			f.VLANs = []capture.VLANTag{tag(0x8100, 5, uint16(85+rng.IntN(2)))}
		}
		now = base.Add(time.Duration(i) * time.Millisecond)
		tab.Update(decodeRTP(t, f), now)
		if i == 1500 {
			tab.Expire(now) // forgets the streams silent for a second
		}
	}
	snap := tab.Snapshot(nil)
	if len(snap) < 100 {
		t.Fatalf("%d streams tracked, want at least 100", len(snap))
	}
	tracked := map[capture.StreamKey]bool{}
	for _, want := range snap {
		tracked[want.StreamKey] = true
		got, ok := tab.Stats(want.StreamKey)
		if !ok {
			t.Fatalf("Stats(%+v) says not tracked", want.StreamKey)
		}
		if got != want {
			t.Fatalf("Stats(%+v) = %+v, Snapshot has %+v", want.StreamKey, got, want)
		}
	}
	for _, st := range snap {
		k := st.StreamKey
		for _, other := range []capture.StreamKey{
			{VLAN: k.VLAN ^ 1, Src: k.Src, Dst: k.Dst, SSRC: k.SSRC},
			{VLAN: k.VLAN, Src: netip.AddrPortFrom(k.Src.Addr(), k.Src.Port()+1), Dst: k.Dst, SSRC: k.SSRC},
			{VLAN: k.VLAN, Src: k.Src, Dst: k.Dst, SSRC: k.SSRC + 1000},
			{VLAN: k.VLAN, Src: k.Dst, Dst: k.Src, SSRC: k.SSRC},
		} {
			if _, ok := tab.Stats(other); ok != tracked[other] {
				t.Fatalf("Stats(%+v) says tracked %v, want %v", other, ok, tracked[other])
			}
		}
	}
	tab.Expire(now.Add(time.Hour))
	if _, ok := tab.Stats(snap[0].StreamKey); ok {
		t.Fatalf("Stats(%+v) finds a stream after Expire forgot every stream", snap[0].StreamKey)
	}
}
