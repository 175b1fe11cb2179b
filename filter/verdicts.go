package filter

import (
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"unsafe"

	"github.com/silentmon/silentmon/capture"
)

// Verdicts is a flow cache in front of filters, for a capture worker that
// tracks every RTP stream in a capture.StreamTable: it keeps, in each
// stream's mark, which sessions the stream's packets go to, so that a
// packet of a known stream costs a look at the mark UpdateBriefs copied
// into its Brief (Cached) instead of the filters' lookups. The answer is MatchBrief's of each filter in turn, a session
// that an earlier filter named (by ID) left out: exactly what the filters
// would answer, since a stream's key (outer VLAN, addresses, ports, SSRC)
// decides the Brief the filters read, except for its MAC addresses, which
// the cache takes into account only while no filter has a MAC endpoint
// (Begin checks).
//
// For a worker that tracks only the monitored streams (smserver's
// default), whose packets are mostly in no table, Verdicts keeps one
// bitmap of every IPv4 endpoint of all its filters: Screen leaves out, a
// chunk of Briefs at once, those whose addresses are in neither, and
// Match answers such a Brief without asking the filters.
//
// A verdict holds for the filters' tables as they were when it was made:
// Begin, called before each batch and its UpdateBriefs, notices a changed
// table (a session
// started or stopped) and starts a new generation, whose verdicts are
// made again as the streams' packets come. Marks carry the generation (8
// bits), where the verdict lies in the cache (20 bits) and its length (4
// bits); after 255 generations the table's marks are cleared, and after
// about a million cached matches a new generation starts, so a mark never
// outlives its meaning and the cache stays bounded.
//
// The zero value is not usable; call NewVerdicts. A Verdicts is not safe
// for concurrent use: keep one per worker, with its StreamTable.
type Verdicts struct {
	fs      []*Filter
	t       *capture.StreamTable // Begin's
	tabs    []*table             // the filters' tables the verdicts hold for
	gen     uint32               // 1 to 255; noGen before the first Begin
	flat    []Match              // the verdicts, one after the other
	scratch []Match              // a verdict being made
	byMAC   bool                 // a table has MAC endpoints: no caching
	addrs   addrSet              // every IPv4 endpoint of the tables (all of them when one has MAC endpoints)
}

// maxCached is how many matches the cache holds before it starts again
// (where a verdict starts in flat has 20 bits in a mark).
const maxCached = 1<<20 - 16

// noGen is the generation of a Verdicts before its first Begin: no
// mark's (a mark's generation has 8 bits), and not 0, the mark of a Brief
// no table accounted, so that nothing reads as cached before Begin.
const noGen = 256

// NewVerdicts returns a cache in front of fs, asked in that order.
func NewVerdicts(fs ...*Filter) *Verdicts {
	return &Verdicts{fs: fs, tabs: make([]*table, len(fs)), gen: noGen,
		addrs: addrSet{words: make([]uint64, 1), seed: rand.Uint64(), mul: rand.Uint64() | 1}} // empty until Begin
}

// Begin takes the filters' current tables, before a batch whose streams
// t accounts: if one changed since the last batch, the cached verdicts
// are dropped and the endpoints' bitmap is made again (a walk of the
// tables' address indexes: about 2 ms at 100,000 endpoints).
func (v *Verdicts) Begin(t *capture.StreamTable) {
	v.t = t
	changed := v.gen == noGen
	for i, f := range v.fs {
		if tab := f.t.Load(); tab != v.tabs[i] {
			v.tabs[i], changed = tab, true
		}
	}
	if !changed && len(v.flat) < maxCached {
		return
	}
	v.byMAC = false
	for _, tab := range v.tabs {
		v.byMAC = v.byMAC || tab.byMAC != nil
	}
	if changed {
		v.addrs.build(v.tabs, v.byMAC)
	}
	v.flat = v.flat[:0]
	if v.gen++; v.gen > 255 {
		t.ClearMarks()
		v.gen = 1
	}
}

