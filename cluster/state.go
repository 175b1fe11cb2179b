package cluster

import (
	"container/heap"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/silentmon/silentmon/filter"
)

// Reasons a session ends, as reported to SubscribeEnds and carried in
// withdrawals. End accepts other reasons too.
const (
	// ReasonStopped: an explicit stop (Withdraw, smctl monitor stop).
	ReasonStopped = "stopped"
	// ReasonLifetimeOver: the cluster clock passed the session's Until.
	ReasonLifetimeOver = "lifetime over"
	// ReasonSupervisorGone: the session's supervisor service was
	// unreachable for longer than the grace smserver enforces.
	ReasonSupervisorGone = "supervisor gone"
)

// maxReasonLen bounds the reason of an end.
const maxReasonLen = 128

// entry is one session as this member knows it.
type entry struct {
	sess       *filter.Session
	owner      string
	version    uint64
	seen       time.Time // last time the owner vouched for the session
	prevOwner  string    // the owner before the last change of owner, if any
	ownerSince time.Time // when this member learned of the current owner
}

// tombstone remembers an ended session: its ID is never accepted again
// while the tombstone lasts.
type tombstone struct {
	version uint64
	at      time.Time
	reason  string
}

// memberInfo is what this member knows of another (or itself: the entry
// for self always exists, sweep keeps it).
type memberInfo struct {
	seen      time.Time
	capturing []string // sorted session IDs
}

// End is a session that disappeared from this member's set, and why.
type End struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// adoption is a session this member took over from a silent owner.
type adoption struct {
	entry  wireEntry
	agent  string
	from   string
	silent time.Duration
}

// state is the converged view of the sessions: the pure part of a Node,
// without transport or goroutines. Time is passed in. It is not safe for
// concurrent use; the Node guards it with its mutex.
type state struct {
	self     string
	sessions map[string]*entry
	own      map[string]bool // sessions this member owns and refreshes
	tombs    map[string]tombstone
	tombAge  tombHeap // every tombstone, oldest first
	maxTombs int      // bound of len(tombs); 0: unbounded
	members  map[string]*memberInfo

	lastSweep time.Time
	holdUntil time.Time // no adoption before: the clock jumped or we stalled

	ends      []End  // sessions gone since the last takeEnds
	forgotten uint64 // tombstones dropped by the bound before their time
}

func newState(self string, maxTombs int) *state {
	return &state{
		self:     self,
		sessions: make(map[string]*entry),
		own:      make(map[string]bool),
		tombs:    make(map[string]tombstone),
		maxTombs: maxTombs,
		members:  map[string]*memberInfo{self: {capturing: []string{}}},
	}
}

// capturing returns the sessions this member last reported capturing
// (ReportCapturing), sorted; never nil. The slice is replaced, never
// modified, so the caller may keep it.
func (st *state) capturing() []string { return st.members[st.self].capturing }

// takeEnds returns and forgets the ends recorded since the last call.
func (st *state) takeEnds() []End {
	e := st.ends
	st.ends = nil
	return e
}

// nextVersion returns a version above every version known for id: the
// wall clock in nanoseconds, or one more than the highest known version.
func (st *state) nextVersion(id string, now time.Time) uint64 {
	v := uint64(max(now.UnixNano(), 1))
	if e := st.sessions[id]; e != nil && e.version >= v {
		v = e.version + 1
	}
	return v
}

// lifetimeOver reports whether s's lifetime has passed at now.
func lifetimeOver(s *filter.Session, now time.Time) bool {
	return !s.Until.IsZero() && !now.Before(s.Until)
}

// announce makes this member the owner of s and returns the entry to
// publish. An ID that has ended (a tombstone) or a lifetime already over
// is refused with an error wrapping ErrEnded.
func (st *state) announce(s *filter.Session, now time.Time) (wireEntry, error) {
	if t, ok := st.tombs[s.ID]; ok {
		return wireEntry{}, fmt.Errorf("session %s: %w (%s)", s.ID, ErrEnded, t.reason)
	}
	if lifetimeOver(s, now) {
		return wireEntry{}, fmt.Errorf("session %s: %w: its lifetime ended at %s", s.ID, ErrEnded, s.Until.Format(time.RFC3339))
	}
	v := st.nextVersion(s.ID, now)
	st.setOwner(s, st.self, v, now, now)
	st.own[s.ID] = true
	return wireEntry{Session: s, Owner: st.self, Version: v}, nil
}

