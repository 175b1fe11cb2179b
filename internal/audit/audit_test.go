package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestScriptedSequence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	t0 := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	clock := t0
	l, err := OpenWith(path, Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	id := func(subject string) (string, string) {
		return "CN=" + subject + ",O=silentmon", "AA:BB:" + strings.ToUpper(subject)
	}
	subj, fp := id("sup1")
	script := []Record{
		{Action: ActionStart, Result: ResultAccepted, SessionID: "s-1", Agent: "1001", Endpoints: []string{"10.0.0.11", "10.0.0.12"}, Supervisor: "10.0.1.5:42228", Source: "10.0.1.5:51000", ClientSubject: subj, ClientFingerprint: fp},
		{Action: ActionStart, Result: ResultRefused, Reason: "agent 1001 is already monitored", Agent: "1001", Endpoints: []string{"10.0.0.11"}, Supervisor: "10.0.1.6:42228", Source: "10.0.1.6:51001", ClientSubject: subj, ClientFingerprint: fp},
		{Action: ActionStop, Result: ResultRefused, Reason: "no session s-9", SessionID: "s-9", Source: "10.0.1.5:51002", ClientSubject: subj, ClientFingerprint: fp},
		{Action: ActionStop, Result: ResultAccepted, SessionID: "s-1", Agent: "1001", Endpoints: []string{"10.0.0.11", "10.0.0.12"}, Supervisor: "10.0.1.5:42228", Source: "10.0.1.5:51003", ClientSubject: subj, ClientFingerprint: fp},
	}
	for i, r := range script {
		clock = t0.Add(time.Duration(i) * time.Second)
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`{"time":"2026-03-01T09:30:00Z","action":"start","result":"accepted","reason":"","session_id":"s-1","agent":"1001","endpoints":["10.0.0.11","10.0.0.12"],"supervisor":"10.0.1.5:42228","source":"10.0.1.5:51000","client_subject":"CN=sup1,O=silentmon","client_fingerprint":"AA:BB:SUP1"}`,
		`{"time":"2026-03-01T09:30:01Z","action":"start","result":"refused","reason":"agent 1001 is already monitored","session_id":"","agent":"1001","endpoints":["10.0.0.11"],"supervisor":"10.0.1.6:42228","source":"10.0.1.6:51001","client_subject":"CN=sup1,O=silentmon","client_fingerprint":"AA:BB:SUP1"}`,
		`{"time":"2026-03-01T09:30:02Z","action":"stop","result":"refused","reason":"no session s-9","session_id":"s-9","agent":"","endpoints":[],"supervisor":"","source":"10.0.1.5:51002","client_subject":"CN=sup1,O=silentmon","client_fingerprint":"AA:BB:SUP1"}`,
		`{"time":"2026-03-01T09:30:03Z","action":"stop","result":"accepted","reason":"","session_id":"s-1","agent":"1001","endpoints":["10.0.0.11","10.0.0.12"],"supervisor":"10.0.1.5:42228","source":"10.0.1.5:51003","client_subject":"CN=sup1,O=silentmon","client_fingerprint":"AA:BB:SUP1"}`,
	}
	got := readLines(t, path)
	if len(got) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i+1, got[i], want[i])
		}
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("audit file mode %04o, want 0600", st.Mode().Perm())
	}
	if err := l.Write(script[0]); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
		ok   bool
	}{
		{"start accepted", Record{Action: ActionStart, Result: ResultAccepted}, true},
		{"stop refused", Record{Action: ActionStop, Result: ResultRefused, Reason: "no session"}, true},
		{"unknown action", Record{Action: "pause", Result: ResultAccepted}, false},
		{"unknown result", Record{Action: ActionStart, Result: "maybe"}, false},
		{"empty", Record{}, false},
		{"start without result", Record{Action: ActionStart}, false},
		{"end stopped", Record{Action: ActionEnd, SessionID: "s", Reason: ReasonStopped}, true},
		{"end lifetime over", Record{Action: ActionEnd, SessionID: "s", Reason: ReasonLifetimeOver}, true},
		{"end supervisor gone", Record{Action: ActionEnd, SessionID: "s", Reason: ReasonSupervisorGone}, true},
		{"end server shutdown", Record{Action: ActionEnd, SessionID: "s", Reason: ReasonServerShutdown}, true},
		{"end other reason", Record{Action: ActionEnd, SessionID: "s", Reason: "tired"}, false},
		{"end with a result", Record{Action: ActionEnd, SessionID: "s", Reason: ReasonStopped, Result: ResultAccepted}, false},
		{"end without session", Record{Action: ActionEnd, Reason: ReasonStopped}, false},
		{"capture-begin", Record{Action: ActionCaptureBegin, SessionID: "s"}, true},
		{"capture-end", Record{Action: ActionCaptureEnd, SessionID: "s", Packets: 5}, true},
		{"capture-end without session", Record{Action: ActionCaptureEnd}, false},
		{"capture-begin with ok", Record{Action: ActionCaptureBegin, SessionID: "s", Result: "ok"}, false},
		{"supervisor-connected", Record{Action: ActionSupervisorConnected, Supervisor: "h:1"}, true},
		{"supervisor-disconnected", Record{Action: ActionSupervisorDisconnected, Supervisor: "h:1", Reason: "EOF"}, true},
		{"supervisor-connected without address", Record{Action: ActionSupervisorConnected}, false},
		{"record-begin", Record{Action: ActionRecordBegin, SessionID: "s", File: "s.pcap"}, true},
		{"record-failed", Record{Action: ActionRecordFailed, SessionID: "s", Reason: "disk full"}, true},
		{"record-failed without reason", Record{Action: ActionRecordFailed, SessionID: "s"}, false},
	}
	l, err := Open(filepath.Join(t.TempDir(), "a.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rec.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadRecord) {
				t.Fatalf("Validate = %v, want ErrBadRecord", err)
			}
			if err := l.Write(tc.rec); (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrBadRecord)) {
				t.Fatalf("Write = %v, want ok=%v or ErrBadRecord", err, tc.ok)
			}
		})
	}
}

