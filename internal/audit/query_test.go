package audit

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func line(t testing.TB, r Record) string {
	t.Helper()
	if r.Endpoints == nil {
		r.Endpoints = []string{}
	}
	b, err := json.Marshal(&r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// trail is a day of one agent monitored by sup1, another by sup2.
func trail(t testing.TB) []Record {
	sup1, sup2 := "10.0.1.5:42228", "10.0.1.6:42228"
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	return []Record{
		{Time: at(0), Action: ActionSupervisorConnected, Supervisor: sup1, SupervisorSubject: "CN=sup1"},
		{Time: at(1), Action: ActionStart, Result: ResultAccepted, SessionID: "a", Agent: "1001", Supervisor: sup1},
		{Time: at(1), Action: ActionCaptureBegin, SessionID: "a", Agent: "1001", Supervisor: sup1},
		{Time: at(2), Action: ActionSupervisorConnected, Supervisor: sup2, SupervisorSubject: "CN=sup2"},
		{Time: at(2), Action: ActionStart, Result: ResultAccepted, SessionID: "b", Agent: "1002", Supervisor: sup2},
		{Time: at(3), Action: ActionStart, Result: ResultRefused, Reason: "busy", Agent: "1001", Supervisor: sup2},
		{Time: at(10), Action: ActionCaptureEnd, SessionID: "a", Agent: "1001", Supervisor: sup1, Packets: 30000},
		{Time: at(10), Action: ActionStop, Result: ResultAccepted, SessionID: "a", Agent: "1001"},
		{Time: at(10), Action: ActionEnd, Reason: ReasonStopped, SessionID: "a", Agent: "1001", Supervisor: sup1},
		{Time: at(11), Action: ActionSupervisorDisconnected, Supervisor: sup1},
		{Time: at(20), Action: ActionEnd, Reason: ReasonServerShutdown, SessionID: "b", Agent: "1002", Supervisor: sup2},
	}
}

func writeTrail(t testing.TB, path string, recs []Record, extra ...string) {
	t.Helper()
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(line(t, r) + "\n")
	}
	for _, e := range extra {
		b.WriteString(e)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

// summary is "action/session" of each record.
func summary(recs []Record) string {
	var s []string
	for _, r := range recs {
		s = append(s, r.Action+"/"+r.SessionID)
	}
	return strings.Join(s, " ")
}

func TestReadFileQuery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeTrail(t, path, trail(t))
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tests := []struct {
		name string
		q    Query
		want string
	}{
		{"everything", Query{}, "supervisor-connected/ start/a capture-begin/a supervisor-connected/ start/b start/ capture-end/a stop/a end/a supervisor-disconnected/ end/b"},
		{"agent, with its supervisors' connections", Query{Agent: "1001"}, "supervisor-connected/ start/a capture-begin/a start/ capture-end/a stop/a end/a supervisor-disconnected/"},
		{"session", Query{Session: "a"}, "supervisor-connected/ start/a capture-begin/a capture-end/a stop/a end/a supervisor-disconnected/"},
		{"session b", Query{Session: "b"}, "supervisor-connected/ start/b end/b"},
		{"since, inclusive", Query{Since: at(10)}, "capture-end/a stop/a end/a supervisor-disconnected/ end/b"},
		{"until, exclusive", Query{Until: at(2)}, "supervisor-connected/ start/a capture-begin/a"},
		{"agent in a window", Query{Agent: "1001", Since: at(3), Until: at(11)}, "start/ capture-end/a stop/a end/a"},
		{"unknown agent", Query{Agent: "9999"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, st, err := ReadFile(path, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if s := summary(got); s != tc.want {
				t.Errorf("got  %s\nwant %s", s, tc.want)
			}
			if st.Files != 1 || st.Lines != len(trail(t)) || st.Malformed != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestReadMalformed(t *testing.T) {
	good := line(t, Record{Time: t0, Action: ActionStart, Result: ResultAccepted, SessionID: "s"})
	tests := []struct {
		name                string
		in                  string
		wantRecs, wantLines int
		wantMalformed       int
	}{
		{"empty", "", 0, 0, 0},
		{"one line", good + "\n", 1, 1, 0},
		{"no final newline", good, 1, 1, 0},
		{"CRLF", good + "\r\n", 1, 1, 0},
		{"blank lines ignored", "\n\n" + good + "\n\n", 1, 1, 0},
		{"torn line then a whole one", good[:40] + "\n" + good + "\n", 1, 2, 1},
		{"torn last line", good + "\n" + good[:50], 1, 2, 1},
		{"merged lines", good[:40] + good + "\n", 0, 1, 1},
		{"not an object", "[1,2]\nhello\n" + good + "\n", 1, 3, 2},
		{"unknown action", strings.Replace(good, `"start"`, `"pause"`, 1) + "\n", 0, 1, 1},
		{"no time", strings.Replace(good, `"time":"2026-03-01T09:00:00Z",`, "", 1) + "\n", 0, 1, 1},
		{"overlong line", "{" + strings.Repeat(" ", MaxLineSize+10) + "}\n" + good + "\n", 1, 2, 1},
		{"overlong last line", good + "\n{" + strings.Repeat("x", MaxLineSize+10), 1, 2, 1},
		{"unknown field kept readable", strings.Replace(good, `{`, `{"future":1,`, 1) + "\n", 1, 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := 0
			st, err := Read(strings.NewReader(tc.in), Query{}, func(Record) error { n++; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if n != tc.wantRecs || st.Lines != tc.wantLines || st.Malformed != tc.wantMalformed {
				t.Errorf("%d records, %+v; want %d records, %d lines, %d malformed", n, st, tc.wantRecs, tc.wantLines, tc.wantMalformed)
			}
		})
	}
}

func TestReadStopsOnCallbackError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	writeTrail(t, path, trail(t))
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stop := errors.New("enough")
	n := 0
	_, err = Read(f, Query{}, func(Record) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("Read = %v after %d records, want the callback's error after 3", err, n)
	}
}

func TestReadFileRotated(t *testing.T) {
	dir := t.TempDir()
	recs := trail(t)
	path := filepath.Join(dir, "audit.log")
	// audit.log.2.gz: the oldest, compressed; audit.log.1: the next,
	// ending with a line also in audit.log (copytruncate), plus a torn
	// line; audit.log: the newest.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	for _, r := range recs[:4] {
		zw.Write([]byte(line(t, r) + "\n"))
	}
	zw.Close()
	if err := os.WriteFile(path+".2.gz", gz.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTrail(t, path+".1", recs[4:8], `{"time":"2026-03-01T09:1`+"\n")
	writeTrail(t, path, recs[7:])
	for i, p := range []string{path + ".2.gz", path + ".1", path} {
		mt := t0.Add(time.Duration(i) * 24 * time.Hour)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	got, st, err := ReadFile(path+"*", Query{})
	if err != nil {
		t.Fatal(err)
	}
	if s, want := summary(got), summary(Merge(recs)); s != want {
		t.Errorf("got  %s\nwant %s", s, want)
	}
	if st.Files != 3 || st.Malformed != 1 || st.Lines != len(recs)+2 {
		t.Errorf("stats %+v, want 3 files, %d lines, 1 malformed", st, len(recs)+2)
	}
	// A plain path reads one file.
	got, _, err = ReadFile(path, Query{})
	if err != nil || len(got) != len(recs[7:]) {
		t.Errorf("ReadFile(plain path) = %d records, %v", len(got), err)
	}
	for _, p := range []string{filepath.Join(dir, "missing.log"), filepath.Join(dir, "missing*")} {
		if _, _, err := ReadFile(p, Query{}); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%s) = %v, want fs.ErrNotExist", p, err)
		}
	}
}

func TestMerge(t *testing.T) {
	recs := trail(t)
	paris := time.FixedZone("CET", 3600)
	moved := recs[1]
	moved.Time = moved.Time.In(paris) // the same instant, another zone
	tests := []struct {
		name  string
		lists [][]Record
		want  string
	}{
		{"none", nil, ""},
		{"one list, unsorted", [][]Record{{recs[3], recs[0], recs[1]}}, "supervisor-connected/ start/a supervisor-connected/"},
		{"two members, interleaved", [][]Record{{recs[0], recs[3]}, {recs[1], recs[10]}}, "supervisor-connected/ start/a supervisor-connected/ end/b"},
		{"exact duplicates removed", [][]Record{recs[:2], recs[:2], {moved}}, "supervisor-connected/ start/a"},
		{"same time, different records kept in list order", [][]Record{{recs[7]}, {recs[6]}, {recs[8]}}, "stop/a capture-end/a end/a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := summary(Merge(tc.lists...)); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
	a := []Record{recs[3], recs[0]}
	Merge(a)
	if a[0].Time != recs[3].Time {
		t.Error("Merge modified its input")
	}
}

// FuzzRead: any input is read without panic; every record returned is
// valid; every line is either returned or counted malformed; the records
// written again read back the same.
func FuzzRead(f *testing.F) {
	for _, r := range trail(f) {
		f.Add([]byte(line(f, r) + "\n"))
	}
	f.Add([]byte("{\"time\":\"2026-03-01T09:00:00Z\",\"action\":\"end\",\"result\":\"\",\"reason\":\"stopped\",\"session_id\":\"a\"}\n{\"time\":"))
	f.Add([]byte("\n\n[]\nnull\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var recs []Record
		st, err := Read(bytes.NewReader(data), Query{}, func(r Record) error {
			if err := r.Validate(); err != nil {
				t.Fatalf("Read returned an invalid record: %v", err)
			}
			recs = append(recs, r)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.Lines != len(recs)+st.Malformed {
			t.Fatalf("%d lines, %d records, %d malformed", st.Lines, len(recs), st.Malformed)
		}
		var b strings.Builder
		for _, r := range recs {
			b.WriteString(line(t, r) + "\n")
		}
		var again []Record
		st2, err := Read(strings.NewReader(b.String()), Query{}, func(r Record) error { again = append(again, r); return nil })
		if err != nil || st2.Malformed != 0 || len(again) != len(recs) {
			t.Fatalf("records written again read back as %d (%+v, %v), want %d", len(again), st2, err, len(recs))
		}
		for i := range recs {
			if canonical(recs[i]) != canonical(again[i]) {
				t.Fatalf("record %d changed:\n%s\n%s", i, canonical(recs[i]), canonical(again[i]))
			}
		}
	})
}
