package cluster

import (
	"bytes"
	"container/heap"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Bounds of the shared store. A Put beyond them returns an error wrapping
// ErrSharedLimit; an entry from a peer beyond them is dropped and counted
// (SharedStats.Refused).
const (
	// SharedMaxValue is the largest value: 4 MiB (5.3 MiB in base64 on
	// the bus, under its 8 MiB payload limit).
	SharedMaxValue = 4 << 20
	// SharedMaxSpaces bounds the spaces, counting those that hold only
	// tombstones.
	SharedMaxSpaces = 16
	// SharedMaxKeys bounds the live keys of one space.
	SharedMaxKeys = 50_000
	// SharedMaxBytes bounds the values of all spaces together: 256 MiB.
	SharedMaxBytes = 256 << 20
	// SharedMaxTombstones bounds the tombstones of one space; above it the
	// oldest are forgotten first (SharedStats.TombstonesForgotten).
	SharedMaxTombstones = 50_000
	// SharedTombstoneTTL is how long a deleted key is remembered: a Put
	// older than the Delete that arrives within it does not bring the key
	// back.
	SharedTombstoneTTL = 24 * time.Hour
)

// maxSharedName bounds a space or key name; maxWriterLen a writer's name.
const (
	maxSharedName = 64
	maxWriterLen  = 255
)

// A shared snapshot page holds at most sharedPageItems entries and about
// sharedPageBytes of JSON, or one entry when that entry alone is larger
// (at most 5.6 MiB: a 4 MiB value in base64), so a page stays under the
// bus's 8 MiB payload limit.
const (
	sharedPageBytes = 5 << 20
	sharedPageItems = 20_000
)

// sharedSnapTimeout bounds one request for a page of the shared store:
// a page may carry megabytes.
const sharedSnapTimeout = 10 * time.Second

// validSharedName reports whether s is 1 to 64 characters of A-Z, a-z,
// 0-9 and . _ : @ + -.
func validSharedName(s string) bool {
	if s == "" || len(s) > maxSharedName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			strings.IndexByte("._:@+-", c) >= 0) {
			return false
		}
	}
	return true
}

// checkSharedNames returns an error wrapping ErrSharedInvalid that names
// the bad space or key.
func checkSharedNames(space, key string) error {
	if !validSharedName(space) {
		return fmt.Errorf("%w: space %q is not 1 to %d characters of A-Z, a-z, 0-9 and ._:@+-", ErrSharedInvalid, space, maxSharedName)
	}
	if !validSharedName(key) {
		return fmt.Errorf("%w: key %q in space %s is not 1 to %d characters of A-Z, a-z, 0-9 and ._:@+-", ErrSharedInvalid, key, space, maxSharedName)
	}
	return nil
}

// check validates an entry heard from a peer. Errors about names wrap
// ErrSharedInvalid and the size of a value ErrSharedLimit; the others
// wrap neither (a member never sends them).
func (w *wireShared) check() error {
	if err := checkSharedNames(w.Space, w.Key); err != nil {
		return err
	}
	switch {
	case len(w.Value) > SharedMaxValue:
		return fmt.Errorf("%w: the value of key %s in space %s is %d bytes, more than %d", ErrSharedLimit, w.Key, w.Space, len(w.Value), SharedMaxValue)
	case w.Writer == "" || len(w.Writer) > maxWriterLen:
		return fmt.Errorf("key %s in space %s has a writer name of %d bytes (want 1 to %d)", w.Key, w.Space, len(w.Writer), maxWriterLen)
	case w.Version == 0:
		return fmt.Errorf("key %s in space %s has version 0", w.Key, w.Space)
	case w.Deleted && len(w.Value) > 0:
		return fmt.Errorf("the tombstone of key %s in space %s carries a value", w.Key, w.Space)
	case w.AgeMS < 0:
		return fmt.Errorf("key %s in space %s has negative age %d ms", w.Key, w.Space, w.AgeMS)
	}
	return nil
}

// sharedItem is one key of a space: a value, or a tombstone.
type sharedItem struct {
	value   []byte // never modified; nil for a tombstone
	version uint64
	writer  string
	deleted bool
	at      time.Time // tombstones: when the delete happened, as this member estimates it
}

