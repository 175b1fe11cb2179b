package cluster

import (
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/silentmon/silentmon/filter"
)

// entry is one session as this member knows it.
type entry struct {
	sess    *filter.Session
	owner   string
	version uint64
	seen    time.Time // last time the owner vouched for the session
}

// tombstone remembers a withdrawn session's last version.
type tombstone struct {
	version uint64
	at      time.Time
}

// memberInfo is what this member knows of another (or itself: the entry
// for self always exists, expire keeps it).
type memberInfo struct {
	seen      time.Time
	capturing []string // sorted session IDs
}

// state is the converged view of the sessions: the pure part of a Node,
// without transport or goroutines. Time is passed in. It is not safe for
// concurrent use; the Node guards it with its mutex.
type state struct {
	self     string
	sessions map[string]*entry
	own      map[string]bool // sessions this member owns and refreshes
	tombs    map[string]tombstone
	members  map[string]*memberInfo
}

func newState(self string) *state {
	return &state{
		self:     self,
		sessions: make(map[string]*entry),
		own:      make(map[string]bool),
		tombs:    make(map[string]tombstone),
		members:  map[string]*memberInfo{self: {capturing: []string{}}},
	}
}

// capturing returns the sessions this member last reported capturing
// (ReportCapturing), sorted; never nil. The slice is replaced, never
// modified, so the caller may keep it.
func (st *state) capturing() []string { return st.members[st.self].capturing }

// nextVersion returns a version above every version known for id: the
// wall clock in nanoseconds, or one more than the highest known version.
func (st *state) nextVersion(id string, now time.Time) uint64 {
	v := uint64(max(now.UnixNano(), 1))
	if e := st.sessions[id]; e != nil && e.version >= v {
		v = e.version + 1
	}
	if t, ok := st.tombs[id]; ok && t.version >= v {
		v = t.version + 1
	}
	return v
}

// announce makes this member the owner of s and returns the entry to
// publish.
func (st *state) announce(s *filter.Session, now time.Time) wireEntry {
	v := st.nextVersion(s.ID, now)
	st.sessions[s.ID] = &entry{sess: s, owner: st.self, version: v, seen: now}
	st.own[s.ID] = true
	delete(st.tombs, s.ID)
	return wireEntry{Session: s, Owner: st.self, Version: v}
}

// withdraw removes id and returns the version to publish in the removal.
func (st *state) withdraw(id string, now time.Time) (uint64, bool) {
	e := st.sessions[id]
	if e == nil {
		return 0, false
	}
	st.remove(id, e.version, now)
	return e.version, true
}

// newer reports whether (v, owner) supersedes e.
func newer(v uint64, owner string, e *entry) bool {
	return v > e.version || (v == e.version && owner > e.owner)
}

// apply merges an entry heard from the bus and reports whether the set of
// sessions or their content changed. ttl bounds the age a peer may claim.
func (st *state) apply(w wireEntry, now time.Time, ttl time.Duration) bool {
	s := w.Session
	if s == nil || s.Validate() != nil || w.Owner == "" {
		return false
	}
	if t, ok := st.tombs[s.ID]; ok && w.Version <= t.version {
		return false
	}
	age := min(max(time.Duration(w.AgeMS)*time.Millisecond, 0), ttl)
	seen := now.Add(-age)
	cur := st.sessions[s.ID]
	switch {
	case cur == nil:
		st.sessions[s.ID] = &entry{sess: s, owner: w.Owner, version: w.Version, seen: seen}
		return true
	case newer(w.Version, w.Owner, cur):
		if w.Owner != st.self {
			delete(st.own, s.ID) // taken over by another member
		}
		st.sessions[s.ID] = &entry{sess: s, owner: w.Owner, version: w.Version, seen: seen}
		return true
	case w.Version == cur.version && w.Owner == cur.owner:
		if seen.After(cur.seen) {
			cur.seen = seen
		}
	}
	return false
}

// remove applies a withdrawal of id at version v and reports whether a
// session disappeared.
func (st *state) remove(id string, v uint64, now time.Time) bool {
	if id == "" {
		return false
	}
	if t, ok := st.tombs[id]; !ok || v > t.version {
		st.tombs[id] = tombstone{version: v, at: now}
	}
	e := st.sessions[id]
	if e == nil || e.version > v {
		return false
	}
	delete(st.sessions, id)
	delete(st.own, id)
	return true
}

// touch records that member m was heard from; capturing replaces its
// capture list when non-nil.
func (st *state) touch(m string, now time.Time, capturing []string) {
	if m == "" {
		return
	}
	mi := st.members[m]
	if mi == nil {
		mi = &memberInfo{}
		st.members[m] = mi
	}
	if now.After(mi.seen) {
		mi.seen = now
	}
	if capturing != nil {
		mi.capturing = capturing
	}
}

// expire drops sessions not refreshed by their owner within ttl, old
// tombstones and long-silent members, and returns the IDs of the sessions
// dropped.
func (st *state) expire(now time.Time, ttl, tombTTL time.Duration) []string {
	var gone []string
	for id, e := range st.sessions {
		if !st.own[id] && now.Sub(e.seen) > ttl {
			delete(st.sessions, id)
			gone = append(gone, id)
		}
	}
	for id, t := range st.tombs {
		if now.Sub(t.at) > tombTTL {
			delete(st.tombs, id)
		}
	}
	for m, mi := range st.members {
		if m != st.self && now.Sub(mi.seen) > tombTTL {
			delete(st.members, m)
		}
	}
	sort.Strings(gone)
	return gone
}

// list returns the sessions sorted by ID.
func (st *state) list() []*filter.Session {
	out := make([]*filter.Session, 0, len(st.sessions))
	for _, e := range st.sessions {
		out = append(out, e.sess)
	}
	slices.SortFunc(out, func(a, b *filter.Session) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// owned returns the entries this member refreshes, sorted by ID.
func (st *state) owned() []wireEntry {
	out := make([]wireEntry, 0, len(st.own))
	for id := range st.own {
		e := st.sessions[id]
		out = append(out, wireEntry{Session: e.sess, Owner: e.owner, Version: e.version})
	}
	slices.SortFunc(out, func(a, b wireEntry) int { return strings.Compare(a.Session.ID, b.Session.ID) })
	return out
}

// age is how long ago e's owner last vouched for it: zero for a session
// this member owns and refreshes itself.
func (st *state) age(e *entry, now time.Time) time.Duration {
	if st.own[e.sess.ID] {
		return 0
	}
	return now.Sub(e.seen)
}

// snapshot returns everything this member knows, for a peer that just
// connected: sessions with their age and tombstones.
func (st *state) snapshot(now time.Time) ([]wireEntry, []wireDown) {
	es := make([]wireEntry, 0, len(st.sessions))
	for _, e := range st.sessions {
		es = append(es, wireEntry{Session: e.sess, Owner: e.owner, Version: e.version, AgeMS: max(st.age(e, now).Milliseconds(), 0)})
	}
	ds := make([]wireDown, 0, len(st.tombs))
	for id, t := range st.tombs {
		ds = append(ds, wireDown{ID: id, Version: t.version})
	}
	slices.SortFunc(es, func(a, b wireEntry) int { return strings.Compare(a.Session.ID, b.Session.ID) })
	slices.SortFunc(ds, func(a, b wireDown) int { return strings.Compare(a.ID, b.ID) })
	return es, ds
}
