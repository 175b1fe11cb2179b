package cluster

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/filter"
)

var t0 = time.Unix(1_700_000_000, 0)

func TestStateApply(t *testing.T) {
	const ttl = 15 * time.Second
	s1 := session("s1", "1001", "10.0.0.1")
	s1b := session("s1", "1001", "10.0.0.2") // re-asserted with new endpoints
	// held returns a setup in which s is known, owned by owner at version v.
	held := func(s *filter.Session, owner string, v uint64) func(*state) {
		return func(st *state) { st.apply(wireEntry{Session: s, Owner: owner, Version: v}, t0, ttl) }
	}
	heldByB10 := held(s1, "B", 10)
	withdrawn10 := func(st *state) { st.remove(wireDown{ID: "s1", Version: 10}, t0) }
	tests := []struct {
		name    string
		setup   func(st *state)
		in      wireEntry
		changed bool
		owner   string // "" = session absent afterwards
		version uint64
	}{
		{"new session", nil, wireEntry{Session: s1, Owner: "B", Version: 10}, true, "B", 10},
		{"same version refresh", heldByB10, wireEntry{Session: s1, Owner: "B", Version: 10}, false, "B", 10},
		{"older version ignored", heldByB10, wireEntry{Session: s1b, Owner: "C", Version: 9}, false, "B", 10},
		{"takeover by newer version", heldByB10, wireEntry{Session: s1b, Owner: "C", Version: 11}, true, "C", 11},
		{"equal version: larger owner name wins", heldByB10, wireEntry{Session: s1, Owner: "C", Version: 10}, true, "C", 10},
		{"equal version: smaller owner name loses", held(s1, "C", 10), wireEntry{Session: s1, Owner: "B", Version: 10}, false, "C", 10},
		{"tombstone blocks the withdrawn version", withdrawn10, wireEntry{Session: s1, Owner: "B", Version: 10}, false, "", 0},
		{"tombstone is terminal: a newer version is refused too", withdrawn10, wireEntry{Session: s1, Owner: "B", Version: 1 << 62}, false, "", 0},
		{"lifetime over refused", nil, wireEntry{Session: &filter.Session{ID: "s1", Agent: "1001", Endpoints: s1.Endpoints,
			Supervisor: s1.Supervisor, Until: t0}, Owner: "B", Version: 10}, false, "", 0},
		{"own session taken over by another member", func(st *state) {
			st.announce(s1, t0)
		}, wireEntry{Session: s1b, Owner: "C", Version: uint64(t0.UnixNano()) + 1}, true, "C", uint64(t0.UnixNano()) + 1},
		{"invalid session ignored", nil, wireEntry{Session: &filter.Session{ID: "x"}, Owner: "B", Version: 1}, false, "", 0},
		{"no owner ignored", nil, wireEntry{Session: s1, Version: 1}, false, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newState("A", 0)
			if tc.setup != nil {
				tc.setup(st)
			}
			if got := st.apply(tc.in, t0, ttl); got != tc.changed {
				t.Errorf("changed = %v, want %v", got, tc.changed)
			}
			e := st.sessions["s1"]
			switch {
			case tc.owner == "" && e != nil:
				t.Errorf("s1 present (owner %s), want absent", e.owner)
			case tc.owner != "" && e == nil:
				t.Errorf("s1 absent, want owner %s", tc.owner)
			case e != nil && (e.owner != tc.owner || e.version != tc.version):
				t.Errorf("s1 owner %s version %d, want %s %d", e.owner, e.version, tc.owner, tc.version)
			}
			if e != nil && e.owner != "A" && st.own["s1"] {
				t.Errorf("A still refreshes s1 owned by %s", e.owner)
			}
		})
	}
}

