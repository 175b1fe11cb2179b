package filter

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
)

// addrIndex maps IP addresses to their rules on the packet path. It is
// built once per filter table and never changed, so lookups take no lock.
//
// Layout: open addressing with linear probing, at most half full, of
// 40-byte entries holding the address itself (its two 64-bit halves and
// whether it is IPv6) and its rule when it has one, or where its rules
// start in one shared rule array.
// A lookup hashes the address with one 64x64→128-bit multiplication by the
// index's random seeds and reads one entry (rarely two): no generic map,
// no call, no allocation. In front of the entries, a bitmap of 16 to 32
// bits per address, one of them set for each (256 KiB for 100,000
// addresses, against 10 MiB of entries) answers most lookups of an address that is not there (the far
// end of nearly every monitored packet, both ends of every other one)
// without touching the entries. Zoned IPv6 addresses (never produced by Decode,
// refused by ParseEndpoint) stay in a plain map beside it, so that the
// index answers exactly what a map keyed by netip.Addr would.
type addrIndex struct {
	bits    []uint64 // bitsOf(h) set in word(h) for every address of hash h
	wmask   uint64   // len(bits) - 1 (a power of two minus one)
	entries []addrEntry
	rules   []rule
	mask    uint64
	seed    [2]uint64
	zoned   map[netip.Addr][]rule
}

// addrEntry is one address of an addrIndex; meta is 0 for an empty entry.
// The rule of an address with one rule (nearly all: one session per
// phone) is kept in the entry itself, so that a lookup reads one place in
// memory, not two.
type addrEntry struct {
	hi, lo uint64  // the address as 16 bytes, big-endian halves
	first  uint32  // with more than one rule: they are rules[first : first+n]
	meta   uint32  // n, | entryV6 for an IPv6 address (so ::ffff:a.b.c.d differs from a.b.c.d)
	one    [1]rule // the rule when n is 1
}

const entryV6 = 1 << 31

// addrHalves returns the halves of a's 16-byte form.
func addrHalves(a netip.Addr) (hi, lo uint64) {
	b := a.As16()
	return binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
}

func (x *addrIndex) hash(hi, lo uint64) uint64 {
	h, l := bits.Mul64(lo^x.seed[0], hi^x.seed[1])
	return h ^ l
}

// word returns the index in bits of the word that holds the bit of hash
// h, and bitsOf that bit (from bits of h that neither the word's index
// nor the entries' index use).
func (x *addrIndex) word(h uint64) uint64 { return h >> 38 & x.wmask }
func bitsOf(h uint64) uint64              { return 1 << (h >> 32 & 63) }

// maybe reports whether an address of hash h may be in the index: false
// is certain, true must be confirmed by find.
func (x *addrIndex) maybe(h uint64) bool { return x.bits[x.word(h)]&bitsOf(h) != 0 }

// newAddrIndex builds the index of byIP.
func newAddrIndex(byIP map[netip.Addr][]rule) *addrIndex {
	x := &addrIndex{seed: [2]uint64{rand.Uint64(), rand.Uint64()}, bits: make([]uint64, 1)}
	if len(byIP) == 0 {
		return x
	}
	size := 8
	for size < 2*len(byIP) {
		size *= 2
	}
	x.entries = make([]addrEntry, size)
	x.mask = uint64(size - 1)
	x.bits = make([]uint64, max(1, size/8)) // 8 bits per entry: 16 to 32 per address
	x.wmask = uint64(len(x.bits) - 1)
	for a, rs := range byIP {
		if a.Zone() != "" {
			if x.zoned == nil {
				x.zoned = map[netip.Addr][]rule{}
			}
			x.zoned[a] = rs
			continue
		}
		if len(rs) == 0 {
			continue
		}
		hi, lo := addrHalves(a)
		h := x.hash(hi, lo)
		x.bits[x.word(h)] |= bitsOf(h)
		j := h & x.mask
		for x.entries[j].meta != 0 {
			j = (j + 1) & x.mask
		}
		meta := uint32(len(rs))
		if !a.Is4() {
			meta |= entryV6
		}
		x.entries[j] = addrEntry{hi: hi, lo: lo, meta: meta}
		if len(rs) == 1 {
			x.entries[j].one[0] = rs[0]
		} else {
			x.entries[j].first = uint32(len(x.rules))
			x.rules = append(x.rules, rs...)
		}
	}
	return x
}

