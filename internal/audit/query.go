package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Query selects records of the trail. Zero fields select everything. It
// is a plain value, safe to share.
type Query struct {
	// Agent selects the records of this agent.
	Agent string
	// Session selects the records of this session id.
	Session string
	// Since and Until select the records with Since <= Time < Until; a
	// zero bound is open.
	Since, Until time.Time
}

// Match reports whether r is one of the records q selects by itself
// (Select also adds related supervisor events).
func (q Query) Match(r *Record) bool {
	return q.inWindow(r) &&
		(q.Agent == "" || r.Agent == q.Agent) &&
		(q.Session == "" || r.SessionID == q.Session)
}

func (q Query) inWindow(r *Record) bool {
	return (q.Since.IsZero() || !r.Time.Before(q.Since)) &&
		(q.Until.IsZero() || r.Time.Before(q.Until))
}

func isSupervisorEvent(r *Record) bool {
	return r.Action == ActionSupervisorConnected || r.Action == ActionSupervisorDisconnected
}

// Select returns the records of recs that q matches, in their order, and
// with them, when q names an agent or a session, the supervisor-connected
// and supervisor-disconnected records in q's time window of the
// supervisors those records name, refused requests excepted (a
// supervisor connection serves sessions of any agent, so its lines carry
// none): the answer then says which certificate listened. recs is not
// modified.
func Select(recs []Record, q Query) []Record {
	sups := map[string]bool{}
	if q.Agent != "" || q.Session != "" {
		for i := range recs {
			if r := &recs[i]; r.Supervisor != "" && r.Result != ResultRefused && !isSupervisorEvent(r) && q.Match(r) {
				sups[r.Supervisor] = true
			}
		}
	}
	var out []Record
	for i := range recs {
		r := &recs[i]
		if q.Match(r) || (isSupervisorEvent(r) && sups[r.Supervisor] && q.inWindow(r)) {
			out = append(out, *r)
		}
	}
	return out
}

// ReadStats counts what a read saw. It is a plain value.
type ReadStats struct {
	// Files read.
	Files int
	// Lines read, blank lines excepted.
	Lines int
	// Malformed lines, skipped: not a JSON object, longer than
	// MaxLineSize, or a record that fails Validate (a torn line left by
	// a failed write, say, or a line of an unknown action).
	Malformed int
}

func (s *ReadStats) add(o ReadStats) {
	s.Files += o.Files
	s.Lines += o.Lines
	s.Malformed += o.Malformed
}

// MaxLineSize bounds a trail line; longer lines are malformed.
const MaxLineSize = 1 << 20

// Read parses a trail from r and calls fn with each whole record that q
// matches, in the order of the lines; it stops at the end of r, at a read
// error or at fn's first error, which it returns. Blank lines are
// ignored; malformed lines are skipped and counted. A last line without
// its newline is read like the others (a torn one is malformed).
func Read(r io.Reader, q Query, fn func(Record) error) (ReadStats, error) {
	var st ReadStats
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte // a line longer than br's buffer, so far
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !tooLong {
				long = append(long, chunk...)
				if len(long) > MaxLineSize {
					long, tooLong = long[:0], true
				}
			}
			continue
		}
		line := chunk
		if len(long) > 0 || tooLong {
			long = append(long, chunk...)
			line = long
		}
		if len(line) > 0 || tooLong {
			if tooLong || len(line) > MaxLineSize+1 {
				st.Lines++
				st.Malformed++
			} else if rec, ok, bad := parseLine(line); bad {
				st.Lines++
				st.Malformed++
			} else if ok {
				st.Lines++
				if q.Match(&rec) {
					if ferr := fn(rec); ferr != nil {
						return st, ferr
					}
				}
			}
		}
		long, tooLong = long[:0], false
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return st, err
		}
	}
}