// TestStateSweepAdopts: a session is never dropped for want of refreshes;
// the live member with the smallest name, the silent owner excluded,
// adopts it after one TTL, any other member after two.
func TestStateSweepAdopts(t *testing.T) {
	const ttl = 15 * time.Second
	tests := []struct {
		name  string
		self  string
		live  []string // members heard from at t0+20s (besides self)
		owner string
		at    time.Duration // first sweep (after t0) at which self adopts
	}{
		{"smallest live member adopts after one TTL", "B", []string{"C"}, "A", ttl},
		{"a larger member waits another TTL", "C", []string{"B"}, "A", 2 * ttl},
		{"the silent owner does not count", "B", []string{"A", "C"}, "A", ttl},
		{"a dead smallest member does not count", "C", nil, "A", ttl},
		{"own name from before a restart: adopted at once", "A", []string{"B", "C"}, "A", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newState(tc.self, 0)
			s := session("s1", "1001", "10.0.0.1")
			st.apply(wireEntry{Session: s, Owner: tc.owner, Version: 5}, t0, ttl)
			for _, m := range []string{"A", "B", "C"} {
				st.touch(m, t0, nil) // everybody alive at t0
			}
			var got time.Duration = -1
			for at := time.Duration(0); at <= 3*ttl; at += time.Second {
				now := t0.Add(at)
				for _, m := range tc.live {
					if m != tc.owner || at < ttl/2 {
						st.touch(m, now, nil)
					}
				}
				res := st.sweep(now, ttl, time.Hour)
				if len(res.adopted) > 0 {
					a := res.adopted[0]
					if a.entry.Session != s || a.from != tc.owner || a.entry.Owner != tc.self || a.entry.Version <= 5 {
						t.Fatalf("adoption %+v: want the same session pointer, from %s, owner %s, version above 5", a, tc.owner, tc.self)
					}
					got = at
					break
				}
			}
			want := tc.at + time.Second // the first sweep strictly after the deadline
			if tc.at == 0 {
				want = 0
			}
			if got != want {
				t.Fatalf("adopted at t0+%v, want t0+%v", got, want)
			}
			if e := st.sessions["s1"]; e == nil || e.owner != tc.self || !st.own["s1"] || e.prevOwner != tc.owner && tc.owner != tc.self {
				t.Fatalf("after adoption: entry %+v, own %v", e, st.own["s1"])
			}
			if ends := st.takeEnds(); len(ends) != 0 {
				t.Fatalf("adoption reported ends %v", ends)
			}
		})
	}
}

// TestStateSweepHoldsAfterJump: after a clock jump nobody was listening,
// so adoption waits one TTL before it measures silence again.
func TestStateSweepHoldsAfterJump(t *testing.T) {
	const ttl = 15 * time.Second
	st := newState("B", 0)
	st.apply(wireEntry{Session: session("s1", "1001", "10.0.0.1"), Owner: "A", Version: 5}, t0, ttl)
	st.sweep(t0, ttl, time.Hour)
	now := t0.Add(time.Hour)
	if res := st.sweep(now, ttl, 2*time.Hour); len(res.adopted) != 0 {
		t.Fatalf("adopted right after a jump of one hour")
	}
	for at := time.Second; at < ttl; at += time.Second {
		if res := st.sweep(now.Add(at), ttl, 2*time.Hour); len(res.adopted) != 0 {
			t.Fatalf("adopted %v after the jump, within the hold", at)
		}
	}
	if res := st.sweep(now.Add(ttl), ttl, 2*time.Hour); len(res.adopted) != 1 {
		t.Fatalf("not adopted one TTL after the jump")
	}
}

