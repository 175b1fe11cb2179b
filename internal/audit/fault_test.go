package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// faultyFile is an *os.File whose writes fail once a byte budget is
// spent (writing the part that fits, as a full disk does), and whose
// Sync and Truncate can be made to fail.
type faultyFile struct {
	*os.File
	fs *faults
}

type faults struct {
	budget        int   // bytes that can still be written; < 0: unlimited
	syncErr       error // returned by the next Sync, then cleared
	truncateFails int   // so many next Truncates fail
	truncates     int   // Truncate calls
}

func (f *faultyFile) Write(p []byte) (int, error) {
	b := f.fs.budget
	if b < 0 || b >= len(p) {
		if b >= 0 {
			f.fs.budget -= len(p)
		}
		return f.File.Write(p)
	}
	n, err := f.File.Write(p[:b])
	f.fs.budget = 0
	if err == nil {
		err = &fs.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return n, err
}

func (f *faultyFile) Sync() error {
	if err := f.fs.syncErr; err != nil {
		f.fs.syncErr = nil
		return &fs.PathError{Op: "sync", Path: f.Name(), Err: err}
	}
	return f.File.Sync()
}

func (f *faultyFile) Truncate(size int64) error {
	f.fs.truncates++
	if f.fs.truncateFails > 0 {
		f.fs.truncateFails--
		return &fs.PathError{Op: "truncate", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Truncate(size)
}

func (fs *faults) open(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &faultyFile{File: f, fs: fs}, nil
}

// checkLines parses the file: every line must be a whole record, except
// that torn lines (at most wantTorn) are counted; it returns the session
// ids of the whole lines.
func checkLines(t *testing.T, path string, wantTorn int) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("file does not end with a newline: %q", b)
	}
	var ids []string
	torn := 0
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(line) == 0 {
			continue // readers skip blank lines
		}
		var r Record
		if err := json.Unmarshal(line, &r); err != nil || r.Validate() != nil {
			torn++
			continue
		}
		ids = append(ids, r.SessionID)
	}
	if torn != wantTorn {
		t.Errorf("%d torn lines, want %d; file:\n%s", torn, wantTorn, b)
	}
	return ids
}

func TestWriteFailureLeavesWholeLines(t *testing.T) {
	tests := []struct {
		name string
		// arm sets the faults before the second of three writes.
		arm func(f *faults)
		// disarm runs before the third write (the disk recovered).
		disarm   func(f *faults)
		wantErr  error
		wantTorn int
	}{
		{
			name:    "short write, cut back",
			arm:     func(f *faults) { f.budget = 40 },
			wantErr: syscall.ENOSPC,
		},
		{
			name:    "nothing written",
			arm:     func(f *faults) { f.budget = 0 },
			wantErr: syscall.ENOSPC,
		},
		{
			name:    "written but not flushed",
			arm:     func(f *faults) { f.syncErr = syscall.EIO },
			wantErr: syscall.EIO,
		},
		{
			name:    "short write, cut fails once, retried before the next write",
			arm:     func(f *faults) { f.budget, f.truncateFails = 40, 1 },
			wantErr: syscall.ENOSPC,
		},
		{
			name:    "short write, cut keeps failing: the next line starts on its own",
			arm:     func(f *faults) { f.budget, f.truncateFails = 40, 100 },
			wantErr: syscall.ENOSPC,
			// The torn part stays, as a line of its own.
			wantTorn: 1,
		},
		{
			name:    "flush fails and the cut fails: next line starts on its own",
			arm:     func(f *faults) { f.syncErr, f.truncateFails = syscall.EIO, 100 },
			wantErr: syscall.EIO,
			// The unflushed line stays, whole, although the request was
			// refused: a file system that fails both fsync and truncate
			// leaves no way to remove it. Later lines are not merged.
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			f := &faults{budget: -1}
			l, err := OpenWith(path, Options{OpenFile: f.open})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if err := l.Write(rec(0)); err != nil {
				t.Fatal(err)
			}
			tc.arm(f)
			err = l.Write(rec(1))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Write on a failing file: %v, want %v", err, tc.wantErr)
			}
			f.budget, f.syncErr = -1, nil
			if err := l.Write(rec(2)); err != nil {
				t.Fatalf("Write after recovery: %v", err)
			}
			if err := l.Write(rec(3)); err != nil {
				t.Fatalf("second Write after recovery: %v", err)
			}
			got := strings.Join(checkLines(t, path, tc.wantTorn), " ")
			want := "s-0 s-2 s-3"
			if tc.name == "flush fails and the cut fails: next line starts on its own" {
				want = "s-0 s-1 s-2 s-3"
			}
			if got != want {
				t.Errorf("whole lines %s, want %s", got, want)
			}
		})
	}
}

// TestFullDisk fills a real file system (a 64 KiB tmpfs; needs root) and
// checks that the file holds only whole lines, during and after.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, 16<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "audit.log")
	l, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var written []string
	failures := 0
	for i := 0; failures < 3 && i < 10000; i++ {
		r := rec(i)
		r.ClientSubject = strings.Repeat("x", i%97) // lines of varied length
		if err := l.Write(r); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Write on a full disk: %v, want ENOSPC", err)
			}
			failures++
			continue
		}
		written = append(written, r.SessionID)
	}
	if failures == 0 {
		t.Fatal("the disk never filled")
	}
	if got := checkLines(t, path, 0); strings.Join(got, " ") != strings.Join(written, " ") {
		t.Fatalf("full disk: file holds %d lines, want the %d written", len(got), len(written))
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	r := rec(99999)
	if err := l.Write(r); err != nil {
		t.Fatalf("Write after space was freed: %v", err)
	}
	written = append(written, r.SessionID)
	if got := checkLines(t, path, 0); strings.Join(got, " ") != strings.Join(written, " ") {
		t.Fatalf("after recovery: file holds %d lines, want the %d written", len(got), len(written))
	}
	t.Logf("%d lines written, %d refused on the full disk", len(written), failures)
}