// Match returns the sessions of b, a packet that the table given to Begin
// accounted in UpdateBriefs after Begin (Brief.Stream), or that no table
// accounted, and whose verdict is then not cached (but whose addresses
// are first looked up in the endpoints' bitmap). The slice is the
// cache's: read it, do not keep or change it; it holds until the next
// Match or Begin. It does not allocate for a known stream.
func (v *Verdicts) Match(b *capture.Brief) []Match {
	if m, ok := v.Cached(b); ok {
		return m
	}
	if id, _ := b.Stream(); id >= 0 {
		return v.miss(b, id)
	}
	// Most packets on a busy port, when only the monitored streams are
	// tracked: no table has the stream, and neither address is an
	// endpoint.
	if v.none(b) {
		return nil
	}
	return v.ask(b)
}

// Screen returns the Briefs of bs (the first 64) that a session may want,
// as a set of bits: bit j for bs[j]. Those whose bit is clear are
// certainly wanted by none: Match would answer nothing for them. A
// capture worker that tracks only the monitored streams screens a chunk
// of Briefs at once, without a call per Brief, and asks Match for the
// few it returns.
func (v *Verdicts) Screen(bs []capture.Brief) uint64 {
	return v.addrs.screen(bs, true)
}

// none reports whether no filter can want b, because neither of its
// addresses is an IP endpoint of any of the tables Begin took and none of
// them has MAC endpoints (or b holds no IPv4 packet, which matchBrief
// matches to nothing). False is not certain: the filters must be asked.
func (v *Verdicts) none(b *capture.Brief) bool {
	return v.addrs.screen((*[1]capture.Brief)(unsafe.Pointer(b))[:], false) == 0
}

// Cached is Match of a Brief whose stream's verdict UpdateBriefs found
// cached in its mark, and false for any other, which Match then takes.
// It makes no call and is small enough to be inlined: a capture worker
// asks it first, on every packet.
func (v *Verdicts) Cached(b *capture.Brief) ([]Match, bool) {
	if _, m := b.Stream(); m>>24 == v.gen {
		return v.flat[m>>4&0xfffff:][:m&0xf], true
	}
	return nil, false
}

// miss is Match of b, a Brief of stream id in the table given to Begin,
// whose verdict was not in its Brief. It asks the filters (unless the
// endpoints' bitmap answers) and caches their answer in the stream's
// mark (gen << 24 | where the verdict starts in flat << 4 | its length),
// unless the cache is off (MAC endpoints) or the verdict is longer than 15
// sessions.
// A stream met twice in one batch has its verdict in the table's mark,
// not yet in its Brief's.
func (v *Verdicts) miss(b *capture.Brief, id int32) []Match {
	t := v.t
	if m := t.Mark(id); m>>24 == v.gen {
		at, n := m>>4&0xfffff, m&0xf
		return v.flat[at : at+n : at+n]
	}
	if v.none(b) {
		t.SetMark(id, v.gen<<24) // no sessions
		return nil
	}
	dst := v.ask(b)
	if v.byMAC || len(dst) > 15 {
		return dst
	}
	at := len(v.flat)
	v.flat = append(v.flat, dst...)
	t.SetMark(id, v.gen<<24|uint32(at)<<4|uint32(len(dst)))
	return v.flat[at:len(v.flat):len(v.flat)]
}

// ask returns the filters' answer for b, not cached.
func (v *Verdicts) ask(b *capture.Brief) []Match {
	dst := v.scratch[:0]
	for i, tab := range v.tabs {
		from := len(dst)
		dst = tab.matchBrief(b, dst)
		if i > 0 {
			dst = DropRepeated(dst, from)
		}
	}
	v.scratch = dst
	return dst
}