// parseLine decodes one line: ok when it is a record, bad when it is
// malformed, neither when it is blank.
func parseLine(line []byte) (rec Record, ok, bad bool) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return rec, false, false
	}
	if line[0] != '{' {
		return rec, false, true
	}
	if err := json.Unmarshal(line, &rec); err != nil {
		return Record{}, false, true
	}
	if rec.Validate() != nil || rec.Time.IsZero() {
		return Record{}, false, true
	}
	if rec.Endpoints == nil {
		rec.Endpoints = []string{}
	}
	return rec, true, false
}

// ReadFile reads the trail at path and returns the records q selects (see
// Select), merged (see Merge): sorted by time, exact duplicates (lines
// written again after a copy-and-truncate rotation) removed.
//
// If path names no file and holds a glob metacharacter (*, ? or [), it is
// a pattern (filepath.Match), so that "audit.log*" reads the rotated files
// too, oldest (by modification time) first; a file whose name ends in
// .gz is read through gzip (logrotate's compress). A pattern that matches no file is an error wrapping
// fs.ErrNotExist, like a missing file.
func ReadFile(path string, q Query) ([]Record, ReadStats, error) {
	var st ReadStats
	paths, err := expand(path)
	if err != nil {
		return nil, st, err
	}
	// Select needs the supervisor events of the window, whatever their
	// agent and session.
	window := Query{Since: q.Since, Until: q.Until}
	var all []Record
	for _, p := range paths {
		fst, err := readOne(p, window, func(r Record) error {
			all = append(all, r)
			return nil
		})
		st.add(fst)
		if err != nil {
			return nil, st, err
		}
	}
	return Merge(Select(all, q)), st, nil
}

func expand(path string) ([]string, error) {
	if _, err := os.Stat(path); err == nil || !strings.ContainsAny(path, "*?[") {
		return []string{path}, nil
	}
	paths, err := filepath.Glob(path)
	if err != nil {
		return nil, fmt.Errorf("audit file pattern %q: %w", path, err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("no audit file matches %q: %w", path, os.ErrNotExist)
	}
	// Oldest first (rotated files before the current one), so that
	// records of equal times keep the order they were written in.
	mtime := make(map[string]time.Time, len(paths))
	for _, p := range paths {
		if st, err := os.Stat(p); err == nil {
			mtime[p] = st.ModTime()
		}
	}
	slices.SortStableFunc(paths, func(a, b string) int { return mtime[a].Compare(mtime[b]) })
	return paths, nil
}

func readOne(path string, q Query, fn func(Record) error) (ReadStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return ReadStats{}, fmt.Errorf("cannot read the audit file %s: %w", path, pathErr(err))
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		if err != nil {
			return ReadStats{}, fmt.Errorf("cannot read the audit file %s: %w", path, err)
		}
		defer zr.Close()
		r = zr
	}
	st, err := Read(r, q, fn)
	st.Files = 1
	if err != nil {
		return st, fmt.Errorf("cannot read the audit file %s: %w", path, pathErr(err))
	}
	return st, nil
}

// Merge returns the records of all lists in one list sorted by time,
// stable (records of equal times keep the order of the lists and within
// them), with exact duplicates removed: the same line from two files, or
// written again after a rotation. Times are compared as instants,
// whatever their location. The lists are not modified.
func Merge(lists ...[]Record) []Record {
	var all []Record
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortStableFunc(all, func(a, b Record) int { return a.Time.Compare(b.Time) })
	out := all[:0]
	seen := map[string]bool{} // the lines of the current run of equal times
	for i, r := range all {
		if i > 0 && !r.Time.Equal(all[i-1].Time) {
			clear(seen)
		}
		k := canonical(r)
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, r)
	}
	return slices.Clip(out)
}

// canonical is r's JSON line with times in UTC and Endpoints never null.
func canonical(r Record) string {
	r.Time = r.Time.UTC()
	if !r.Until.IsZero() {
		r.Until = r.Until.UTC()
	}
	if r.Endpoints == nil {
		r.Endpoints = []string{}
	}
	b, _ := json.Marshal(&r) // a Record always encodes
	return string(b)
}