// TestStateLifetime: a session whose Until has passed ends on every member
// with the reason "lifetime over"; only its owner publishes the end.
func TestStateLifetime(t *testing.T) {
	const ttl = 15 * time.Second
	mk := func(id string, until time.Time) *filter.Session {
		s := session(id, "1001", "10.0.0.1")
		s.Until = until
		return s
	}
	st := newState("A", 0)
	if _, err := st.announce(mk("mine", t0.Add(time.Minute)), t0); err != nil {
		t.Fatal(err)
	}
	theirs, forever := mk("theirs", t0.Add(time.Minute)), mk("forever", time.Time{})
	refresh := func(now time.Time) { // B's beat
		st.touch("B", now, nil)
		st.apply(wireEntry{Session: theirs, Owner: "B", Version: 5}, now, ttl)
		st.apply(wireEntry{Session: forever, Owner: "B", Version: 5}, now, ttl)
	}
	refresh(t0)
	refresh(t0.Add(59 * time.Second))
	if res := st.sweep(t0.Add(59*time.Second), ttl, time.Hour); len(res.lifetime) != 0 || len(res.adopted) != 0 || len(st.takeEnds()) != 0 {
		t.Fatalf("ended or adopted before the lifetime: %+v", res)
	}
	refresh(t0.Add(time.Minute))
	res := st.sweep(t0.Add(time.Minute), ttl, time.Hour)
	if len(res.lifetime) != 1 || res.lifetime[0].ID != "mine" || res.lifetime[0].Reason != ReasonLifetimeOver {
		t.Fatalf("published ends %+v, want mine: lifetime over", res.lifetime)
	}
	ends := st.takeEnds() // theirs ended at B's last refresh, mine at the sweep
	slices.SortFunc(ends, func(a, b End) int { return strings.Compare(a.ID, b.ID) })
	if len(ends) != 2 || ends[0] != (End{"mine", ReasonLifetimeOver}) || ends[1] != (End{"theirs", ReasonLifetimeOver}) {
		t.Fatalf("ends %v", ends)
	}
	if l := ids(st.list()); l != "forever" {
		t.Fatalf("left %q, want forever", l)
	}
	if _, err := st.announce(mk("late", t0), t0.Add(time.Minute)); !errors.Is(err, ErrEnded) {
		t.Fatalf("announce with a lifetime over: %v, want ErrEnded", err)
	}
}

// TestStateTombstones: tombstones outlive any partition shorter than their
// TTL, are bounded in number (the oldest forgotten first, counted), and
// expire after their TTL.
func TestStateTombstones(t *testing.T) {
	st := newState("A", 3)
	for i, id := range []string{"t1", "t2", "t3", "t4"} {
		st.remove(wireDown{ID: id, Version: 1}, t0.Add(time.Duration(i)*time.Second))
	}
	if _, ok := st.tombs["t1"]; ok || len(st.tombs) != 3 || st.forgotten != 1 {
		t.Fatalf("tombstones %v, forgotten %d; want t2..t4 and 1 forgotten", st.tombs, st.forgotten)
	}
	// A snapshot's age counts: an end heard of as 2 days old is older
	// than t2.
	st.remove(wireDown{ID: "old", Version: 1, AgeMS: (48 * time.Hour).Milliseconds()}, t0.Add(5*time.Second))
	if _, ok := st.tombs["old"]; ok || st.forgotten != 2 {
		t.Fatalf("a tombstone older than every other one was kept over the bound")
	}
	const week = 7 * 24 * time.Hour
	st.sweep(t0.Add(2*24*time.Hour), 15*time.Second, week)
	if len(st.tombs) != 3 {
		t.Fatalf("tombstones gone after 2 days: %v", st.tombs)
	}
	for _, id := range []string{"t2", "t3", "t4"} {
		if st.apply(wireEntry{Session: session(id, "1", "10.0.0.1"), Owner: "B", Version: 1 << 62}, t0.Add(48*time.Hour), time.Minute) {
			t.Fatalf("%s came back through its tombstone", id)
		}
	}
	st.sweep(t0.Add(week+time.Second+time.Millisecond), 15*time.Second, week)
	if _, ok := st.tombs["t2"]; ok || len(st.tombs) != 2 {
		t.Fatalf("after a week: tombstones %v, want t3,t4", st.tombs)
	}
}

