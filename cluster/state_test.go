package cluster

import (
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
	withdrawn10 := func(st *state) { st.remove("s1", 10, t0) }
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
		{"tombstone lets a newer announce through", withdrawn10, wireEntry{Session: s1, Owner: "B", Version: 11}, true, "B", 11},
		{"own session taken over by another member", func(st *state) {
			st.announce(s1, t0)
		}, wireEntry{Session: s1b, Owner: "C", Version: uint64(t0.UnixNano()) + 1}, true, "C", uint64(t0.UnixNano()) + 1},
		{"invalid session ignored", nil, wireEntry{Session: &filter.Session{ID: "x"}, Owner: "B", Version: 1}, false, "", 0},
		{"no owner ignored", nil, wireEntry{Session: s1, Version: 1}, false, "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newState("A")
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

func TestStateExpire(t *testing.T) {
	const ttl = 15 * time.Second
	st := newState("A")
	st.announce(session("mine", "1", "10.0.0.1"), t0)
	st.apply(wireEntry{Session: session("theirs", "2", "10.0.0.2"), Owner: "B", Version: 5}, t0, ttl)
	// Snapshot ages count: a session last refreshed 10 s ago by its owner
	// expires 5 s from now, not 15.
	st.apply(wireEntry{Session: session("old", "3", "10.0.0.3"), Owner: "B", Version: 5, AgeMS: 10_000}, t0, ttl)
	// Our own name on a session we do not refresh (we restarted): it
	// expires like anyone else's.
	st.apply(wireEntry{Session: session("orphan", "4", "10.0.0.4"), Owner: "A", Version: 5}, t0, ttl)
	st.touch("B", t0, []string{"theirs"})

	steps := []struct {
		at   time.Duration
		gone string
		left string
	}{
		{4 * time.Second, "", "mine,old,orphan,theirs"},
		{5*time.Second + time.Millisecond, "old", "mine,orphan,theirs"},
		{15 * time.Second, "", "mine,orphan,theirs"},
		{15*time.Second + time.Millisecond, "orphan,theirs", "mine"},
		{time.Hour, "", "mine"},
	}
	for _, s := range steps {
		gone := st.expire(t0.Add(s.at), ttl, 30*time.Second)
		if g := strings.Join(gone, ","); g != s.gone {
			t.Errorf("at %v: expired %q, want %q", s.at, g, s.gone)
		}
		if l := ids(st.list()); l != s.left {
			t.Errorf("at %v: left %q, want %q", s.at, l, s.left)
		}
	}
	if _, ok := st.members["B"]; ok {
		t.Errorf("member B still listed an hour after it was last heard")
	}
}

func TestStateWithdrawAndReannounce(t *testing.T) {
	st := newState("A")
	s := session("s1", "1001", "10.0.0.1")
	e := st.announce(s, t0)
	v, ok := st.withdraw("s1", t0)
	if !ok || v != e.Version {
		t.Fatalf("withdraw = %d %v, want %d true", v, ok, e.Version)
	}
	if _, ok := st.withdraw("s1", t0); ok {
		t.Fatalf("second withdraw succeeded")
	}
	if len(st.owned()) != 0 {
		t.Fatalf("still owns %d sessions after withdraw", len(st.owned()))
	}
	// A re-announce within the same clock tick (or with a clock behind
	// the tombstone) must still get a larger version.
	e2 := st.announce(s, t0.Add(-time.Second))
	if e2.Version <= e.Version {
		t.Fatalf("re-announce version %d not above withdrawn %d", e2.Version, e.Version)
	}
	// A delayed refresh of the old incarnation does not replace the new one.
	if st.apply(wireEntry{Session: s, Owner: "B", Version: e.Version}, t0, time.Second) {
		t.Fatalf("stale refresh changed the set")
	}
	// A withdrawal of an older version does not remove the newer one.
	if st.remove("s1", e.Version, t0) {
		t.Fatalf("stale withdrawal removed the re-announced session")
	}
	if st.sessions["s1"] == nil {
		t.Fatalf("s1 gone")
	}
}

func TestStateSnapshotRoundTrip(t *testing.T) {
	a := newState("A")
	a.announce(session("s1", "1", "10.0.0.1"), t0)
	a.apply(wireEntry{Session: session("s2", "2", "10.0.0.2"), Owner: "B", Version: 7}, t0, time.Minute)
	a.announce(session("s3", "3", "10.0.0.3"), t0)
	a.withdraw("s3", t0)
	es, ds := a.snapshot(t0.Add(2 * time.Second))

	c := newState("C")
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
		c.remove(d.ID, d.Version, now)
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
}
