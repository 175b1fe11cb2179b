package filter

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
)

// TestVerdictsFollowChanges: through 600 changes of two filters (more than
// the 255 generations a mark can tell apart), a Verdicts in front of them
// answers, for every packet of eight streams, exactly what the filters
// answer (MatchBrief of each in turn, a session the first named left out
// of the second's answer); a stream's cached answer never outlives the
// change that ends it, and with MAC endpoints nothing is cached.
func TestVerdictsFollowChanges(t *testing.T) {
	main, learned := New(), New()
	v := NewVerdicts(main, learned)
	tab := capture.NewStreamTable(capture.StreamTableConfig{})
	var frames [][]byte
	for i := range 8 {
		fr := frame{src: ap(fmt.Sprintf("10.1.0.%d:20000", i+1)), dst: ap(fmt.Sprintf("10.2.0.%d:30000", i%3+1)), ssrc: uint32(i + 1),
			srcMAC: [6]byte{2, 0, 0, 0, 0, byte(i)}, dstMAC: [6]byte{2, 0, 0, 0, 1, byte(i % 3)}}
		frames = append(frames, fr.bytes())
	}
	briefs := make([]capture.Brief, len(frames))
	fresh := make([]capture.Brief, len(frames))
	infos := make([]capture.Info, len(frames))
	session := func(id string, eps ...string) *Session {
		return &Session{ID: id, Agent: "1001", Endpoints: mustEndpoints(t, eps...), Supervisor: "127.0.0.1:9"}
	}
	want := func(b *capture.Brief) string {
		m := main.MatchBrief(b, nil)
		for _, x := range learned.MatchBrief(b, nil) {
			dup := false
			for _, y := range m {
				dup = dup || y.Session.ID == x.Session.ID
			}
			if !dup {
				m = append(m, x)
			}
		}
		return fmt.Sprint(m)
	}
	cached := 0
	for change := range 600 {
		k := change % 8
		switch change % 5 {
		case 0:
			main.Set([]*Session{session("a", fmt.Sprintf("10.1.0.%d", k+1)), session("b", "10.2.0.2")})
		case 1:
			learned.Set([]*Session{session("a", "10.2.0.1"), session("c", fmt.Sprintf("10.1.0.%d", (k+3)%8+1))})
		case 2:
			main.Remove("b")
		case 3:
			main.Set([]*Session{session("m", "02:00:00:00:00:0"+fmt.Sprint(k))}) // a MAC endpoint
		case 4:
			learned.Set(nil)
		}
		for round := range 3 { // the first round makes the verdicts, the next ones read them
			for i := range infos {
				infos[i].Timestamp = time.Unix(0, int64(1_700_000_000_000_000_000)+int64(change*3+round)*20_000_000)
			}
			if n := capture.DecodeBriefs(briefs, frames, infos); n != len(frames) {
				t.Fatalf("DecodeBriefs took %d of %d test frames", n, len(frames))
			}
			v.Begin(tab)
			tab.UpdateBriefs(briefs)
			for i := range briefs {
				if id, _ := briefs[i].Stream(); id < 0 {
					t.Fatalf("change %d: stream %d not accounted", change, i)
				}
				m, ok := v.Cached(&briefs[i])
				if ok && round > 0 {
					cached++
				}
				if !ok {
					m = v.Match(&briefs[i])
				}
				if got, w := fmt.Sprint(m), want(&briefs[i]); got != w {
					t.Fatalf("change %d round %d stream %d (cached %v): Verdicts %s, the filters %s", change, round, i, ok, got, w)
				}
				if got := fmt.Sprint(v.Match(&briefs[i])); got != fmt.Sprint(m) {
					t.Fatalf("change %d round %d stream %d: Match %s after %v", change, round, i, got, m)
				}
			}
			// The same packets as smserver's default takes them, in no
			// table: Screen may leave out only those no session wants,
			// and Match answers exactly what the filters do.
			if n := capture.DecodeBriefs(fresh, frames, infos); n != len(frames) {
				t.Fatalf("DecodeBriefs took %d of %d test frames", n, len(frames))
			}
			if set := v.Screen(briefs); set != 1<<len(briefs)-1 {
				t.Fatalf("change %d: Screen left out a table's stream: %b", change, set)
			}
			set := v.Screen(fresh)
			for i := range fresh {
				w := want(&fresh[i])
				if set&(1<<i) == 0 && w != "[]" {
					t.Fatalf("change %d round %d stream %d: Screen left out a packet the filters want: %s", change, round, i, w)
				}
				if got := fmt.Sprint(v.Match(&fresh[i])); got != w {
					t.Fatalf("change %d round %d stream %d, in no table: Verdicts %s, the filters %s", change, round, i, got, w)
				}
			}
		}
		if id, _ := briefs[0].Stream(); change%5 == 3 && tab.Mark(id)>>24 == v.gen {
			t.Fatalf("change %d: a verdict was cached while a filter has MAC endpoints", change)
		}
	}
	// Three changes in five cache (after the fourth and fifth the main
	// filter holds a MAC endpoint), two reading rounds each, eight
	// streams.
	if want := 600 * 3 / 5 * 2 * 8; cached != want {
		t.Fatalf("%d answers read from the cache, want %d", cached, want)
	}
}

