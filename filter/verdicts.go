package filter

import (
	"slices"

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
	return &Verdicts{fs: fs, tabs: make([]*table, len(fs)), gen: noGen}
}

// Begin takes the filters' current tables, before a batch whose streams
// t accounts: if one changed since the last batch, the cached verdicts
// are dropped.
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
	v.flat = v.flat[:0]
	if v.gen++; v.gen > 255 {
		t.ClearMarks()
		v.gen = 1
	}
}

// Match returns the sessions of b, a packet that the table given to Begin
// accounted in UpdateBriefs after Begin (Brief.Stream), or that no table
// accounted, and whose verdict is then not cached. The slice is the
// cache's: read it, do not keep or change it; it holds until the next
// Match or Begin. It does not allocate for a known stream.
func (v *Verdicts) Match(b *capture.Brief) []Match {
	if m, ok := v.Cached(b); ok {
		return m
	}
	return v.miss(b)
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

// miss asks the filters and caches their answer in the stream's mark (gen
// << 24 | where the verdict starts in flat << 4 | its length), unless the
// cache is off (MAC endpoints) or the verdict is longer than 15 sessions.
// A stream met twice in one batch has its verdict in the table's mark,
// not yet in its Brief's.
func (v *Verdicts) miss(b *capture.Brief) []Match {
	t := v.t
	id, _ := b.Stream()
	if id >= 0 {
		if m := t.Mark(id); m>>24 == v.gen {
			at, n := m>>4&0xfffff, m&0xf
			return v.flat[at : at+n : at+n]
		}
	}
	dst := v.scratch[:0]
	for i, tab := range v.tabs {
		from := len(dst)
		dst = tab.matchBrief(b, dst)
		if i > 0 {
			dst = DropRepeated(dst, from)
		}
	}
	v.scratch = dst
	if id < 0 || v.byMAC || len(dst) > 15 {
		return dst
	}
	at := len(v.flat)
	v.flat = append(v.flat, dst...)
	t.SetMark(id, v.gen<<24|uint32(at)<<4|uint32(len(dst)))
	return v.flat[at:len(v.flat):len(v.flat)]
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