// DropRepeated drops from dst[from:] the matches whose session dst[:from]
// already names (by ID: a session matched by the endpoints it was asked
// for and by those SIP learned is one session), and returns dst. It keeps
// the order and does not allocate.
func DropRepeated(dst []Match, from int) []Match {
	out := dst[:from]
	for _, m := range dst[from:] {
		if !slices.ContainsFunc(dst[:from], func(e Match) bool { return e.Session.ID == m.Session.ID }) {
			out = append(out, m)
		}
	}
	return out
}

// addrSet is a bitmap over IPv4 addresses in front of the filters' own
// indexes, for the packets no session wants: each address sets two bits
// of one 64-bit word, chosen by one multiplication (by random numbers, so
// that addresses chosen to collide in one worker's set do not in
// another's), with 32 to 64 bits per address (512 KiB for 100,000
// addresses), so that an address that is not there is answered by one
// word, with about one chance in 200 to 500 of a false "maybe" (which
// costs the filters' lookup), whatever the number of filters. It never
// answers "no" for an address that is there.
type addrSet struct {
	words     []uint64 // a power of two of them
	seed, mul uint64
}

// screen returns the set of bs (the first 64) whose source or
// destination address may be in the set (false is certain), and, with
// tables, of those a StreamTable accounted. It is the set's one lookup,
// a loop without a call: both words are read before one branch, without
// bounds checks (the set's length is a power of two, never 0, so a
// masked index is always in it).
func (s *addrSet) screen(bs []capture.Brief, tables bool) uint64 {
	var set uint64
	words, mask := unsafe.Pointer(unsafe.SliceData(s.words)), uint64(len(s.words)-1)
	kept := int32(math.MaxInt32) // no stream id reaches it
	if tables {
		kept = 0
	}
	for j := range bs[:min(len(bs), 64)] {
		b := &bs[j]
		if id, _ := b.Stream(); id >= kept {
			set |= 1 << j // a table's stream: Match reads its verdict
			continue
		}
		src, dst, ok := b.IPv4()
		if !ok {
			continue
		}
		ws, ms := s.at(src)
		wd, md := s.at(dst)
		missS := *(*uint64)(unsafe.Add(words, ws&mask*8))&ms ^ ms
		missD := *(*uint64)(unsafe.Add(words, wd&mask*8))&md ^ md
		if missS == 0 || missD == 0 {
			set |= 1 << j
		}
	}
	return set
}

// at returns the word of a and its two bits in it: one 64x64→128-bit
// multiplication of the address and a seed by a random odd number, its
// halves folded (as the filters' own index does), whose low bits pick
// the word and top 12 bits the two bits in it.
func (s *addrSet) at(a uint32) (w uint64, m uint64) {
	hi, lo := bits.Mul64(uint64(a)^s.seed, s.mul)
	h := hi ^ lo
	return h, 1<<(h>>58) | 1<<(h>>52&63)
}

// build makes the set of the IPv4 endpoints of tabs; with MAC endpoints
// (byMAC), every address may be wanted, and every bit is set.
func (s *addrSet) build(tabs []*table, byMAC bool) {
	n := 0
	for _, tab := range tabs {
		if tab.byIP != nil {
			n += len(tab.byIP.entries)
		}
	}
	size := 1 // words; 16 to 32 bits per entry, 32 to 64 per address
	for size*64 < 16*n && size < 1<<20 {
		size *= 2
	}
	if len(s.words) != size {
		s.words = make([]uint64, size)
	} else {
		clear(s.words)
	}
	if byMAC {
		for i := range s.words {
			s.words[i] = ^uint64(0)
		}
		return
	}
	for _, tab := range tabs {
		if tab.byIP == nil {
			continue
		}
		for _, e := range tab.byIP.entries {
			if e.meta != 0 && e.meta&entryV6 == 0 {
				w, m := s.at(uint32(e.lo))
				s.words[w&uint64(size-1)] |= m
			}
		}
	}
}