// TestVerdictsNoAllocs: a known stream's answer is read, and an uncached
// one made, without allocating.
func TestVerdictsNoAllocs(t *testing.T) {
	f := New()
	f.Set([]*Session{{ID: "a", Agent: "1001", Endpoints: mustEndpoints(t, "10.1.0.1"), Supervisor: "127.0.0.1:9"}})
	v := NewVerdicts(f)
	tab := capture.NewStreamTable(capture.StreamTableConfig{})
	var b capture.Brief
	if !b.Decode(frame{src: netip.MustParseAddrPort("10.1.0.1:20000"), dst: ap("10.2.0.1:30000"), ssrc: 1}.bytes(), nil) {
		t.Fatal("Brief.Decode refused a test frame")
	}
	bs := []capture.Brief{b}
	v.Begin(tab)
	tab.UpdateBriefs(bs)
	if len(v.Match(&bs[0])) != 1 {
		t.Fatal("no match")
	}
	if n := testing.AllocsPerRun(100, func() {
		v.Begin(tab)
		tab.UpdateBriefs(bs)
		if m, ok := v.Cached(&bs[0]); !ok || len(m) != 1 {
			t.Fatal("no cached match")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per packet", n)
	}
	// Nor is an answer the cache does not keep (a stream not in the
	// table: smserver's default), once its scratch has grown.
	if !b.Decode(frame{src: netip.MustParseAddrPort("10.1.0.1:20000"), dst: ap("10.2.0.1:30000"), ssrc: 1}.bytes(), nil) {
		t.Fatal("Brief.Decode refused a test frame")
	}
	if n := testing.AllocsPerRun(100, func() {
		if len(v.Match(&b)) != 1 {
			t.Fatal("no match")
		}
	}); n != 0 {
		t.Fatalf("%v allocations per uncached packet", n)
	}
}

// TestVerdictsBeforeBegin: before its first Begin a Verdicts reads nothing
// as cached, not even a Brief no table accounted (whose mark is 0); after
// Begin such a Brief is answered by the filters.
func TestVerdictsBeforeBegin(t *testing.T) {
	f := New()
	f.Set([]*Session{{ID: "a", Agent: "1001", Endpoints: mustEndpoints(t, "10.1.0.1"), Supervisor: "127.0.0.1:9"}})
	v := NewVerdicts(f)
	var b capture.Brief
	if !b.Decode(frame{src: netip.MustParseAddrPort("10.1.0.1:20000"), dst: ap("10.2.0.1:30000"), ssrc: 1}.bytes(), nil) {
		t.Fatal("Brief.Decode refused a test frame")
	}
	if m, ok := v.Cached(&b); ok {
		t.Fatalf("before Begin, Cached answered %v", m)
	}
	v.Begin(capture.NewStreamTable(capture.StreamTableConfig{}))
	if m, ok := v.Cached(&b); ok {
		t.Fatalf("an unaccounted Brief read as cached: %v", m)
	}
	if m := v.Match(&b); len(m) != 1 || m[0].Session.ID != "a" {
		t.Fatalf("Match %v, want session a", m)
	}
}

// TestScreen: Screen keeps every packet to or from an endpoint of either
// filter (1,000 phones, 50 learned gateways) and leaves out nearly every
// other one (it is a bitmap: it may keep a few, never drop one a session
// wants); with a MAC endpoint it keeps all, and a zero Brief none. Of
// more than 64 Briefs it answers for the first 64.
func TestScreen(t *testing.T) {
	main, learned := New(), New()
	var eps, gws []string
	for i := range 1000 {
		eps = append(eps, fmt.Sprintf("10.1.%d.%d", i/250, i%250+1))
	}
	for i := range 50 {
		gws = append(gws, fmt.Sprintf("10.9.0.%d", i+1))
	}
	main.Set([]*Session{{ID: "a", Agent: "1001", Endpoints: mustEndpoints(t, eps...), Supervisor: "127.0.0.1:9"}})
	learned.Set([]*Session{{ID: "b", Agent: "1002", Endpoints: mustEndpoints(t, gws...), Supervisor: "127.0.0.1:9"}})
	v := NewVerdicts(main, learned)
	v.Begin(capture.NewStreamTable(capture.StreamTableConfig{}))
	brief := func(src, dst string) capture.Brief {
		var b capture.Brief
		if !b.Decode(frame{src: ap(src + ":20000"), dst: ap(dst + ":30000"), ssrc: 7}.bytes(), nil) {
			t.Fatal("Brief.Decode refused a test frame")
		}
		return b
	}
	kept, strangers := 0, 0
	bs := make([]capture.Brief, 64)
	for round := range 200 {
		for j := range bs {
			k := round*64 + j
			stranger := fmt.Sprintf("172.%d.%d.%d", 16+k>>16&15, k>>8&255, k&255)
			switch j % 4 {
			case 0:
				bs[j] = brief(eps[k%len(eps)], stranger)
			case 1:
				bs[j] = brief(stranger, gws[k%len(gws)])
			default:
				bs[j] = brief(stranger, fmt.Sprintf("192.168.%d.%d", k>>8&255, k&255))
			}
		}
		set := v.Screen(bs)
		for j := range bs {
			if j%4 < 2 {
				if set&(1<<j) == 0 || len(v.Match(&bs[j])) != 1 {
					t.Fatalf("round %d: Screen or Match left out %v -> %v, an endpoint's packet", round, bs[j].Src(), bs[j].Dst())
				}
				continue
			}
			strangers++
			if set&(1<<j) != 0 {
				kept++
			}
		}
	}
	// Two addresses, each with about one chance in 200 to 500 of
	// finding its two bits set: about one stranger in 100 to 250 is kept.
	if kept*50 > strangers {
		t.Fatalf("Screen kept %d of %d packets between strangers, want under one in 50", kept, strangers)
	}
	t.Logf("Screen kept %d of %d packets between strangers", kept, strangers)
	if set := v.Screen(make([]capture.Brief, 70)); set != 0 {
		t.Fatalf("Screen kept zero Briefs: %b", set)
	}
	long := make([]capture.Brief, 70)
	for j := range long {
		long[j] = brief(eps[j], "192.168.0.1")
	}
	if set := v.Screen(long); set != ^uint64(0) {
		t.Fatalf("Screen of 70 endpoints' Briefs: %b, want the first 64", set)
	}
	main.Add(&Session{ID: "m", Agent: "1003", Endpoints: mustEndpoints(t, "02:00:00:00:00:01"), Supervisor: "127.0.0.1:9"})
	v.Begin(capture.NewStreamTable(capture.StreamTableConfig{}))
	if set := v.Screen(bs); set != ^uint64(0) {
		t.Fatalf("with a MAC endpoint, Screen left out packets: %b", set)
	}
}