// sharedNewer reports whether a write (v, writer) supersedes cur.
func sharedNewer(v uint64, writer string, cur *sharedItem) bool {
	return v > cur.version || (v == cur.version && writer > cur.writer)
}

// sharedSpace is one space: its keys and their counts.
type sharedSpace struct {
	items   map[string]*sharedItem
	live    int     // keys with a value
	tombs   int     // keys with a tombstone
	bytes   int64   // sum of the live values' lengths
	tombAge keyHeap // tombstones by time of delete, oldest first; may hold stale refs
}

// sharedState is the shared store: the pure part, without transport or
// goroutines. Time is passed in. It is not safe for concurrent use; the
// Node guards it with sharedStore.mu.
type sharedState struct {
	spaces    map[string]*sharedSpace
	bytes     int64  // sum over the spaces
	forgotten uint64 // tombstones dropped by SharedMaxTombstones before their time
}

func newSharedState() *sharedState {
	return &sharedState{spaces: make(map[string]*sharedSpace)}
}

func (ss *sharedState) item(space, key string) *sharedItem {
	if sp := ss.spaces[space]; sp != nil {
		return sp.items[key]
	}
	return nil
}

// nextVersion returns the version of a new write of key in space: the
// clock in nanoseconds, or one more than the version this member knows
// for the key (value or tombstone) when that is not below it. A write made
// after another was seen therefore wins, even against a clock ahead of
// this member's.
func (ss *sharedState) nextVersion(space, key string, now time.Time) uint64 {
	v := uint64(max(now.UnixNano(), 1))
	if it := ss.item(space, key); it != nil && it.version >= v {
		v = it.version + 1
	}
	return v
}

// apply merges one write (a local Put or Delete, or an entry from a peer)
// and reports whether the live entries of its space changed. A write that
// does not supersede what this member holds is ignored. It returns an
// error for an invalid entry (see wireShared.check) and one wrapping
// ErrSharedLimit for an entry beyond the store's bounds; the store is then
// unchanged. w.Value is kept, not copied.
func (ss *sharedState) apply(w *wireShared, now time.Time) (bool, error) {
	if err := w.check(); err != nil {
		return false, err
	}
	sp := ss.spaces[w.Space]
	var cur *sharedItem
	if sp != nil {
		cur = sp.items[w.Key]
	}
	if cur != nil && !sharedNewer(w.Version, w.Writer, cur) {
		return false, nil
	}
	wasLive := cur != nil && !cur.deleted
	isLive := !w.Deleted
	var oldLen, newLen int64
	if wasLive {
		oldLen = int64(len(cur.value))
	}
	if isLive {
		newLen = int64(len(w.Value))
	}
	switch {
	case sp == nil && len(ss.spaces) >= SharedMaxSpaces:
		return false, fmt.Errorf("%w: space %s would be one more than the %d spaces allowed", ErrSharedLimit, w.Space, SharedMaxSpaces)
	case sp != nil && isLive && !wasLive && sp.live >= SharedMaxKeys:
		return false, fmt.Errorf("%w: key %s would be one more than the %d keys allowed in space %s", ErrSharedLimit, w.Key, SharedMaxKeys, w.Space)
	case ss.bytes-oldLen+newLen > SharedMaxBytes:
		return false, fmt.Errorf("%w: the value of key %s in space %s (%d bytes) would take the store above %d bytes", ErrSharedLimit, w.Key, w.Space, newLen, SharedMaxBytes)
	}
	if sp == nil {
		sp = &sharedSpace{items: make(map[string]*sharedItem)}
		ss.spaces[w.Space] = sp
	}
	it := &sharedItem{version: w.Version, writer: w.Writer, deleted: w.Deleted}
	changed := wasLive != isLive
	if isLive {
		it.value = w.Value
		if it.value == nil {
			it.value = []byte{}
		}
		changed = changed || !bytes.Equal(cur.value, it.value)
		if !wasLive {
			sp.live++
			if cur != nil {
				sp.tombs--
			}
		}
	} else {
		age := min(max(time.Duration(w.AgeMS)*time.Millisecond, 0), SharedTombstoneTTL)
		it.at = now.Add(-age)
		if cur == nil || wasLive {
			sp.tombs++
		}
		if wasLive {
			sp.live--
		}
	}
	sp.bytes += newLen - oldLen
	ss.bytes += newLen - oldLen
	sp.items[w.Key] = it
	if it.deleted {
		sp.pushTomb(w.Key, it.at)
		ss.forgotten += sp.boundTombs(SharedMaxTombstones)
	}
	return changed, nil
}