func TestStateWithdrawAndReannounce(t *testing.T) {
	st := newState("A", 0)
	s := session("s1", "1001", "10.0.0.1")
	e, err := st.announce(s, t0)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := st.end("s1", ReasonSupervisorGone, t0)
	if !ok || d.Version != e.Version || d.Reason != ReasonSupervisorGone {
		t.Fatalf("end = %+v %v, want version %d, supervisor gone", d, ok, e.Version)
	}
	if ends := st.takeEnds(); len(ends) != 1 || ends[0] != (End{"s1", ReasonSupervisorGone}) {
		t.Fatalf("ends %v", ends)
	}
	if _, ok := st.end("s1", ReasonStopped, t0); ok {
		t.Fatalf("second end succeeded")
	}
	if len(st.owned()) != 0 {
		t.Fatalf("still owns %d sessions after the end", len(st.owned()))
	}
	// The end is terminal: the ID cannot be announced again, here or
	// anywhere, with any version.
	if _, err := st.announce(s, t0.Add(time.Hour)); !errors.Is(err, ErrEnded) {
		t.Fatalf("re-announce after the end: %v, want ErrEnded", err)
	}
	if st.apply(wireEntry{Session: s, Owner: "B", Version: e.Version + 1000}, t0, time.Second) {
		t.Fatalf("a newer refresh brought the ended session back")
	}
	if st.sessions["s1"] != nil {
		t.Fatalf("s1 back")
	}
	// A later withdrawal of any version removes a session whatever its
	// version, and keeps the first reason.
	st.apply(wireEntry{Session: session("s2", "2", "10.0.0.2"), Owner: "B", Version: 50}, t0, time.Second)
	if !st.remove(wireDown{ID: "s2", Version: 10, Reason: "operator"}, t0) {
		t.Fatalf("an end of an older version did not remove s2")
	}
	st.remove(wireDown{ID: "s2", Version: 60}, t0)
	if tb := st.tombs["s2"]; tb.reason != "operator" || tb.version != 60 {
		t.Fatalf("tombstone %+v, want reason operator, version 60", tb)
	}
}

func TestStateSnapshotRoundTrip(t *testing.T) {
	a := newState("A", 0)
	a.announce(session("s1", "1", "10.0.0.1"), t0)
	a.apply(wireEntry{Session: session("s2", "2", "10.0.0.2"), Owner: "B", Version: 7}, t0, time.Minute)
	a.announce(session("s3", "3", "10.0.0.3"), t0)
	a.end("s3", "lifetime over", t0)
	es, ds, more := a.snapshot(t0.Add(2*time.Second), "", 10)
	if more || len(ds) != 1 || ds[0].Reason != "lifetime over" || ds[0].AgeMS != 2000 {
		t.Fatalf("tombstones %+v (more %v), want s3, lifetime over, 2 s old", ds, more)
	}

	c := newState("C", 0)
	c.apply(wireEntry{Session: session("s3", "3", "10.0.0.3"), Owner: "A", Version: uint64(t0.UnixNano())}, t0, time.Minute)
	m := &message{Kind: kindSnap, From: "A", Sessions: es, Down: ds}
	b, err := encodeMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := decodeMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(2 * time.Second)
	for _, d := range m2.Down {
		c.remove(d, now)
	}
	for _, e := range m2.Sessions {
		c.apply(e, now, time.Minute)
	}
	if got := ids(c.list()); got != "s1,s2" {
		t.Fatalf("after snapshot C has %q, want s1,s2 (s3 withdrawn)", got)
	}
	if e := c.sessions["s2"]; !e.seen.Equal(t0) {
		t.Fatalf("s2 last seen %v, want %v (the age in the snapshot)", e.seen, t0)
	}
	if e := c.sessions["s1"]; !e.seen.Equal(now) {
		t.Fatalf("s1 (owned by the responder) last seen %v, want %v", e.seen, now)
	}
	if ends := c.takeEnds(); len(ends) != 1 || ends[0] != (End{"s3", "lifetime over"}) {
		t.Fatalf("C's ends %v, want s3: lifetime over", ends)
	}
}

// TestStateSnapshotPages: tombstones come in pages, sessions with the
// first one.
func TestStateSnapshotPages(t *testing.T) {
	a := newState("A", 0)
	a.announce(session("s1", "1", "10.0.0.1"), t0)
	for i := range 25 {
		a.remove(wireDown{ID: fmt.Sprintf("t%02d", i), Version: 1}, t0)
	}
	var got []string
	after, pages := "", 0
	for {
		es, ds, more := a.snapshot(t0, after, 10)
		if (after == "") != (len(es) == 1) {
			t.Fatalf("page after %q: %d sessions", after, len(es))
		}
		for _, d := range ds {
			got = append(got, d.ID)
		}
		pages++
		if !more {
			break
		}
		after = ds[len(ds)-1].ID
	}
	if pages != 3 || len(got) != 25 || got[24] != "t24" {
		t.Fatalf("%d pages, %d tombstones", pages, len(got))
	}
}
