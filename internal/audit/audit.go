// Package audit writes and reads silentmon's audit trail: one JSON line
// per monitor start or stop request (accepted or refused) and per session
// event on the member where it happened (a session's end, capture begun
// and ended, supervisor connected and disconnected, recording begun and
// failed), appended to a file and flushed to disk before Write returns, so
// that the reply to a client is sent only once the line is durable.
//
// A line is either whole or absent: when a write or its fsync fails (a
// full disk), Write cuts the file back to its size before the write and
// returns the error, and the caller refuses the request. If even the cut
// fails, the next successful Write first tries the cut again and else
// starts with a newline, so the torn part stays a line of its own, which
// readers skip and count (Read, ReadFile).
//
// Rotation by an external tool loses no line:
//   - rename and reopen (logrotate "create" with a postrotate SIGHUP, or
//     without one): Reopen switches to a new file at the same path; Write
//     also notices by itself that the path now names another file and
//     reopens. A line is written whole to either the old or the new file.
//   - copy and truncate (logrotate "copytruncate"): the file is opened with
//     O_APPEND, so writes after the truncation start at offset 0 without a
//     hole. Lines written between the copy and the truncation would be lost
//     by the tool itself; Write detects the truncation and writes again
//     the lines of the last RotationWindow, so such a line appears in the
//     new file (possibly also in the copy: duplicates are identical lines,
//     never losses).
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// File is the part of *os.File a Log uses. Options.OpenFile may return
// another implementation, to inject faults in tests.
type File interface {
	io.Writer
	Sync() error
	Stat() (fs.FileInfo, error)
	Truncate(size int64) error
	Close() error
}

// OpenFileFunc opens a file like os.OpenFile.
type OpenFileFunc func(name string, flag int, perm fs.FileMode) (File, error)

func osOpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Options tune a Log; zero fields take their defaults.
type Options struct {
	// Now tells the time for records without one; default time.Now.
	Now func() time.Time
	// RotationWindow is how far back Write re-writes lines after it
	// notices a copy-and-truncate rotation; default 10 s. It must exceed
	// the time the rotating tool takes to copy the file.
	RotationWindow time.Duration
	// Mode of a newly created file; default 0600.
	Mode fs.FileMode
	// Member is written in the Member field of records that have none
	// (the capture server's name in its cluster); default "".
	Member string
	// OpenFile opens the audit file; default os.OpenFile.
	OpenFile OpenFileFunc
}

type recent struct {
	at   time.Time
	line []byte
}

// Log is an open audit file. It is safe for concurrent use: lines from
// concurrent Writes never interleave.
type Log struct {
	path string
	opts Options

	mu     sync.Mutex
	f      File
	ino    uint64
	dev    uint64
	end    int64    // size of the file up to the last whole line we know of
	torn   bool     // the file may hold part of a line after end
	recent []recent // lines of the last RotationWindow, oldest first
	closed bool
	buf    []byte
}

// maxRecent bounds the lines kept for copy-and-truncate recovery.
const maxRecent = 4096

// Open opens (creating if needed, mode 0600) the audit file at path for
// appending.
func Open(path string) (*Log, error) { return OpenWith(path, Options{}) }

