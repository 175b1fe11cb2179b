package cluster

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// startExtra starts a member named name that joins the trio through
// member seed, with the trio's CA and clock; it is closed at the end of
// the test.
func (tr *trio) startExtra(t testing.TB, name string, seed int) *Node {
	t.Helper()
	srv, cli := tr.ca.tlsPair(t, "member-"+name)
	n, err := Start(Config{
		Name:       name,
		Listen:     "127.0.0.1:0",
		Peers:      []string{"127.0.0.1:" + strconv.Itoa(tr.ports[seed])},
		TLS:        srv,
		ClientTLS:  cli,
		SessionTTL: tr.ttl,
		Refresh:    tr.ttl / 2,
		Now:        tr.now,
	})
	if err != nil {
		t.Fatalf("start member %s: %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// restart starts member i again, under its name but on a new port: while
// it was down its peers kept dialing the old one, and a dial to a closed
// loopback port can connect to itself and hold the port.
func (tr *trio) restart(t testing.TB, i int, refresh time.Duration) {
	t.Helper()
	tr.ports[i] = freePort(t, "127.0.0.1")
	tr.start(t, i, refresh)
}

// standalone starts a member with no peers.
func standalone(t testing.TB) *Node {
	t.Helper()
	n, err := Start(Config{Name: "solo", Listen: "127.0.0.1:0", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// hasEntries reports whether space on n holds exactly want.
func hasEntries(n *Node, space string, want map[string]string) bool {
	got := n.Entries(space)
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || string(g) != v {
			return false
		}
	}
	return true
}

// signal returns a function that records a call on ch without blocking.
func signal(ch chan struct{}) func() {
	return func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// await waits for a notification on ch; the bound only keeps a broken
// build from hanging.
func await(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no notification: %s", what)
	}
}

// TestSharedPutReplicates: a Put on A reaches B and C, their subscribers
// of that space (and A's own) are called, Entries returns a copy, and the
// metrics show the space.
func TestSharedPutReplicates(t *testing.T) {
	tr := newTrio(t, 5*time.Second, time.Second)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]

	var fired [3]chan struct{}
	for i, n := range tr.nodes {
		fired[i] = make(chan struct{}, 1)
		defer n.SubscribeShared("agents", signal(fired[i]))()
	}
	ctiFired := make(chan struct{}, 1)
	defer b.SubscribeShared("cti", signal(ctiFired))()

	want := map[string]string{"1001": `{"name":"Alice","extensions":["5001"]}`}
	if err := a.Put("agents", "1001", []byte(want["1001"])); err != nil {
		t.Fatal(err)
	}
	for i := range tr.nodes {
		await(t, fired[i], "agents subscriber on "+tr.names[i])
	}
	for i, n := range tr.nodes {
		if !hasEntries(n, "agents", want) {
			t.Fatalf("member %s holds %q, want %q", tr.names[i], n.Entries("agents"), want)
		}
	}
	select {
	case <-ctiFired:
		t.Fatal("a subscriber of space cti was called for a change of space agents")
	default:
	}

	// Entries is a copy: changing it changes nothing in the store.
	e := b.Entries("agents")
	e["1001"][0] = 'X'
	e["9999"] = []byte("x")
	if !hasEntries(b, "agents", want) {
		t.Fatalf("modifying the result of Entries changed the store: %q", b.Entries("agents"))
	}

	// A change of another space calls its subscribers.
	if err := c.Put("cti", "binding:7", []byte("1001")); err != nil {
		t.Fatal(err)
	}
	await(t, ctiFired, "cti subscriber on B")
	if !hasEntries(b, "cti", map[string]string{"binding:7": "1001"}) {
		t.Fatalf("B holds cti %q", b.Entries("cti"))
	}

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(b.Collector())
	got := gather(t, reg)
	for series, v := range map[string]float64{
		`silentmon_cluster_shared_entries{space="agents"}`:        1,
		`silentmon_cluster_shared_entries{space="cti"}`:           1,
		`silentmon_cluster_shared_events_total{event="received"}`: 2,
		`silentmon_cluster_shared_events_total{event="invalid"}`:  0,
		`silentmon_cluster_shared_bytes`:                          float64(len(want["1001"]) + len("1001")),
	} {
		if got[series] != v {
			t.Errorf("%s = %v, want %v", series, got[series], v)
		}
	}
}

// publishRaw publishes body on the bus from n, as a peer would.
func publishRaw(t testing.TB, n *Node, body string) {
	t.Helper()
	if err := n.nc.Publish(n.busSubj, []byte(body)); err != nil {
		t.Fatal(err)
	}
}

// barrier puts a marker from each of the given writers and waits until
// every member in nodes holds them all: the bus keeps each publisher's
// order on a route, so everything a writer published before its marker
// has then been processed everywhere.
func barrier(t testing.TB, writers []*Node, nodes ...*Node) {
	t.Helper()
	want := map[string]string{}
	for _, w := range writers {
		v := strconv.FormatInt(time.Now().UnixNano(), 10)
		if err := w.Put("barrier", w.Name(), []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[w.Name()] = v
	}
	waitFor(t, 10*time.Second, "the barrier markers", func() bool {
		for _, n := range nodes {
			got := n.Entries("barrier")
			for k, v := range want {
				if string(got[k]) != v {
					return false
				}
			}
		}
		return true
	})
}

// TestSharedDeleteEverywhere: a Delete on B removes a key A wrote from
// every member; a Put older than the Delete that arrives afterwards does
// not bring it back; a newer Put does.
func TestSharedDeleteEverywhere(t *testing.T) {
	tr := newTrio(t, 5*time.Second, time.Second)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]
	if err := a.Put("agents", "1001", []byte("alice")); err != nil {
		t.Fatal(err)
	}
	if err := a.Put("agents", "1002", []byte("bob")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "both keys everywhere", func() bool {
		return hasEntries(b, "agents", map[string]string{"1001": "alice", "1002": "bob"}) &&
			hasEntries(c, "agents", map[string]string{"1001": "alice", "1002": "bob"})
	})
	a.kv.mu.Lock()
	putVersion := a.kv.st.item("agents", "1001").version
	a.kv.mu.Unlock()

	fired := make(chan struct{}, 1)
	defer c.SubscribeShared("agents", signal(fired))()
	if err := b.Delete("agents", "1001"); err != nil {
		t.Fatal(err)
	}
	await(t, fired, "C's subscriber after the delete")
	waitFor(t, 5*time.Second, "1001 gone everywhere", func() bool {
		for _, n := range tr.nodes {
			if !hasEntries(n, "agents", map[string]string{"1002": "bob"}) {
				return false
			}
		}
		return true
	})

	// A late Put, written before the Delete by a member with a larger name.
	publishRaw(t, a, fmt.Sprintf(`{"kind":"kv","from":"Z","shared":[{"space":"agents","key":"1001","value":%q,"version":%d,"writer":"Z"}]}`,
		"bGF0ZQ==", putVersion+1))
	barrier(t, []*Node{a}, b, c)
	for _, n := range []*Node{b, c} {
		if _, ok := n.Entries("agents")["1001"]; ok {
			t.Fatalf("member %s: a Put older than the Delete brought key 1001 back", n.Name())
		}
		if got := n.SharedStats().Spaces["agents"]; got.Entries != 1 || got.Tombstones != 1 {
			t.Errorf("member %s: agents %+v, want 1 entry and 1 tombstone", n.Name(), got)
		}
	}

	// A Put made after the Delete wins.
	if err := c.Put("agents", "1001", []byte("alice again")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "1001 back everywhere", func() bool {
		for _, n := range tr.nodes {
			if string(n.Entries("agents")["1001"]) != "alice again" {
				return false
			}
		}
		return true
	})
}

// TestSharedConcurrentPutsConverge: A and B write the same key at the same
// time, many times; afterwards every member holds the same value, the one
// with the highest (version, writer).
func TestSharedConcurrentPutsConverge(t *testing.T) {
	tr := newTrio(t, 5*time.Second, time.Second)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]
	const rounds = 200
	var wg sync.WaitGroup
	for _, n := range []*Node{a, b} {
		wg.Go(func() {
			for i := range rounds {
				if err := n.Put("cti", "station:42", []byte(n.Name()+"-"+strconv.Itoa(i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	barrier(t, []*Node{a, b}, a, b, c)
	type held struct {
		value   string
		version uint64
		writer  string
	}
	var first held
	for i, n := range tr.nodes {
		n.kv.mu.Lock()
		it := n.kv.st.item("cti", "station:42")
		h := held{string(it.value), it.version, it.writer}
		n.kv.mu.Unlock()
		if i == 0 {
			first = h
			continue
		}
		if h != first {
			t.Fatalf("member %s holds %+v, member A holds %+v", tr.names[i], h, first)
		}
	}
	if !strings.HasSuffix(first.value, "-"+strconv.Itoa(rounds-1)) || !strings.HasPrefix(first.value, first.writer+"-") {
		t.Errorf("converged on %+v, want the last write of A or B", first)
	}
	t.Logf("converged on %q", first.value)
}

// TestSharedSnapshotNewAndRestartedMember: a member restarted after the
// writes and a member that joins after them get the entries and the
// tombstones from the snapshot (refreshes are far off: only the snapshot
// can bring them).
func TestSharedSnapshotNewAndRestartedMember(t *testing.T) {
	tr := newTrio(t, 2*time.Minute, time.Minute)
	tr.waitMesh(t)
	a, b := tr.nodes[0], tr.nodes[1]
	if err := a.Put("agents", "1001", []byte("alice")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "1001 on C", func() bool { return len(tr.nodes[2].Entries("agents")) == 1 })
	tr.nodes[2].Close()
	tr.nodes[2] = nil

	for k, v := range map[string]string{"1002": "bob", "1003": "carol"} {
		if err := a.Put("agents", k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Put("cti", "binding:1", []byte("1003")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "1002 on B", func() bool { return len(b.Entries("agents")) == 3 })
	if err := b.Delete("agents", "1002"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "1002 gone from A", func() bool { return len(a.Entries("agents")) == 2 })

	tr.restart(t, 2, time.Minute)
	c := tr.nodes[2]
	d := tr.startExtra(t, "D", 1)
	want := map[string]string{"1001": "alice", "1003": "carol"}
	for _, n := range []*Node{c, d} {
		waitFor(t, 10*time.Second, n.Name()+" to hold the entries", func() bool {
			return hasEntries(n, "agents", want) && hasEntries(n, "cti", map[string]string{"binding:1": "1003"})
		})
		if got := n.SharedStats(); got.Snapshots == 0 || got.Spaces["agents"].Tombstones != 1 {
			t.Errorf("member %s: %+v, want snapshots and the tombstone of 1002", n.Name(), got)
		}
	}
}

// TestSharedWriterStops: the values a member wrote stay on the others
// after it stops, however long, and come back to it when it restarts.
func TestSharedWriterStops(t *testing.T) {
	tr := newTrio(t, 2*time.Minute, time.Minute)
	tr.waitMesh(t)
	a := tr.nodes[0]
	dir := bytes.Repeat([]byte("agent;"), 1000)
	if err := a.Put("directory", "file", dir); err != nil {
		t.Fatal(err)
	}
	if err := a.Delete("directory", "old"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the directory on B and C", func() bool {
		return bytes.Equal(tr.nodes[1].Entries("directory")["file"], dir) && bytes.Equal(tr.nodes[2].Entries("directory")["file"], dir)
	})
	a.Close()
	tr.nodes[0] = nil

	// Two days later (the injected clock), after a sweep: the tombstone
	// has expired, the value has not.
	tr.offset.Add(int64(48 * time.Hour))
	for _, n := range tr.nodes[1:] {
		n.sweep()
		if !bytes.Equal(n.Entries("directory")["file"], dir) {
			t.Fatalf("member %s lost the directory after its writer stopped", n.Name())
		}
		if got := n.SharedStats().Spaces["directory"]; got.Tombstones != 0 || got.Entries != 1 {
			t.Errorf("member %s: directory %+v, want 1 entry and no tombstone after 48 h", n.Name(), got)
		}
	}

	tr.restart(t, 0, time.Minute)
	waitFor(t, 10*time.Second, "restarted A to hold the directory", func() bool {
		return bytes.Equal(tr.nodes[0].Entries("directory")["file"], dir)
	})
}

// TestSharedLargeValues: a 3 MiB value goes through the bus to every
// member, and three of them (9 MiB, more than one bus message) reach a
// restarted member through a snapshot in pages.
func TestSharedLargeValues(t *testing.T) {
	tr := newTrio(t, 2*time.Minute, time.Minute)
	tr.waitMesh(t)
	a := tr.nodes[0]
	big := func() []byte {
		b := make([]byte, 3<<20)
		rand.Read(b)
		return b
	}
	vals := map[string][]byte{"part1": big()}
	if err := a.Put("directory", "part1", vals["part1"]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "3 MiB on B and C", func() bool {
		return bytes.Equal(tr.nodes[1].Entries("directory")["part1"], vals["part1"]) &&
			bytes.Equal(tr.nodes[2].Entries("directory")["part1"], vals["part1"])
	})

	tr.nodes[2].Close()
	tr.nodes[2] = nil
	for _, k := range []string{"part2", "part3"} {
		vals[k] = big()
		if err := a.Put("directory", k, vals[k]); err != nil {
			t.Fatal(err)
		}
	}
	tr.restart(t, 2, time.Minute)
	c := tr.nodes[2]
	waitFor(t, 30*time.Second, "9 MiB on restarted C", func() bool {
		got := c.Entries("directory")
		return len(got) == 3 && maps.EqualFunc(got, vals, bytes.Equal)
	})
	if st := c.SharedStats(); st.Snapshots == 0 || st.Bytes != 9<<20 {
		t.Errorf("restarted C: %+v, want a snapshot and 9 MiB", st)
	}
}

// TestSharedSnapshotPages: a snapshot page stays under the bus's payload
// limit and the pages together hold every entry and tombstone once.
func TestSharedSnapshotPages(t *testing.T) {
	st := newSharedState()
	val := make([]byte, SharedMaxValue)
	put := func(space, key string, v []byte, deleted bool) {
		t.Helper()
		w := wireShared{Space: space, Key: key, Value: v, Deleted: deleted, Version: 7, Writer: "A"}
		if _, err := st.apply(&w, t0); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		put("big", "k"+strconv.Itoa(i), val, false)
	}
	for i := range 30_000 {
		if i%3 == 0 {
			put("small", fmt.Sprintf("k%05d", i), nil, true)
		} else {
			put("small", fmt.Sprintf("k%05d", i), []byte("v"), false)
		}
	}
	seen := map[string]bool{}
	var space, key string
	pages := 0
	for {
		ws, more := st.snapshot(t0.Add(time.Minute), space, key, sharedPageBytes, sharedPageItems)
		pages++
		b, err := encodeMessage(&message{Kind: kindSnap, From: "A", Shared: ws, SharedMore: more})
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 8<<20-1024 {
			t.Fatalf("page %d is %d bytes, above the bus limit", pages, len(b))
		}
		for _, w := range ws {
			id := w.Space + "/" + w.Key
			if seen[id] {
				t.Fatalf("%s in two pages", id)
			}
			seen[id] = true
			if w.Deleted && w.AgeMS != 60_000 {
				t.Fatalf("tombstone %s has age %d ms, want 60000", id, w.AgeMS)
			}
		}
		if !more {
			break
		}
		space, key = ws[len(ws)-1].Space, ws[len(ws)-1].Key
	}
	if len(seen) != 30_005 || pages < 6 {
		t.Fatalf("%d entries in %d pages, want 30005 in at least 6", len(seen), pages)
	}
}

// TestSharedRefused: bad names and oversized values are refused with an
// error naming them, and a Put beyond the bounds of the store with one
// wrapping ErrSharedLimit; nothing is stored.
func TestSharedRefused(t *testing.T) {
	n := standalone(t)
	long := strings.Repeat("a", 65)
	tests := []struct {
		name, space, key string
		size             int
		delete           bool
		want             error
		mention          string
	}{
		{"empty space", "", "k", 1, false, ErrSharedInvalid, `space ""`},
		{"space with a blank", "agent dir", "k", 1, false, ErrSharedInvalid, `"agent dir"`},
		{"space with a slash", "a/b", "k", 1, false, ErrSharedInvalid, `"a/b"`},
		{"space too long", long, "k", 1, false, ErrSharedInvalid, long},
		{"non-ASCII key", "agents", "agént", 1, false, ErrSharedInvalid, `"agént"`},
		{"key with a NUL", "agents", "a\x00", 1, false, ErrSharedInvalid, `"a\x00"`},
		{"empty key on delete", "agents", "", 0, true, ErrSharedInvalid, `key ""`},
		{"value above 4 MiB", "agents", "dir", SharedMaxValue + 1, false, ErrSharedLimit, strconv.Itoa(SharedMaxValue + 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.delete {
				err = n.Delete(tc.space, tc.key)
			} else {
				err = n.Put(tc.space, tc.key, make([]byte, tc.size))
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %v, want one wrapping %v that mentions %s", err, tc.want, tc.mention)
			}
		})
	}
	if err := n.Put("A-z0-9._:@+-", strings.Repeat("k", 64), make([]byte, SharedMaxValue)); err != nil {
		t.Fatalf("every allowed character, 64 characters and a 4 MiB value: %v", err)
	}
	for i := 1; i < SharedMaxSpaces; i++ {
		if err := n.Put("space"+strconv.Itoa(i), "k", nil); err != nil {
			t.Fatalf("space %d: %v", i, err)
		}
	}
	for _, err := range []error{n.Put("one-too-many", "k", nil), n.Delete("one-too-many", "k")} {
		if !errors.Is(err, ErrSharedLimit) || !strings.Contains(err.Error(), "one-too-many") {
			t.Fatalf("space %d: %v, want an error wrapping ErrSharedLimit that names it", SharedMaxSpaces+1, err)
		}
	}
	if st := n.SharedStats(); len(st.Spaces) != SharedMaxSpaces || st.Puts != SharedMaxSpaces {
		t.Fatalf("%d spaces, %d puts; want %d of each", len(st.Spaces), st.Puts, SharedMaxSpaces)
	}
}

// TestSharedStateBounds: the keys of a space and the bytes of the store
// are bounded for local writes and peers' entries alike; replacing a key
// at the bound still works.
func TestSharedStateBounds(t *testing.T) {
	st := newSharedState()
	w := func(space, key string, v []byte) *wireShared {
		return &wireShared{Space: space, Key: key, Value: v, Version: 1, Writer: "A"}
	}
	for i := range SharedMaxKeys {
		if _, err := st.apply(w("agents", strconv.Itoa(i), []byte("x")), t0); err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
	}
	if _, err := st.apply(w("agents", "one-more", []byte("x")), t0); !errors.Is(err, ErrSharedLimit) {
		t.Fatalf("key %d: %v, want ErrSharedLimit", SharedMaxKeys+1, err)
	}
	replace := w("agents", "7", []byte("y"))
	replace.Version = 2
	if changed, err := st.apply(replace, t0); err != nil || !changed {
		t.Fatalf("replacing a key at the bound: changed %v, %v", changed, err)
	}

	st = newSharedState()
	val := make([]byte, SharedMaxValue)
	for i := range SharedMaxBytes / SharedMaxValue {
		if _, err := st.apply(w("big", strconv.Itoa(i), val), t0); err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
	}
	if _, err := st.apply(w("big", "one-more", []byte("x")), t0); !errors.Is(err, ErrSharedLimit) {
		t.Fatalf("a byte above %d: %v, want ErrSharedLimit", SharedMaxBytes, err)
	}
	del := &wireShared{Space: "big", Key: "0", Deleted: true, Version: 2, Writer: "A"}
	if _, err := st.apply(del, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.apply(w("big", "one-more", []byte("x")), t0); err != nil {
		t.Fatalf("after a delete freed 4 MiB: %v", err)
	}
}

// TestSharedStateOrder: the last write wins by version, then by writer
// name; tombstones take part in the order.
func TestSharedStateOrder(t *testing.T) {
	put := func(v uint64, writer, val string) *wireShared {
		return &wireShared{Space: "s", Key: "k", Value: []byte(val), Version: v, Writer: writer}
	}
	del := func(v uint64, writer string) *wireShared {
		return &wireShared{Space: "s", Key: "k", Deleted: true, Version: v, Writer: writer}
	}
	tests := []struct {
		name    string
		writes  []*wireShared
		want    string // "" = absent
		changed bool   // by the last write
	}{
		{"first put", []*wireShared{put(5, "A", "a")}, "a", true},
		{"newer version wins", []*wireShared{put(5, "B", "b"), put(6, "A", "a")}, "a", true},
		{"older version loses", []*wireShared{put(6, "A", "a"), put(5, "B", "b")}, "a", false},
		{"equal version: larger writer wins", []*wireShared{put(5, "A", "a"), put(5, "B", "b")}, "b", true},
		{"equal version: smaller writer loses", []*wireShared{put(5, "B", "b"), put(5, "A", "a")}, "b", false},
		{"same value again is no change", []*wireShared{put(5, "A", "a"), put(6, "A", "a")}, "a", false},
		{"delete removes", []*wireShared{put(5, "A", "a"), del(6, "B")}, "", true},
		{"older put after delete refused", []*wireShared{put(5, "A", "a"), del(6, "B"), put(5, "C", "c")}, "", false},
		{"newer put after delete wins", []*wireShared{put(5, "A", "a"), del(6, "B"), put(7, "A", "a2")}, "a2", true},
		{"older delete ignored", []*wireShared{put(6, "A", "a"), del(5, "B")}, "a", false},
		{"delete of an unknown key", []*wireShared{del(5, "B")}, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newSharedState()
			var changed bool
			for _, w := range tc.writes {
				var err error
				if changed, err = st.apply(w, t0); err != nil {
					t.Fatal(err)
				}
			}
			got, ok := st.entries("s")["k"]
			if string(got) != tc.want || ok != (tc.want != "") || changed != tc.changed {
				t.Fatalf("holds %q (%v), changed %v; want %q, changed %v", got, ok, changed, tc.want, tc.changed)
			}
			// Any order of the same writes converges to the same value.
			rev := newSharedState()
			for i := len(tc.writes) - 1; i >= 0; i-- {
				rev.apply(tc.writes[i], t0)
			}
			if r := rev.entries("s")["k"]; string(r) != string(got) {
				t.Fatalf("applied in reverse: %q, in order: %q", r, got)
			}
		})
	}

	// A local write raises the version above the one known.
	st := newSharedState()
	st.apply(put(uint64(t0.Add(time.Hour).UnixNano()), "Z", "future"), t0)
	if v := st.nextVersion("s", "k", t0); v != uint64(t0.Add(time.Hour).UnixNano())+1 {
		t.Fatalf("next version %d after a write from a clock one hour ahead", v)
	}
}

// TestSharedStateTombstones: a tombstone lasts SharedTombstoneTTL, then it
// and its empty space are forgotten; above SharedMaxTombstones the oldest
// go first, counted.
func TestSharedStateTombstones(t *testing.T) {
	st := newSharedState()
	st.apply(&wireShared{Space: "s", Key: "k", Value: []byte("v"), Version: 5, Writer: "A"}, t0)
	st.apply(&wireShared{Space: "s", Key: "k", Deleted: true, Version: 6, Writer: "A"}, t0)
	st.sweep(t0.Add(SharedTombstoneTTL-time.Second), SharedTombstoneTTL)
	if changed, _ := st.apply(&wireShared{Space: "s", Key: "k", Value: []byte("late"), Version: 5, Writer: "Z"}, t0); changed {
		t.Fatal("a late older Put came back within the tombstone's lifetime")
	}
	st.sweep(t0.Add(SharedTombstoneTTL+time.Second), SharedTombstoneTTL)
	if len(st.spaces) != 0 {
		t.Fatalf("after %v: %d spaces, want the tombstone and its space forgotten", SharedTombstoneTTL, len(st.spaces))
	}

	// Deleting and putting a key again and again keeps the heap bounded.
	for i := range 10_000 {
		st.apply(&wireShared{Space: "churn", Key: "k", Value: []byte("v"), Version: uint64(2*i + 1), Writer: "A"}, t0)
		st.apply(&wireShared{Space: "churn", Key: "k", Deleted: true, Version: uint64(2*i + 2), Writer: "A"}, t0.Add(time.Duration(i)))
	}
	if h := len(st.spaces["churn"].tombAge); h > 2000 {
		t.Fatalf("tombstone heap of one churning key holds %d refs", h)
	}

	st = newSharedState()
	for i := range SharedMaxTombstones + 10 {
		st.apply(&wireShared{Space: "s", Key: fmt.Sprintf("k%05d", i), Deleted: true, Version: 1, Writer: "A"}, t0.Add(time.Duration(i)*time.Millisecond))
	}
	sp := st.spaces["s"]
	if sp.tombs != SharedMaxTombstones || len(sp.items) != SharedMaxTombstones || st.forgotten != 10 {
		t.Fatalf("%d tombstones, %d items, %d forgotten; want %d, %d, 10", sp.tombs, len(sp.items), st.forgotten, SharedMaxTombstones, SharedMaxTombstones)
	}
	if sp.items["k00009"] != nil || sp.items["k00010"] == nil {
		t.Fatal("the bound did not forget the oldest tombstones first")
	}
}

// TestSharedMalformedBusMessage: entries from the bus that are malformed
// are dropped and counted, the good ones of the same message kept, and a
// message that does not decode is counted as invalid; nothing panics.
func TestSharedMalformedBusMessage(t *testing.T) {
	tr := newTrio(t, 5*time.Second, time.Second)
	tr.waitMesh(t)
	a, b, c := tr.nodes[0], tr.nodes[1], tr.nodes[2]
	good := `{"space":"ok","key":"good","value":"eA==","version":5,"writer":"A"}`
	bad := []string{
		`{"space":"bad space","key":"k","value":"eA==","version":5,"writer":"A"}`,
		`{"space":"ok","key":"` + strings.Repeat("k", 65) + `","version":5,"writer":"A"}`,
		`{"space":"ok","key":"k","value":"eA==","version":0,"writer":"A"}`,
		`{"space":"ok","key":"k","value":"eA==","version":5}`,
		`{"space":"ok","key":"k","value":"eA==","deleted":true,"version":5,"writer":"A"}`,
		`{"space":"ok","key":"k","deleted":true,"version":5,"writer":"A","age_ms":-1}`,
		`{"space":"ok","key":"k","value":"` + strings.Repeat("A", (SharedMaxValue+3)/3*4) + `","version":5,"writer":"A"}`,
	}
	publishRaw(t, a, `{"kind":"kv","from":"A","shared":[`+strings.Join(append(bad[:1:1], good), ",")+`]}`)
	for _, e := range bad[1:] {
		publishRaw(t, a, `{"kind":"kv","from":"A","shared":[`+e+`]}`)
	}
	publishRaw(t, a, `{"kind":"kv","shared":[`)
	publishRaw(t, a, `{"kind":"kv","from":"A","shared":[{"space":1}]}`)
	barrier(t, []*Node{a}, b, c)
	for _, n := range []*Node{b, c} {
		st := n.SharedStats()
		if st.Invalid != uint64(len(bad)) {
			t.Errorf("member %s counted %d invalid shared entries, want %d", n.Name(), st.Invalid, len(bad))
		}
		if got := n.Stats().Invalid; got != 2 {
			t.Errorf("member %s counted %d invalid messages, want 2", n.Name(), got)
		}
		if !hasEntries(n, "ok", map[string]string{"good": "x"}) {
			t.Errorf("member %s holds %q in space ok, want only the good entry", n.Name(), n.Entries("ok"))
		}
		if _, ok := st.Spaces["bad space"]; ok || len(st.Spaces) != 2 {
			t.Errorf("member %s has spaces %v, want ok and barrier", n.Name(), slicesKeys(st.Spaces))
		}
	}
}

func slicesKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSharedSubscribe: calls to a subscriber never overlap, changes made
// while it runs coalesce into one more call, cancel waits for a running
// call, and Close stops every subscription.
func TestSharedSubscribe(t *testing.T) {
	n := standalone(t)
	var calls, running atomic.Int32
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var returned atomic.Bool
	cancel := n.SubscribeShared("agents", func() {
		if running.Add(1) != 1 {
			t.Error("calls overlap")
		}
		defer running.Add(-1)
		if calls.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
	})
	if err := n.Put("agents", "k", []byte("0")); err != nil {
		t.Fatal(err)
	}
	await(t, entered, "the first call")
	for i := 1; i <= 10; i++ {
		if err := n.Put("agents", "k", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	waitFor(t, 5*time.Second, "the coalesced call", func() bool { return calls.Load() == 2 })
	cancel()
	if got := calls.Load(); got != 2 {
		t.Fatalf("%d calls for one change and ten changes during the first call, want 2", got)
	}

	// cancel waits for the call in progress.
	entered2 := make(chan struct{}, 1)
	release2 := make(chan struct{})
	cancel2 := n.SubscribeShared("cti", func() {
		entered2 <- struct{}{}
		<-release2
		returned.Store(true)
	})
	if err := n.Put("cti", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	await(t, entered2, "the cti call")
	cancelled := make(chan bool)
	go func() {
		cancel2()
		cancelled <- returned.Load()
	}()
	close(release2)
	if !<-cancelled {
		t.Fatal("cancel returned while the subscriber was running")
	}

	// Close stops the remaining subscriptions; their cancel returns.
	cancel3 := n.SubscribeShared("agents", func() {})
	n.Close()
	cancel3()
	if cancel4 := n.SubscribeShared("agents", func() {}); cancel4 == nil {
		t.Fatal("SubscribeShared on a closed node returned no cancel")
	} else {
		cancel4()
	}
	if err := n.Put("agents", "k", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put on a closed node: %v, want ErrClosed", err)
	}
}

// FuzzSharedMessage: no bus message with shared entries panics or breaks
// the store's counts, and what a store holds survives a round trip
// through snapshot pages into another store.
func FuzzSharedMessage(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "messages", "*.json"))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeMessage(data)
		if err != nil {
			return
		}
		st := newSharedState()
		for i := range m.Shared {
			st.apply(&m.Shared[i], t0)
		}
		var size int64
		for _, sp := range st.spaces {
			var l, tb int
			var b int64
			for _, it := range sp.items {
				if it.deleted {
					tb++
				} else {
					l++
					b += int64(len(it.value))
				}
			}
			if l != sp.live || tb != sp.tombs || b != sp.bytes {
				t.Fatalf("space counts %d/%d/%d, items say %d/%d/%d", sp.live, sp.tombs, sp.bytes, l, tb, b)
			}
			size += b
		}
		if size != st.bytes || len(st.spaces) > SharedMaxSpaces {
			t.Fatalf("store bytes %d, spaces say %d; %d spaces", st.bytes, size, len(st.spaces))
		}
		other := newSharedState()
		var space, key string
		for {
			ws, more := st.snapshot(t0, space, key, 64, 2)
			b, err := encodeMessage(&message{Kind: kindSnap, From: "A", Shared: ws, SharedMore: more})
			if err != nil {
				t.Fatal(err)
			}
			m2, err := decodeMessage(b)
			if err != nil {
				t.Fatalf("re-decoding a snapshot page %s: %v", b, err)
			}
			for i := range m2.Shared {
				if _, err := other.apply(&m2.Shared[i], t0); err != nil {
					t.Fatalf("a snapshot entry is refused: %v", err)
				}
			}
			if !more {
				break
			}
			space, key = ws[len(ws)-1].Space, ws[len(ws)-1].Key
		}
		for name := range st.spaces {
			if !maps.EqualFunc(st.entries(name), other.entries(name), bytes.Equal) {
				t.Fatalf("space %s differs after a snapshot", name)
			}
		}
		st.sweep(t0.Add(2*SharedTombstoneTTL), SharedTombstoneTTL)
		for _, sp := range st.spaces {
			if sp.tombs != 0 {
				t.Fatalf("%d tombstones left after twice their lifetime", sp.tombs)
			}
		}
	})
}
