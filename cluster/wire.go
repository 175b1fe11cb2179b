package cluster

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/silentmon/silentmon/filter"
)

// Message kinds on the bus.
const (
	kindUp   = "up"   // sessions announced (or taken over) by their owner
	kindDown = "down" // sessions withdrawn
	kindBeat = "beat" // the owner's periodic refresh and capture report
	kindSnap = "snap" // a reply to a snapshot request
	kindKV   = "kv"   // shared store entries written on the sender (Put, Delete)
)

// maxEntries bounds the sessions in one message; larger sets are split.
const maxEntries = 256

// message is the JSON body of every message on the bus. The control plane
// carries a few messages a second, so JSON's cost does not matter and its
// readability does (nats sub from a debugging shell).
type message struct {
	Kind      string      `json:"kind"`
	From      string      `json:"from"`
	Sessions  []wireEntry `json:"sessions,omitempty"`
	Down      []wireDown  `json:"down,omitempty"`
	Capturing []string    `json:"capturing,omitempty"`
	// HasCapturing says Capturing is meaningful (an empty list included).
	HasCapturing bool `json:"has_capturing,omitempty"`
	// More, in a snapshot, says that tombstones were left out: ask again
	// with After set to the last ID of Down.
	More bool `json:"more,omitempty"`
	// Shared carries shared store entries and tombstones (kind "kv", or a
	// snapshot of the shared store). Each entry is checked on its own when
	// it is merged: a bad one is dropped and counted, not the message.
	Shared []wireShared `json:"shared,omitempty"`
	// SharedMore, in a shared snapshot, says that entries were left out:
	// ask again after the space and key of the last entry of Shared.
	SharedMore bool `json:"shared_more,omitempty"`
}

// snapRequest is the body of a snapshot request (empty: the first page of
// sessions and session tombstones). Shared asks for a page of the shared
// store instead: the entries after (SharedSpace, SharedKey), in that
// order.
type snapRequest struct {
	After       string `json:"after,omitempty"`
	Shared      bool   `json:"shared,omitempty"`
	SharedSpace string `json:"shared_space,omitempty"`
	SharedKey   string `json:"shared_key,omitempty"`
}

// wireShared is one shared store entry: a value, or a tombstone when
// Deleted. Version and Writer order the writes of one key (the higher
// version wins; between equal versions, the larger writer name). AgeMS,
// for tombstones in snapshots, is how long ago the delete happened. Value
// travels in base64.
type wireShared struct {
	Space   string `json:"space"`
	Key     string `json:"key"`
	Value   []byte `json:"value,omitempty"`
	Deleted bool   `json:"deleted,omitempty"`
	Version uint64 `json:"version"`
	Writer  string `json:"writer"`
	AgeMS   int64  `json:"age_ms,omitempty"`
}

// wireEntry is one session with its owner and version. AgeMS, in
// snapshots, is how long ago the owner last refreshed it.
type wireEntry struct {
	Session *filter.Session `json:"session"`
	Owner   string          `json:"owner"`
	Version uint64          `json:"version"`
	AgeMS   int64           `json:"age_ms,omitempty"`
}

// wireDown is one ended session (a tombstone). Reason is why it ended
// (empty: "stopped"); AgeMS, in snapshots, is how long ago.
type wireDown struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	Reason  string `json:"reason,omitempty"`
	AgeMS   int64  `json:"age_ms,omitempty"`
}

// decodeMessage parses and checks a bus message. Entries that are not
// valid sessions are an error: a member never sends them.
func decodeMessage(data []byte) (*message, error) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cluster message: %w", err)
	}
	switch m.Kind {
	case kindUp, kindDown, kindBeat, kindSnap, kindKV:
	default:
		return nil, fmt.Errorf("cluster message: unknown kind %q", m.Kind)
	}
	if m.From == "" {
		return nil, fmt.Errorf("cluster message of kind %q names no sender", m.Kind)
	}
	for i, e := range m.Sessions {
		if e.Session == nil {
			return nil, fmt.Errorf("cluster message from %s: entry %d has no session", m.From, i)
		}
		if err := e.Session.Validate(); err != nil {
			return nil, fmt.Errorf("cluster message from %s: %w", m.From, err)
		}
		if e.Owner == "" {
			return nil, fmt.Errorf("cluster message from %s: session %s has no owner", m.From, e.Session.ID)
		}
		if e.AgeMS < 0 {
			return nil, fmt.Errorf("cluster message from %s: session %s has negative age %d ms", m.From, e.Session.ID, e.AgeMS)
		}
	}
	for _, d := range m.Down {
		if d.ID == "" {
			return nil, fmt.Errorf("cluster message from %s: a withdrawal names no session", m.From)
		}
		if d.Reason != "" && !validReason(d.Reason) {
			return nil, fmt.Errorf("cluster message from %s: the end of session %s has a bad reason %q", m.From, d.ID, d.Reason)
		}
		if d.AgeMS < 0 {
			return nil, fmt.Errorf("cluster message from %s: the end of session %s has negative age %d ms", m.From, d.ID, d.AgeMS)
		}
	}
	return &m, nil
}

// validReason reports whether r can be the reason of an end: 1 to
// maxReasonLen printable characters.
func validReason(r string) bool {
	if r == "" || len(r) > maxReasonLen || !utf8.ValidString(r) {
		return false
	}
	for _, c := range r {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	return true
}

func encodeMessage(m *message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding a cluster %s message: %w", m.Kind, err)
	}
	return b, nil
}