// setOwner stores s owned by owner at version v, remembering the previous
// owner when it changes.
func (st *state) setOwner(s *filter.Session, owner string, v uint64, seen, now time.Time) {
	e := &entry{sess: s, owner: owner, version: v, seen: seen, ownerSince: now}
	if cur := st.sessions[s.ID]; cur != nil {
		e.prevOwner = cur.prevOwner
		if cur.owner != owner {
			e.prevOwner = cur.owner
		} else {
			e.ownerSince = cur.ownerSince
		}
	}
	st.sessions[s.ID] = e
}

// end removes id for reason and returns the withdrawal to publish.
func (st *state) end(id, reason string, now time.Time) (wireDown, bool) {
	e := st.sessions[id]
	if e == nil {
		return wireDown{}, false
	}
	st.remove(wireDown{ID: id, Version: e.version, Reason: reason}, now)
	return wireDown{ID: id, Version: e.version, Reason: reason}, true
}

// newer reports whether (v, owner) supersedes e.
func newer(v uint64, owner string, e *entry) bool {
	return v > e.version || (v == e.version && owner > e.owner)
}

// apply merges an entry heard from the bus and reports whether the set of
// sessions or their content changed. ttl bounds the age a peer may claim.
// A tombstoned ID is refused whatever the version: an end is terminal.
func (st *state) apply(w wireEntry, now time.Time, ttl time.Duration) bool {
	s := w.Session
	if s == nil || s.Validate() != nil || w.Owner == "" {
		return false
	}
	if _, ok := st.tombs[s.ID]; ok {
		return false
	}
	if lifetimeOver(s, now) {
		// Every member ends it on its own; one that never knew it
		// remembers the end so that a late refresh is refused too.
		return st.remove(wireDown{ID: s.ID, Version: w.Version, Reason: ReasonLifetimeOver}, now)
	}
	age := min(max(time.Duration(w.AgeMS)*time.Millisecond, 0), ttl)
	seen := now.Add(-age)
	cur := st.sessions[s.ID]
	switch {
	case cur == nil:
		st.setOwner(s, w.Owner, w.Version, seen, now)
		return true
	case newer(w.Version, w.Owner, cur):
		if w.Owner != st.self {
			delete(st.own, s.ID) // taken over by another member
		}
		st.setOwner(s, w.Owner, w.Version, seen, now)
		return true
	case w.Version == cur.version && w.Owner == cur.owner:
		if seen.After(cur.seen) {
			cur.seen = seen
		}
	}
	return false
}

// remove applies an end of d.ID and reports whether a session
// disappeared. The tombstone is terminal: it removes the session whatever
// its version, and keeps the first reason heard.
func (st *state) remove(d wireDown, now time.Time) bool {
	if d.ID == "" {
		return false
	}
	reason := d.Reason
	if reason == "" {
		reason = ReasonStopped
	}
	age := max(time.Duration(d.AgeMS)*time.Millisecond, 0)
	t, ok := st.tombs[d.ID]
	switch {
	case !ok:
		t = tombstone{version: d.Version, at: now.Add(-age), reason: reason}
		st.tombs[d.ID] = t
		heap.Push(&st.tombAge, tombRef{id: d.ID, at: t.at})
		st.boundTombs()
	case d.Version > t.version:
		t.version = d.Version
		st.tombs[d.ID] = t
	}
	if _, ok := st.sessions[d.ID]; !ok {
		return false
	}
	delete(st.sessions, d.ID)
	delete(st.own, d.ID)
	st.ends = append(st.ends, End{ID: d.ID, Reason: t.reason})
	return true
}

