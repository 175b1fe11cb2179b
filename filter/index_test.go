package filter

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/silentmon/silentmon/capture"
)

// TestAddrIndexMatchesMap checks that the packet path's address index
// answers what a map keyed by netip.Addr answers, for addresses present
// and absent (lookup, and lookup4 for a pair of IPv4 addresses), IPv4 and
// IPv6, an IPv4 address against its IPv4-mapped IPv6
// form (distinct addresses), and zoned IPv6 addresses.
func TestAddrIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	randAddr := func() netip.Addr {
		switch rng.IntN(4) {
		case 0:
			return netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256))})
		case 1:
			a := netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(4)), byte(rng.IntN(256))})
			return netip.AddrFrom16(a.As16()) // ::ffff:10.x.y.z
		case 2:
			var b [16]byte
			b[0], b[1], b[15] = 0x20, 0x01, byte(rng.IntN(256))
			b[14] = byte(rng.IntN(4))
			return netip.AddrFrom16(b)
		}
		var b [16]byte
		b[0], b[1], b[15] = 0xfe, 0x80, byte(rng.IntN(64))
		a := netip.AddrFrom16(b)
		if rng.IntN(2) == 0 {
			a = a.WithZone(fmt.Sprint("eth", rng.IntN(2)))
		}
		return a
	}
	for _, n := range []int{0, 1, 3, 100, 2000} {
		byIP := map[netip.Addr][]rule{}
		for i := 0; i < n; i++ {
			a := randAddr()
			byIP[a] = append(byIP[a], rule{lo: uint16(i), hi: uint16(i)})
		}
		x := newAddrIndex(byIP)
		for i := 0; i < 20000; i++ {
			a := randAddr()
			got, want := x.lookup(a), byIP[a]
			if len(got) != len(want) {
				t.Fatalf("%d addresses: lookup(%v) gives %d rules, the map %d", n, a, len(got), len(want))
			}
			for k := range got {
				if got[k] != want[k] {
					t.Fatalf("%d addresses: lookup(%v) rule %d is %+v, the map's %+v", n, a, k, got[k], want[k])
				}
			}
			if a.Is4() {
				// lookup4 answers as lookup for both addresses.
				b := randAddr()
				for !b.Is4() {
					b = randAddr()
				}
				s4, d4 := x.lookup4(a.As4(), b.As4())
				if len(s4) != len(got) || len(d4) != len(byIP[b]) {
					t.Fatalf("%d addresses: lookup4(%v, %v) gives %d and %d rules, the map %d and %d", n, a, b, len(s4), len(d4), len(got), len(byIP[b]))
				}
				for k := range s4 {
					if s4[k] != got[k] {
						t.Fatalf("lookup4(%v, ...) rule %d differs from lookup's", a, k)
					}
				}
			}
			if len(got) > 0 && a.Zone() == "" && cap(got) != len(got) {
				t.Fatalf("lookup(%v) returns a slice with room after it (cap %d, len %d)", a, cap(got), len(got))
			}
		}
	}
}

// TestMatchIPv4MappedIsNotIPv4 checks that a packet between IPv4-mapped
// IPv6 addresses does not match an endpoint of the IPv4 address.
func TestMatchIPv4MappedIsNotIPv4(t *testing.T) {
	ep, err := ParseEndpoint("10.1.1.1")
	if err != nil {
		t.Fatal(err)
	}
	f := New()
	f.Set([]*Session{{ID: "s1", Agent: "a", Endpoints: []Endpoint{ep}}})
	v4 := netip.MustParseAddr("10.1.1.1")
	mapped := netip.AddrFrom16(v4.As16())
	for _, c := range []struct {
		src  netip.Addr
		want bool
	}{{v4, true}, {mapped, false}} {
		p := capture.Packet{Kind: capture.KindRTP, Src: netip.AddrPortFrom(c.src, 20000),
			Dst: netip.AddrPortFrom(netip.MustParseAddr("::ffff:10.2.2.2"), 30000)}
		if _, ok := f.Match(&p); ok != c.want {
			t.Errorf("packet from %v: matched %v, want %v", c.src, ok, c.want)
		}
	}
}

// TestAddrIndexBitmapMisses: the bitmap in front of the index answers
// at least 92% of lookups of absent addresses by itself (16 to 32 bits
// per address, one set for each: at most about 6% of them set), so that
// both ends of most packets on a busy port cost one probe each.
func TestAddrIndexBitmapMisses(t *testing.T) {
	byIP := map[netip.Addr][]rule{}
	for i := 0; i < 1000; i++ {
		byIP[netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})] = []rule{{}}
	}
	x := newAddrIndex(byIP)
	const n = 100000
	passed := 0
	for i := 0; i < n; i++ {
		a := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		hi, lo := addrHalves(a)
		if x.maybe(x.hash(hi, lo)) {
			passed++
		}
	}
	if passed > n*8/100 {
		t.Fatalf("the bitmap let %d of %d absent addresses through, more than 8%%", passed, n)
	}
}