// TestEventLines fixes the JSON of every action (docs/security.md shows
// the same lines).
func TestEventLines(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	sup := Record{Supervisor: "10.0.1.5:42228", SupervisorSubject: "CN=sup1,O=silentmon", SupervisorFingerprint: "CC:DD"}
	tests := []struct {
		rec  Record
		want string
	}{
		{
			Record{Action: ActionStart, Result: ResultAccepted, SessionID: "5f0c", Agent: "1001", Endpoints: []string{"10.0.0.11"}, Supervisor: sup.Supervisor, Source: "10.0.1.9:51000", ClientSubject: "CN=admin,O=silentmon", ClientFingerprint: "AA:BB", RequestID: "r-1", Until: at.Add(8 * time.Hour)},
			`{"time":"2026-03-01T09:30:00Z","action":"start","result":"accepted","reason":"","session_id":"5f0c","agent":"1001","endpoints":["10.0.0.11"],"supervisor":"10.0.1.5:42228","source":"10.0.1.9:51000","client_subject":"CN=admin,O=silentmon","client_fingerprint":"AA:BB","member":"sm1","request_id":"r-1","until":"2026-03-01T17:30:00Z"}`,
		},
		{
			Record{Action: ActionEnd, Reason: ReasonSupervisorGone, SessionID: "5f0c", Agent: "1001", Supervisor: sup.Supervisor},
			`{"time":"2026-03-01T09:30:00Z","action":"end","result":"","reason":"supervisor gone","session_id":"5f0c","agent":"1001","endpoints":[],"supervisor":"10.0.1.5:42228","source":"","client_subject":"","client_fingerprint":"","member":"sm1"}`,
		},
		{
			Record{Action: ActionCaptureBegin, SessionID: "5f0c", Agent: "1001", Supervisor: sup.Supervisor},
			`{"time":"2026-03-01T09:30:00Z","action":"capture-begin","result":"","reason":"","session_id":"5f0c","agent":"1001","endpoints":[],"supervisor":"10.0.1.5:42228","source":"","client_subject":"","client_fingerprint":"","member":"sm1"}`,
		},
		{
			Record{Action: ActionCaptureEnd, SessionID: "5f0c", Agent: "1001", Supervisor: sup.Supervisor, Packets: 15000, Dropped: 2},
			`{"time":"2026-03-01T09:30:00Z","action":"capture-end","result":"","reason":"","session_id":"5f0c","agent":"1001","endpoints":[],"supervisor":"10.0.1.5:42228","source":"","client_subject":"","client_fingerprint":"","member":"sm1","packets":15000,"dropped":2}`,
		},
		{
			Record{Action: ActionSupervisorConnected, Supervisor: sup.Supervisor, SupervisorSubject: sup.SupervisorSubject, SupervisorFingerprint: sup.SupervisorFingerprint},
			`{"time":"2026-03-01T09:30:00Z","action":"supervisor-connected","result":"","reason":"","session_id":"","agent":"","endpoints":[],"supervisor":"10.0.1.5:42228","source":"","client_subject":"","client_fingerprint":"","member":"sm1","supervisor_subject":"CN=sup1,O=silentmon","supervisor_fingerprint":"CC:DD"}`,
		},
		{
			Record{Action: ActionSupervisorDisconnected, Reason: "connection reset by peer", Supervisor: sup.Supervisor, SupervisorSubject: sup.SupervisorSubject, SupervisorFingerprint: sup.SupervisorFingerprint},
			`{"time":"2026-03-01T09:30:00Z","action":"supervisor-disconnected","result":"","reason":"connection reset by peer","session_id":"","agent":"","endpoints":[],"supervisor":"10.0.1.5:42228","source":"","client_subject":"","client_fingerprint":"","member":"sm1","supervisor_subject":"CN=sup1,O=silentmon","supervisor_fingerprint":"CC:DD"}`,
		},
		{
			Record{Action: ActionRecordBegin, SessionID: "5f0c", Agent: "1001", File: "/var/lib/silentmon/rec/5f0c.pcap"},
			`{"time":"2026-03-01T09:30:00Z","action":"record-begin","result":"","reason":"","session_id":"5f0c","agent":"1001","endpoints":[],"supervisor":"","source":"","client_subject":"","client_fingerprint":"","member":"sm1","file":"/var/lib/silentmon/rec/5f0c.pcap"}`,
		},
		{
			Record{Action: ActionRecordFailed, Reason: "no space left on device", SessionID: "5f0c", Agent: "1001", File: "/var/lib/silentmon/rec/5f0c.pcap"},
			`{"time":"2026-03-01T09:30:00Z","action":"record-failed","result":"","reason":"no space left on device","session_id":"5f0c","agent":"1001","endpoints":[],"supervisor":"","source":"","client_subject":"","client_fingerprint":"","member":"sm1","file":"/var/lib/silentmon/rec/5f0c.pcap"}`,
		},
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := OpenWith(path, Options{Now: func() time.Time { return at }, Member: "sm1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		if err := l.Write(tc.rec); err != nil {
			t.Fatalf("%s: %v", tc.rec.Action, err)
		}
	}
	l.Close()
	got := readLines(t, path)
	for i, tc := range tests {
		t.Run(tc.rec.Action, func(t *testing.T) {
			if got[i] != tc.want {
				t.Errorf("\n got %s\nwant %s", got[i], tc.want)
			}
			var back Record
			if err := json.Unmarshal([]byte(got[i]), &back); err != nil || back.Validate() != nil {
				t.Fatalf("line does not read back: %v %v", err, back.Validate())
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "missing-dir", "a.log"))
	if err == nil || !strings.Contains(err.Error(), "missing-dir") {
		t.Fatalf("Open in a missing directory: %v", err)
	}
}

func rec(i int) Record {
	return Record{Action: ActionStart, Result: ResultAccepted, SessionID: fmt.Sprintf("s-%d", i), Agent: "1001"}
}

// sessions returns the session ids of the lines in the files, in order.
func sessions(t *testing.T, paths ...string) []string {
	t.Helper()
	var out []string
	for _, p := range paths {
		for _, line := range readLines(t, p) {
			var r Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: bad line %q: %v", p, line, err)
			}
			out = append(out, r.SessionID)
		}
	}
	return out
}

func TestRotation(t *testing.T) {
	tests := []struct {
		name   string
		rotate func(t *testing.T, l *Log, path string) (between func(), after func())
		files  func(path string) []string
		want   []string
	}{
		{
			name: "rename and Reopen (SIGHUP)",
			rotate: func(t *testing.T, l *Log, path string) (func(), func()) {
				return func() {
						if err := os.Rename(path, path+".1"); err != nil {
							t.Fatal(err)
						}
					}, func() {
						if err := l.Reopen(); err != nil {
							t.Fatal(err)
						}
					}
			},
			files: func(p string) []string { return []string{p + ".1", p} },
			// s-2 is written after the rename but before Reopen: Write
			// notices the new path by itself; nothing is lost.
			want: []string{"s-0", "s-1", "s-2", "s-3", "s-4"},
		},
		{
			name: "rename without signal",
			rotate: func(t *testing.T, l *Log, path string) (func(), func()) {
				return func() {
					if err := os.Rename(path, path+".1"); err != nil {
						t.Fatal(err)
					}
				}, func() {}
			},
			files: func(p string) []string { return []string{p + ".1", p} },
			want:  []string{"s-0", "s-1", "s-2", "s-3", "s-4"},
		},
		{
			name: "copytruncate with a line between copy and truncate",
			rotate: func(t *testing.T, l *Log, path string) (func(), func()) {
				return func() {
						b, err := os.ReadFile(path)
						if err != nil {
							t.Fatal(err)
						}
						if err := os.WriteFile(path+".1", b, 0o600); err != nil {
							t.Fatal(err)
						}
					}, func() {
						if err := os.Truncate(path, 0); err != nil {
							t.Fatal(err)
						}
					}
			},
			files: func(p string) []string { return []string{p + ".1", p} },
			// s-2 was written after the copy and truncated away: Write
			// notices and writes the recent lines again (s-0..s-2 are
			// all within the rotation window).
			want: []string{"s-0", "s-1", "s-0", "s-1", "s-2", "s-3", "s-4"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			between, after := tc.rotate(t, l, path)
			for i := 0; i < 5; i++ {
				switch i {
				case 2:
					between()
				case 3:
					after()
				}
				if err := l.Write(rec(i)); err != nil {
					t.Fatal(err)
				}
			}
			got := sessions(t, tc.files(path)...)
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Fatalf("lines across files %v, want %v", got, tc.want)
			}
		})
	}
}

func TestConcurrentWritesDoNotInterleave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 25
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := l.Write(rec(w*each + i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	l.Close()
	f, _ := os.Open(path)
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("interleaved or broken line %q", sc.Text())
		}
		seen[r.SessionID] = true
	}
	if len(seen) != writers*each {
		t.Fatalf("%d distinct lines, want %d", len(seen), writers*each)
	}
}

func BenchmarkWrite(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	r := rec(1)
	r.Endpoints = []string{"10.0.0.11", "10.0.0.12"}
	r.ClientSubject = "CN=silentmon client host,O=silentmon"
	r.ClientFingerprint = strings.Repeat("AB:", 31) + "AB"
	line, _ := json.Marshal(&r)
	b.SetBytes(int64(len(line) + 1))
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Write(r); err != nil {
			b.Fatal(err)
		}
	}
}