// pushTomb records a tombstone's age, rebuilding the heap when stale refs
// (tombstones since replaced by a value or a newer delete) pile up.
func (sp *sharedSpace) pushTomb(key string, at time.Time) {
	heap.Push(&sp.tombAge, keyRef{key: key, at: at})
	if len(sp.tombAge) <= 2*sp.tombs+1024 {
		return
	}
	sp.tombAge = sp.tombAge[:0]
	for k, it := range sp.items {
		if it.deleted {
			sp.tombAge = append(sp.tombAge, keyRef{key: k, at: it.at})
		}
	}
	heap.Init(&sp.tombAge)
}

// popTomb removes the oldest tombstone ref and, when it still describes
// the key's tombstone, the tombstone itself. It reports whether it did.
func (sp *sharedSpace) popTomb() bool {
	r := heap.Pop(&sp.tombAge).(keyRef)
	it := sp.items[r.key]
	if it == nil || !it.deleted || !it.at.Equal(r.at) {
		return false
	}
	delete(sp.items, r.key)
	sp.tombs--
	return true
}

// boundTombs forgets the oldest tombstones above limit and returns how
// many.
func (sp *sharedSpace) boundTombs(limit int) uint64 {
	var n uint64
	for sp.tombs > limit && len(sp.tombAge) > 0 {
		if sp.popTomb() {
			n++
		}
	}
	return n
}

// sweep forgets the tombstones older than ttl and the spaces left empty.
func (ss *sharedState) sweep(now time.Time, ttl time.Duration) {
	for name, sp := range ss.spaces {
		for len(sp.tombAge) > 0 && now.Sub(sp.tombAge[0].at) > ttl {
			sp.popTomb()
		}
		if sp.live == 0 && sp.tombs == 0 {
			delete(ss.spaces, name)
		}
	}
}

// entries returns a copy of the live entries of space; the values share
// one new buffer.
func (ss *sharedState) entries(space string) map[string][]byte {
	sp := ss.spaces[space]
	if sp == nil {
		return map[string][]byte{}
	}
	out := make(map[string][]byte, sp.live)
	buf := make([]byte, 0, sp.bytes)
	for k, it := range sp.items {
		if it.deleted {
			continue
		}
		start := len(buf)
		buf = append(buf, it.value...)
		out[k] = buf[start:len(buf):len(buf)]
	}
	return out
}

// sharedWireSize bounds the JSON size of an entry on the bus: names are
// plain ASCII, a writer's name may need escapes (6 bytes a byte at worst).
func sharedWireSize(space, key, writer string, valueLen int) int {
	return base64.StdEncoding.EncodedLen(valueLen) + len(space) + len(key) + 6*len(writer) + 128
}

