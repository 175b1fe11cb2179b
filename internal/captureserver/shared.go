package captureserver

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/silentmon/silentmon/internal/directory"
)

// sharedStore holds small values that every member of a cluster has:
// the agent directories the members loaded and the CTI bindings. It is
// the replicated store of the cluster node (the last write of a key
// wins, and a value outlives the member that wrote it), or a localStore
// for a server without a cluster. Spaces and keys are 1 to 64 of
// A-Z a-z 0-9 . _ : @ + -; a value is at most sharedMaxValue bytes.
// Implementations are safe for concurrent use.
type sharedStore interface {
	Put(space, key string, value []byte) error
	Delete(space, key string) error
	// Entries returns a copy of the live entries of space.
	Entries(space string) map[string][]byte
	// SubscribeShared calls fn after the entries of space changed (not at
	// registration); cancel ends it and waits for a running call.
	SubscribeShared(space string, fn func()) (cancel func())
}

// The spaces of the shared store.
const (
	// spaceDirectory holds each member's agent directory, by member key.
	spaceDirectory = "directory"
	// spaceBindings holds the CTI bindings, by agent id.
	spaceBindings = "bindings"
)

// sharedMaxValue bounds a value of the shared store: 4 MiB, the
// cluster's bound.
const sharedMaxValue = 4 << 20

// validSharedName reports whether s can be a space or key: 1 to 64 of
// A-Z a-z 0-9 . _ : @ + -.
func validSharedName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || bytes.IndexByte([]byte("._:@+-"), c) >= 0) {
			return false
		}
	}
	return true
}

// memberKey is the key a member publishes its directory under: its name
// when that is a valid key, otherwise "member-" and the first 32 hex
// digits of the name's SHA-256 (a name longer than 64 characters, or
// with characters a key cannot hold, such as an IPv6 address in
// brackets).
func memberKey(name string) string {
	if validSharedName(name) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	return "member-" + hex.EncodeToString(sum[:16])
}

// localStore is the sharedStore of a server without a cluster: a map in
// memory. Subscribers are called synchronously by Put and Delete, after
// the change and outside the store's lock, one space's subscribers in
// the order they subscribed. Safe for concurrent use; the zero value is
// not ready, use newLocalStore.
type localStore struct {
	mu     sync.Mutex
	spaces map[string]map[string][]byte
	subs   map[string]map[int]func()
	next   int
}

func newLocalStore() *localStore {
	return &localStore{spaces: map[string]map[string][]byte{}, subs: map[string]map[int]func(){}}
}

func (l *localStore) check(space, key string, value []byte) error {
	if !validSharedName(space) || !validSharedName(key) {
		return fmt.Errorf("shared key %q in space %q is not 1 to 64 of A-Z a-z 0-9 . _ : @ + -", key, space)
	}
	if len(value) > sharedMaxValue {
		return fmt.Errorf("the shared value of key %s in space %s is %d bytes, more than %d", key, space, len(value), sharedMaxValue)
	}
	return nil
}

// Put stores a copy of value under key.
func (l *localStore) Put(space, key string, value []byte) error {
	if err := l.check(space, key, value); err != nil {
		return err
	}
	l.mu.Lock()
	sp := l.spaces[space]
	if sp == nil {
		sp = map[string][]byte{}
		l.spaces[space] = sp
	}
	old, had := sp[key]
	changed := !had || !bytes.Equal(old, value)
	sp[key] = bytes.Clone(value)
	if sp[key] == nil {
		sp[key] = []byte{}
	}
	l.mu.Unlock()
	if changed {
		l.notify(space)
	}
	return nil
}

// Delete removes key.
func (l *localStore) Delete(space, key string) error {
	if err := l.check(space, key, nil); err != nil {
		return err
	}
	l.mu.Lock()
	_, had := l.spaces[space][key]
	delete(l.spaces[space], key)
	l.mu.Unlock()
	if had {
		l.notify(space)
	}
	return nil
}

// Entries returns a copy of space's entries.
func (l *localStore) Entries(space string) map[string][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]byte, len(l.spaces[space]))
	for k, v := range l.spaces[space] {
		out[k] = bytes.Clone(v)
	}
	return out
}

// SubscribeShared calls fn after each change of space.
func (l *localStore) SubscribeShared(space string, fn func()) (cancel func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id := l.next
	l.next++
	if l.subs[space] == nil {
		l.subs[space] = map[int]func(){}
	}
	l.subs[space][id] = fn
	return func() {
		l.mu.Lock()
		delete(l.subs[space], id)
		l.mu.Unlock()
	}
}

func (l *localStore) notify(space string) {
	l.mu.Lock()
	ids := slices.Sorted(maps.Keys(l.subs[space]))
	fns := make([]func(), 0, len(ids))
	for _, id := range ids {
		fns = append(fns, l.subs[space][id])
	}
	l.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// encodeDirectory returns the value a member publishes its directory
// as: the directory's JSON wire form (directory.Marshal), compressed with
// gzip. A directory whose compressed form exceeds sharedMaxValue cannot
// be shared.
func encodeDirectory(d *directory.Directory) ([]byte, error) {
	raw, err := d.Marshal()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if b.Len() > sharedMaxValue {
		return nil, fmt.Errorf("the agent directory of %d agents is %d bytes compressed, more than the %d a cluster shares", d.Len(), b.Len(), sharedMaxValue)
	}
	return b.Bytes(), nil
}

// decodeDirectory reads a directory another member published. The bytes
// come from the network: the decompressed form is bounded by the
// directory's own bound (directory.DefaultMaxBytes) and validated as a
// file is.
func decodeDirectory(b []byte) (*directory.Directory, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("a shared agent directory is not gzip data: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, directory.DefaultMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("a shared agent directory cannot be decompressed: %w", err)
	}
	if len(raw) > directory.DefaultMaxBytes {
		return nil, fmt.Errorf("a shared agent directory is larger than %d bytes decompressed", directory.DefaultMaxBytes)
	}
	return directory.Unmarshal(raw)
}
