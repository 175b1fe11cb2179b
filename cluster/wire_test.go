package cluster

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDecodeMessage(t *testing.T) {
	tests := []struct {
		name, in, err string
	}{
		{"up", `{"kind":"up","from":"A","sessions":[{"session":{"id":"s1","agent":"1001","endpoints":["10.0.0.1"],"supervisor":"h:1"},"owner":"A","version":3}]}`, ""},
		{"down", `{"kind":"down","from":"B","down":[{"id":"s1","version":3}]}`, ""},
		{"beat with empty capture list", `{"kind":"beat","from":"C","has_capturing":true}`, ""},
		{"not json", `{"kind":`, "cluster message"},
		{"unknown kind", `{"kind":"boom","from":"A"}`, `unknown kind "boom"`},
		{"no sender", `{"kind":"up"}`, "names no sender"},
		{"null session", `{"kind":"up","from":"A","sessions":[{"owner":"A"}]}`, "has no session"},
		{"bad extension", `{"kind":"up","from":"A","sessions":[{"session":{"id":"s1","agent":"1","extensions":["50 01"]},"owner":"A"}]}`, `extension "50 01"`},
		{"bad endpoint", `{"kind":"up","from":"A","sessions":[{"session":{"id":"s1","agent":"1","endpoints":["10.0.0.300"]},"owner":"A"}]}`, "10.0.0.300"},
		{"no owner", `{"kind":"up","from":"A","sessions":[{"session":{"id":"s1","agent":"1","endpoints":["10.0.0.1"]}}]}`, "has no owner"},
		{"negative age", `{"kind":"snap","from":"A","sessions":[{"session":{"id":"s1","agent":"1","endpoints":["10.0.0.1"]},"owner":"A","age_ms":-5}]}`, "negative age"},
		{"withdrawal without id", `{"kind":"down","from":"A","down":[{"version":1}]}`, "names no session"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := decodeMessage([]byte(tc.in))
			if tc.err == "" {
				if err != nil {
					t.Fatalf("error %v", err)
				}
				b, err := encodeMessage(m)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := decodeMessage(b); err != nil {
					t.Fatalf("re-decoding %s: %v", b, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}

// FuzzDecodeMessage: no input panics, and what decodes re-encodes to a
// message that decodes to the same encoding.
func FuzzDecodeMessage(f *testing.F) {
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
		b1, err := encodeMessage(m)
		if err != nil {
			t.Fatalf("encoding a decoded message: %v", err)
		}
		m2, err := decodeMessage(b1)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", b1, err)
		}
		b2, _ := encodeMessage(m2)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("encoding not stable:\n%s\n%s", b1, b2)
		}
		// Applying it to a state must not panic either.
		st := newState("Z", 4)
		for _, d := range m2.Down {
			st.remove(d, t0)
		}
		for _, e := range m2.Sessions {
			st.apply(e, t0, DefaultSessionTTL)
		}
		st.snapshot(t0, "", 2)
		st.sweep(t0.Add(3*DefaultSessionTTL), DefaultSessionTTL, DefaultTombstoneTTL)
		st.sweep(t0.Add(DefaultTombstoneTTL*2), DefaultSessionTTL, DefaultTombstoneTTL)
	})
}