// boundTombs forgets the oldest tombstones above the bound.
func (st *state) boundTombs() {
	for st.maxTombs > 0 && len(st.tombs) > st.maxTombs {
		r := heap.Pop(&st.tombAge).(tombRef)
		if t, ok := st.tombs[r.id]; ok && t.at.Equal(r.at) {
			delete(st.tombs, r.id)
			st.forgotten++
		}
	}
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

// live reports whether member m was heard from within ttl (self always).
func (st *state) live(m string, now time.Time, ttl time.Duration) bool {
	if m == st.self {
		return true
	}
	mi := st.members[m]
	return mi != nil && now.Sub(mi.seen) <= ttl
}

// adopter returns the member that should adopt a session whose owner is
// silent: the smallest name among the live members, the owner excluded.
func (st *state) adopter(owner string, now time.Time, ttl time.Duration) string {
	best := ""
	for m := range st.members {
		if m != owner && st.live(m, now, ttl) && (best == "" || m < best) {
			best = m
		}
	}
	return best
}

// sweepResult is what one sweep did.
type sweepResult struct {
	lifetime []wireDown // ends to publish: lifetimes over of owned sessions
	adopted  []adoption // sessions this member now owns and must publish
}

// sweep ends sessions whose lifetime is over, adopts sessions whose owner
// has been silent for longer than ttl, and forgets old tombstones and
// long-silent members.
//
// A session is never dropped for want of refreshes. When its owner has not
// refreshed it for ttl, the live member with the smallest name (the owner
// excluded) adopts it: it announces the same session at a higher version
// and refreshes it from then on. Every other member adopts it after a
// second ttl, so a dead chosen adopter delays the adoption by one ttl
// only; concurrent adoptions are resolved like any takeover (the higher
// version wins). A session that names this member as owner but that it
// does not refresh (it comes from before a restart) is adopted at once.
// When the clock jumped or the sweeps stalled for more than ttl/2, nobody
// was listening: adoption waits one ttl, so that silence is measured
// again.
func (st *state) sweep(now time.Time, ttl, tombTTL time.Duration) sweepResult {
	var res sweepResult
	if !st.lastSweep.IsZero() {
		if gap := now.Sub(st.lastSweep); gap > ttl/2 || gap < -ttl/2 {
			st.holdUntil = now.Add(ttl)
		}
	}
	st.lastSweep = now
	for _, id := range st.sortedIDs() {
		e := st.sessions[id]
		if lifetimeOver(e.sess, now) {
			own := st.own[id]
			if d, ok := st.end(id, ReasonLifetimeOver, now); ok && own {
				res.lifetime = append(res.lifetime, d)
			}
			continue
		}
		if st.own[id] || now.Before(st.holdUntil) {
			continue
		}
		silent := now.Sub(e.seen)
		adopt := e.owner == st.self ||
			silent > 2*ttl ||
			silent > ttl && st.adopter(e.owner, now, ttl) == st.self
		if !adopt {
			continue
		}
		from := e.owner
		v := st.nextVersion(id, now)
		st.setOwner(e.sess, st.self, v, now, now)
		st.own[id] = true
		res.adopted = append(res.adopted, adoption{
			entry: wireEntry{Session: e.sess, Owner: st.self, Version: v},
			agent: e.sess.Agent, from: from, silent: silent,
		})
	}
	for st.tombAge.Len() > 0 && now.Sub(st.tombAge[0].at) > tombTTL {
		r := heap.Pop(&st.tombAge).(tombRef)
		if t, ok := st.tombs[r.id]; ok && t.at.Equal(r.at) {
			delete(st.tombs, r.id)
		}
	}
	for m, mi := range st.members {
		if m != st.self && now.Sub(mi.seen) > tombTTL {
			delete(st.members, m)
		}
	}
	return res
}

func (st *state) sortedIDs() []string {
	out := make([]string, 0, len(st.sessions))
	for id := range st.sessions {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
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
// connected: sessions with their age, and the tombstones whose ID sorts
// after `after`, at most maxTombs of them (more reports a truncation: ask
// again after the last one). Sessions come only with the first page
// (after == "").
func (st *state) snapshot(now time.Time, after string, maxTombs int) (es []wireEntry, ds []wireDown, more bool) {
	if after == "" {
		es = make([]wireEntry, 0, len(st.sessions))
		for _, e := range st.sessions {
			es = append(es, wireEntry{Session: e.sess, Owner: e.owner, Version: e.version, AgeMS: max(st.age(e, now).Milliseconds(), 0)})
		}
		slices.SortFunc(es, func(a, b wireEntry) int { return strings.Compare(a.Session.ID, b.Session.ID) })
	}
	ids := make([]string, 0, len(st.tombs))
	for id := range st.tombs {
		if id > after {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	if len(ids) > maxTombs {
		ids, more = ids[:maxTombs], true
	}
	ds = make([]wireDown, 0, len(ids))
	for _, id := range ids {
		t := st.tombs[id]
		ds = append(ds, wireDown{ID: id, Version: t.version, Reason: t.reason, AgeMS: max(now.Sub(t.at).Milliseconds(), 0)})
	}
	return es, ds, more
}

// tombRef is one item of the tombstone age heap.
type tombRef struct {
	id string
	at time.Time
}

// tombHeap is a min-heap of tombstones by time of death.
type tombHeap []tombRef

func (h tombHeap) Len() int           { return len(h) }
func (h tombHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h tombHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *tombHeap) Push(x any)        { *h = append(*h, x.(tombRef)) }
func (h *tombHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