// snapshot returns the entries and tombstones after (afterSpace, afterKey)
// in (space, key) order, for a peer that just connected: at most maxItems
// of them and about maxBytes of JSON, but always at least one when any is
// left. more reports that some were left out: ask again after the last
// one. Tombstones carry their age.
func (ss *sharedState) snapshot(now time.Time, afterSpace, afterKey string, maxBytes, maxItems int) (ws []wireShared, more bool) {
	size := 0
	for _, space := range slices.Sorted(maps.Keys(ss.spaces)) {
		if space < afterSpace {
			continue
		}
		sp := ss.spaces[space]
		keys := make([]string, 0, len(sp.items))
		for k := range sp.items {
			if space > afterSpace || k > afterKey {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			it := sp.items[k]
			sz := sharedWireSize(space, k, it.writer, len(it.value))
			if len(ws) > 0 && (len(ws) >= maxItems || size+sz > maxBytes) {
				return ws, true
			}
			size += sz
			w := wireShared{Space: space, Key: k, Value: it.value, Deleted: it.deleted, Version: it.version, Writer: it.writer}
			if it.deleted {
				w.AgeMS = max(now.Sub(it.at).Milliseconds(), 0)
			}
			ws = append(ws, w)
		}
	}
	return ws, false
}

// keyRef is one item of a tombstone age heap.
type keyRef struct {
	key string
	at  time.Time
}

// keyHeap is a min-heap of tombstones by time of delete.
type keyHeap []keyRef

func (h keyHeap) Len() int           { return len(h) }
func (h keyHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h keyHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *keyHeap) Push(x any)        { *h = append(*h, x.(keyRef)) }
func (h *keyHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// sharedStore is a Node's shared store with its subscribers. mu is never
// held together with Node.mu.
type sharedStore struct {
	mu      sync.Mutex // guards st, subs, nextSub
	st      *sharedState
	subs    map[string]map[int]*sharedSub // space → subscribers
	nextSub int

	puts, deletes, received, invalid, refused, snapshots, snapshotErrs atomic.Uint64
}

func newSharedStore() *sharedStore {
	return &sharedStore{st: newSharedState(), subs: make(map[string]map[int]*sharedSub)}
}

// sharedSub is one SubscribeShared registration with its goroutine.
type sharedSub struct {
	fn   func()
	kick chan struct{} // capacity 1: the space changed
	stop chan struct{}
	done chan struct{} // closed when the goroutine has returned
}

// kickLocked wakes the subscribers of the given spaces. The caller holds
// s.mu.
func (s *sharedStore) kickLocked(spaces ...string) {
	for _, space := range spaces {
		for _, sub := range s.subs[space] {
			select {
			case sub.kick <- struct{}{}:
			default:
			}
		}
	}
}

// Put stores value under key in space on every member. The last write
// wins, ordered by version then writer: the version is the writer's clock
// in nanoseconds, raised above any version the writer knows for the key
// (a hybrid clock: a write made after another was seen always wins), and
// between equal versions the larger member name wins, so concurrent writes
// converge to the same value everywhere.
//
// space and key are 1 to 64 characters of A-Z, a-z, 0-9 and . _ : @ + -
// (otherwise an error wrapping ErrSharedInvalid); value is at most
// SharedMaxValue bytes, and a Put that would exceed SharedMaxValue,
// SharedMaxSpaces, SharedMaxKeys or SharedMaxBytes returns an error
// wrapping ErrSharedLimit. Put copies value. It stores the value here at
// once and publishes it to the members that are connected; the others get
// it from a snapshot when their route comes up, so the value outlives this
// member. An error from publishing (ErrClosed when the node is closing)
// leaves the value stored here. Put is safe for concurrent use.
func (n *Node) Put(space, key string, value []byte) error {
	if err := checkSharedNames(space, key); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	if len(value) > SharedMaxValue {
		return fmt.Errorf("put: %w: the value of key %s in space %s is %d bytes, more than %d", ErrSharedLimit, key, space, len(value), SharedMaxValue)
	}
	w := wireShared{Space: space, Key: key, Value: bytes.Clone(value), Writer: n.cfg.Name}
	if w.Value == nil {
		w.Value = []byte{}
	}
	if err := n.writeShared(&w); err != nil {
		return fmt.Errorf("put: %w", err)
	}
	n.kv.puts.Add(1)
	return nil
}

// Delete removes key from space on every member. It leaves a tombstone,
// ordered like a Put, on every member for SharedTombstoneTTL, so that a
// Put older than the Delete that arrives later does not bring the key
// back. Deleting a key this member does not know still records the
// tombstone (a peer may hold the key). The names and bounds are those of
// Put. Delete is safe for concurrent use.
func (n *Node) Delete(space, key string) error {
	if err := checkSharedNames(space, key); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	w := wireShared{Space: space, Key: key, Deleted: true, Writer: n.cfg.Name}
	if err := n.writeShared(&w); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	n.kv.deletes.Add(1)
	return nil
}

// writeShared versions w, applies it here and publishes it.
func (n *Node) writeShared(w *wireShared) error {
	n.mu.Lock()
	closed := n.closed
	n.mu.Unlock()
	if closed {
		return ErrClosed
	}
	now := n.cfg.Now()
	s := n.kv
	s.mu.Lock()
	w.Version = s.st.nextVersion(w.Space, w.Key, now)
	changed, err := s.st.apply(w, now)
	if changed {
		s.kickLocked(w.Space)
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return n.publish(&message{Kind: kindKV, From: n.cfg.Name, Shared: []wireShared{*w}})
}

// Entries returns a copy of the live entries of space, key → value: the
// caller may keep and modify it. An unknown (or invalid) space has no
// entries. Entries is safe for concurrent use.
func (n *Node) Entries(space string) map[string][]byte {
	n.kv.mu.Lock()
	defer n.kv.mu.Unlock()
	return n.kv.st.entries(space)
}

// SubscribeShared calls fn after the live entries of space changed, on
// this member or from a peer (a Put of the value already held is no
// change). fn is not called at registration: subscribe, then read Entries.
// fn runs on a goroutine of its own, one call at a time, never under a
// lock of the node; changes that happen while it runs coalesce into one
// later call, so fn should read Entries again rather than count calls.
//
// cancel unregisters fn and waits until no call of fn runs; after it
// returns fn is not called again. fn must not be nil and must not call
// cancel or Close. Close stops every subscription too, waiting for the
// calls in progress (cancel then returns at once). SubscribeShared is safe
// for concurrent use; on a closed node it returns a cancel that does
// nothing.
func (n *Node) SubscribeShared(space string, fn func()) (cancel func()) {
	sub := &sharedSub{fn: fn, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return func() {}
	}
	n.wg.Add(1) // under n.mu: Close cannot be waiting yet
	n.mu.Unlock()
	s := n.kv
	s.mu.Lock()
	id := s.nextSub
	s.nextSub++
	if s.subs[space] == nil {
		s.subs[space] = make(map[int]*sharedSub)
	}
	s.subs[space][id] = sub
	s.mu.Unlock()
	go func() {
		defer n.wg.Done()
		defer close(sub.done)
		for {
			select {
			case <-sub.stop:
				return
			case <-n.done:
				return
			case <-sub.kick:
			}
			select { // a cancel that came with the kick wins
			case <-sub.stop:
				return
			case <-n.done:
				return
			default:
			}
			sub.fn()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			delete(s.subs[space], id)
			if len(s.subs[space]) == 0 {
				delete(s.subs, space)
			}
			s.mu.Unlock()
			close(sub.stop)
		})
		<-sub.done
	}
}

// SharedStats are the shared store's figures on this member. Puts and
// Deletes count the writes made on this member; Received the entries from
// peers (bus and snapshots) that changed the live entries; Invalid those dropped
// as malformed (a bad name, a value above SharedMaxValue, no writer, no
// version); Refused those dropped for the store's bounds (spaces, keys,
// bytes); TombstonesForgotten the tombstones dropped by
// SharedMaxTombstones before SharedTombstoneTTL; Snapshots the peers'
// stores fetched, SnapshotFails the page requests that failed.
type SharedStats struct {
	Spaces              map[string]SharedSpaceStats `json:"spaces"`
	Bytes               int64                       `json:"bytes"`
	Puts                uint64                      `json:"puts"`
	Deletes             uint64                      `json:"deletes"`
	Received            uint64                      `json:"received"`
	Invalid             uint64                      `json:"invalid"`
	Refused             uint64                      `json:"refused"`
	TombstonesForgotten uint64                      `json:"tombstones_forgotten"`
	Snapshots           uint64                      `json:"snapshots"`
	SnapshotFails       uint64                      `json:"snapshot_fails"`
}

// SharedSpaceStats describes one space: live keys, tombstones and the
// bytes of its values.
type SharedSpaceStats struct {
	Entries    int   `json:"entries"`
	Tombstones int   `json:"tombstones"`
	Bytes      int64 `json:"bytes"`
}

// SharedStats returns the shared store's figures. It is safe for
// concurrent use.
func (n *Node) SharedStats() SharedStats {
	s := n.kv
	s.mu.Lock()
	st := SharedStats{
		Spaces:              make(map[string]SharedSpaceStats, len(s.st.spaces)),
		Bytes:               s.st.bytes,
		TombstonesForgotten: s.st.forgotten,
	}
	for name, sp := range s.st.spaces {
		st.Spaces[name] = SharedSpaceStats{Entries: sp.live, Tombstones: sp.tombs, Bytes: sp.bytes}
	}
	s.mu.Unlock()
	st.Puts = s.puts.Load()
	st.Deletes = s.deletes.Load()
	st.Received = s.received.Load()
	st.Invalid = s.invalid.Load()
	st.Refused = s.refused.Load()
	st.Snapshots = s.snapshots.Load()
	st.SnapshotFails = s.snapshotErrs.Load()
	return st
}

// mergeShared applies entries heard from member from (the bus or a
// snapshot). Bad entries are dropped and counted; the first error of the
// batch is logged.
func (n *Node) mergeShared(from string, ws []wireShared) {
	if len(ws) == 0 {
		return
	}
	now := n.cfg.Now()
	s := n.kv
	var (
		first   error
		dropped int
		changed []string
	)
	s.mu.Lock()
	for i := range ws {
		// A malformed entry is invalid; a well-formed one that does
		// not fit is refused.
		err := ws[i].check()
		bad := err != nil
		ok := false
		if !bad {
			ok, err = s.st.apply(&ws[i], now)
		}
		switch {
		case bad:
			s.invalid.Add(1)
		case err != nil:
			s.refused.Add(1)
		case ok:
			s.received.Add(1)
			if !slices.Contains(changed, ws[i].Space) {
				changed = append(changed, ws[i].Space)
			}
		}
		if err != nil {
			dropped++
			if first == nil {
				first = err
			}
		}
	}
	s.kickLocked(changed...)
	s.mu.Unlock()
	if first != nil {
		n.log.Warn("dropping bad shared store entries from a peer", "peer", from, "dropped", dropped, "err", first)
	}
}

// sweepShared forgets old tombstones and empty spaces.
func (n *Node) sweepShared(now time.Time) {
	n.kv.mu.Lock()
	n.kv.st.sweep(now, SharedTombstoneTTL)
	n.kv.mu.Unlock()
}

// answerSharedSnap answers a request for a page of the shared store.
func (n *Node) answerSharedSnap(msg *nats.Msg, req snapRequest) {
	n.kv.mu.Lock()
	ws, more := n.kv.st.snapshot(n.cfg.Now(), req.SharedSpace, req.SharedKey, sharedPageBytes, sharedPageItems)
	n.kv.mu.Unlock()
	b, err := encodeMessage(&message{Kind: kindSnap, From: n.cfg.Name, Shared: ws, SharedMore: more})
	if err == nil {
		err = msg.Respond(b)
	}
	if err != nil {
		n.log.Warn("answering a shared store snapshot request", "err", err)
	}
}

// fetchSharedSnapshot asks the member behind route r for its shared
// store, page after page, and merges it. It returns false when a request
// failed, so that the next route check asks again.
func (n *Node) fetchSharedSnapshot(r *server.RouteInfo) bool {
	req := snapRequest{Shared: true}
	entries := 0
	for page := 0; ; page++ {
		m, ok := n.fetchSnapPage(r, req, sharedSnapTimeout)
		if !ok {
			n.kv.snapshotErrs.Add(1)
			return false
		}
		if m == nil {
			return true
		}
		n.merge(m)
		n.mergeShared(m.From, m.Shared)
		entries += len(m.Shared)
		if !m.SharedMore || len(m.Shared) == 0 {
			n.kv.snapshots.Add(1)
			if entries > 0 {
				n.log.Info("fetched the shared store from a peer", "peer", m.From, "entries", entries, "pages", page+1)
			}
			return true
		}
		last := m.Shared[len(m.Shared)-1]
		req.SharedSpace, req.SharedKey = last.Space, last.Key
	}
}
