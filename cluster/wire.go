package cluster

import (
	"encoding/json"
	"fmt"

	"github.com/silentmon/silentmon/filter"
)

// Message kinds on the bus.
const (
	kindUp   = "up"   // sessions announced (or taken over) by their owner
	kindDown = "down" // sessions withdrawn
	kindBeat = "beat" // the owner's periodic refresh and capture report
	kindSnap = "snap" // a reply to a snapshot request
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
}

// wireEntry is one session with its owner and version. AgeMS, in
// snapshots, is how long ago the owner last refreshed it.
type wireEntry struct {
	Session *filter.Session `json:"session"`
	Owner   string          `json:"owner"`
	Version uint64          `json:"version"`
	AgeMS   int64           `json:"age_ms,omitempty"`
}

// wireDown is one withdrawn session.
type wireDown struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
}

// decodeMessage parses and checks a bus message. Entries that are not
// valid sessions are an error: a member never sends them.
func decodeMessage(data []byte) (*message, error) {
	var m message
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("cluster message: %w", err)
	}
	switch m.Kind {
	case kindUp, kindDown, kindBeat, kindSnap:
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
	}
	return &m, nil
}

func encodeMessage(m *message) ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encoding a cluster %s message: %w", m.Kind, err)
	}
	return b, nil
}