// OpenWith is Open with options.
func OpenWith(path string, opts Options) (*Log, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RotationWindow <= 0 {
		opts.RotationWindow = 10 * time.Second
	}
	if opts.Mode == 0 {
		opts.Mode = 0o600
	}
	if opts.OpenFile == nil {
		opts.OpenFile = osOpenFile
	}
	l := &Log{path: path, opts: opts}
	if err := l.openLocked(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) openLocked() error {
	f, err := l.opts.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, l.opts.Mode)
	if err != nil {
		return fmt.Errorf("cannot open the audit file %s: %w", l.path, pathErr(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("cannot open the audit file %s: %w", l.path, pathErr(err))
	}
	if old := l.f; old != nil {
		old.Close()
	}
	l.f = f
	l.ino, l.dev = inode(st)
	l.end = st.Size()
	l.torn = false
	return nil
}

func inode(st fs.FileInfo) (ino, dev uint64) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino, uint64(s.Dev)
	}
	return 0, 0
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Path returns the file's path.
func (l *Log) Path() string { return l.path }

// Write appends rec as one JSON line and fsyncs the file before it
// returns. A record that fails Validate is refused with ErrBadRecord.
// Any other error means the line is not in the file (it was cut back to
// its last whole line, see the package comment): the caller should
// refuse the request it was about to accept. Errors from the file wrap
// the system's error (errors.Is(err, syscall.ENOSPC) on a full disk).
func (l *Log) Write(rec Record) error {
	if err := rec.Validate(); err != nil {
		return err
	}
	now := l.opts.Now()
	if rec.Time.IsZero() {
		rec.Time = now
	}
	rec.Time = rec.Time.UTC()
	if !rec.Until.IsZero() {
		rec.Until = rec.Until.UTC()
	}
	if rec.Member == "" {
		rec.Member = l.opts.Member
	}
	if rec.Endpoints == nil {
		rec.Endpoints = []string{}
	}
	line, err := json.Marshal(&rec)
	if err != nil {
		return fmt.Errorf("cannot encode an audit record: %v", err)
	}
	line = append(line, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("audit file %s: %w", l.path, ErrClosed)
	}
	if err := l.followRotationLocked(); err != nil {
		return err
	}
	size, err := l.appendLocked(line)
	if err != nil {
		return err
	}
	l.remember(now, line)
	// A truncation during our write would drop this line as well.
	if size < l.end {
		l.end = size
		return l.replayLocked(now)
	}
	return nil
}

// reopenIfMovedLocked opens the path again if it now names another file
// (or none); the old file keeps the recent lines, so they are forgotten.
func (l *Log) reopenIfMovedLocked() (reopened bool, err error) {
	if st, err := os.Stat(l.path); err == nil && sameFile(st, l.ino, l.dev) {
		return false, nil
	}
	if err := l.openLocked(); err != nil {
		return false, err
	}
	l.recent = l.recent[:0]
	return true, nil
}

// followRotationLocked reopens the path if it now names another file (or
// none), and re-writes recent lines if the file was truncated.
func (l *Log) followRotationLocked() error {
	if reopened, err := l.reopenIfMovedLocked(); reopened || err != nil {
		return err
	}
	if l.torn && l.f.Truncate(l.end) == nil {
		l.torn = false
	}
	st, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("cannot check the audit file %s: %w", l.path, pathErr(err))
	}
	switch size := st.Size(); {
	case size < l.end:
		// Truncated by a rotation tool (and any torn part with it).
		l.end, l.torn = size, false
		return l.replayLocked(l.opts.Now())
	case size > l.end && !l.torn:
		l.end = size // another writer appended whole lines
	}
	return nil
}

func sameFile(st fs.FileInfo, ino, dev uint64) bool {
	i, d := inode(st)
	return i == ino && d == dev
}

// replayLocked writes again the lines of the last RotationWindow.
func (l *Log) replayLocked(now time.Time) error {
	l.buf = l.buf[:0]
	for _, r := range l.recent {
		if now.Sub(r.at) <= l.opts.RotationWindow {
			l.buf = append(l.buf, r.line...)
		}
	}
	if len(l.buf) == 0 {
		return nil
	}
	_, err := l.appendLocked(l.buf)
	return err
}

// appendLocked writes b (whole lines) and flushes it to disk. It returns
// the file's size afterwards (l.end when it cannot tell): smaller than
// l.end means the file was truncated meanwhile, which the caller handles.
// On an error, the file is cut back to l.end, its size before the write;
// if that fails too, l.torn makes the next append start on a new line.
func (l *Log) appendLocked(b []byte) (size int64, err error) {
	if l.torn {
		// The cut after an earlier failure failed, and so did the retry
		// in followRotationLocked: end the torn part here.
		b = append([]byte{'\n'}, b...)
	}
	if _, err := l.f.Write(b); err != nil {
		l.cutBackLocked()
		return 0, fmt.Errorf("cannot write the audit file %s: %w", l.path, pathErr(err))
	}
	if err := l.f.Sync(); err != nil {
		l.cutBackLocked()
		return 0, fmt.Errorf("cannot flush the audit file %s to disk: %w", l.path, pathErr(err))
	}
	l.end += int64(len(b))
	l.torn = false
	st, err := l.f.Stat()
	if err != nil {
		return l.end, nil
	}
	if st.Size() > l.end {
		l.end = st.Size() // another writer appended too, or a torn part was ended
	}
	return st.Size(), nil
}

// cutBackLocked removes whatever a failed append left after l.end.
func (l *Log) cutBackLocked() {
	if err := l.f.Truncate(l.end); err != nil {
		l.torn = true
		return
	}
	l.f.Sync() // best effort: on a full disk the cut itself frees space
}

func (l *Log) remember(now time.Time, line []byte) {
	cut := 0
	for cut < len(l.recent) && now.Sub(l.recent[cut].at) > l.opts.RotationWindow {
		cut++
	}
	if len(l.recent) >= maxRecent && cut == 0 {
		cut = 1
	}
	if cut > 0 {
		n := copy(l.recent, l.recent[cut:])
		for i := n; i < len(l.recent); i++ {
			l.recent[i] = recent{}
		}
		l.recent = l.recent[:n]
	}
	l.recent = append(l.recent, recent{at: now, line: line})
}

// Reopen closes the file and opens path again, for rotation on SIGHUP.
// Lines written before Reopen are in the old file, lines after in the new.
func (l *Log) Reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("audit file %s: %w", l.path, ErrClosed)
	}
	_, err := l.reopenIfMovedLocked() // not rotated: keep the descriptor
	return err
}

// Close closes the file. Later Writes return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("cannot close the audit file %s: %v", l.path, pathErr(err))
	}
	return nil
}