// lookup returns the rules of a, or nil. The slice is shared and must not
// be modified. The bitmap test is small enough to be inlined into the
// caller; the entries are read by find.
func (x *addrIndex) lookup(a netip.Addr) []rule {
	if !a.Is4() {
		return x.lookup6(a)
	}
	hi, lo := addrHalves(a)
	h := x.hash(hi, lo)
	if !x.maybe(h) {
		return nil
	}
	return x.rulesOf(x.find(h, hi, lo, 0))
}

// lookup4 is lookup of two IPv4 addresses at once (a packet's source
// and destination): one call, and no look at the entries for an address
// the bitmap does not have.
func (x *addrIndex) lookup4(src, dst [4]byte) (srcRules, dstRules []rule) {
	const mapped = 0xffff << 32 // the low half of an IPv4 address's 16-byte form
	slo := mapped | uint64(binary.BigEndian.Uint32(src[:]))
	dlo := mapped | uint64(binary.BigEndian.Uint32(dst[:]))
	sh, dh := x.hash(0, slo), x.hash(0, dlo)
	if x.maybe(sh) {
		srcRules = x.rulesOf(x.find(sh, 0, slo, 0))
	}
	if x.maybe(dh) {
		dstRules = x.rulesOf(x.find(dh, 0, dlo, 0))
	}
	return srcRules, dstRules
}

// find4 returns the entries of two IPv4 addresses (a.b.c.d as a<<24 |
// b<<16 | c<<8 | d), nil for one that is not there: one bitmap probe per
// address, and nothing more for an address that is not an endpoint, which
// is both ends of most packets on a busy port.
func (x *addrIndex) find4(s4, d4 uint32) (se, de *addrEntry) {
	const mapped = 0xffff << 32 // the low half of an IPv4 address's 16-byte form
	slo, dlo := mapped|uint64(s4), mapped|uint64(d4)
	sh, dh := x.hash(0, slo), x.hash(0, dlo)
	if x.maybe(sh) {
		se = x.find(sh, 0, slo, 0)
	}
	if x.maybe(dh) {
		de = x.find(dh, 0, dlo, 0)
	}
	return se, de
}

// lookup6 is lookup of an IPv6 address.
func (x *addrIndex) lookup6(a netip.Addr) []rule {
	if a.Zone() != "" {
		return x.zoned[a]
	}
	hi, lo := addrHalves(a)
	h := x.hash(hi, lo)
	if !x.maybe(h) {
		return nil
	}
	return x.rulesOf(x.find(h, hi, lo, entryV6))
}

// find returns the entry of the address hi, lo of hash h (v6 is entryV6
// for an IPv6 address, else 0), or nil.
func (x *addrIndex) find(h, hi, lo uint64, v6 uint32) *addrEntry {
	for j := h & x.mask; ; j = (j + 1) & x.mask {
		e := &x.entries[j]
		if e.meta == 0 {
			return nil
		}
		if e.lo == lo && e.hi == hi && e.meta&entryV6 == v6 {
			return e
		}
	}
}

// rulesOf returns the rules of entry e, nil if e is nil. The slice is a
// full one: appending to it must not write into what follows.
func (x *addrIndex) rulesOf(e *addrEntry) []rule {
	switch {
	case e == nil:
		return nil
	case e.meta&^entryV6 == 1:
		return e.one[:]
	}
	end := e.first + e.meta&^entryV6
	return x.rules[e.first:end:end]
}
