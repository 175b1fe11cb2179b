package directory

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// manualClock is a Clock whose single ticker ticks when the test says.
type manualClock struct {
	c       chan time.Time
	polled  chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func newManualClock() *manualClock {
	return &manualClock{c: make(chan time.Time), polled: make(chan struct{}), stopped: make(chan struct{})}
}

func (m *manualClock) NewTicker(time.Duration) Ticker { return m }
func (m *manualClock) C() <-chan time.Time            { return m.c }
func (m *manualClock) Stop()                          { m.once.Do(func() { close(m.stopped) }) }

// tick makes the watcher poll once and returns when the poll is over.
func (m *manualClock) tick(t *testing.T) {
	t.Helper()
	select {
	case m.c <- time.Time{}:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher does not poll")
	}
	select {
	case <-m.polled:
	case <-time.After(10 * time.Second):
		t.Fatal("the poll does not end")
	}
}

// watchFixture is a watcher on a file in a temporary directory, with a
// manual clock, a log in memory and the directories onLoad received.
type watchFixture struct {
	path  string
	clock *manualClock
	w     *Watcher
	log   *bytes.Buffer

	mu     sync.Mutex
	loaded []*Directory
}

func newWatchFixture(t *testing.T, content string) (*watchFixture, error) {
	t.Helper()
	f := &watchFixture{path: filepath.Join(t.TempDir(), "agents.yaml"), clock: newManualClock(), log: new(bytes.Buffer)}
	f.write(t, content)
	cfg := WatcherConfig{Clock: f.clock}
	cfg.afterPoll = func() { f.clock.polled <- struct{}{} }
	var lmu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&lmu, f.log}, nil))
	w, err := NewWatcher(f.path, log, func(d *Directory) {
		f.mu.Lock()
		f.loaded = append(f.loaded, d)
		f.mu.Unlock()
	}, cfg)
	if err != nil {
		return f, err
	}
	f.w = w
	t.Cleanup(func() { w.Close() })
	return f, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// write replaces the file's content and moves its modification time one
// second on, so that a change of the same size is seen too.
func (f *watchFixture) write(t *testing.T, content string) {
	t.Helper()
	var mtime time.Time
	if st, err := os.Stat(f.path); err == nil {
		mtime = st.ModTime().Add(time.Second)
	} else {
		mtime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if err := os.WriteFile(f.path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f.path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func (f *watchFixture) loads() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.loaded)
}

// agentIDs lists the ids of the current directory.
func (f *watchFixture) agentIDs() string {
	var ids []string
	for _, a := range f.w.Current().Agents() {
		ids = append(ids, a.ID)
	}
	return strings.Join(ids, ",")
}

const (
	dirA    = "agents:\n  - id: a\n"
	dirAB   = "agents:\n  - id: a\n  - id: b\n"
	dirC    = "agents:\n  - id: c\n" // the size of dirA
	dirBad  = "agents:\n  - id: a\n  - id: a\n"
	dirBad2 = "agents:\n  - id: \"a b\"\n"
)

func TestWatcherFirstLoad(t *testing.T) {
	f, err := newWatchFixture(t, dirAB)
	if err != nil {
		t.Fatal(err)
	}
	if f.loads() != 1 || f.agentIDs() != "a,b" {
		t.Fatalf("after NewWatcher: %d loads, agents %s", f.loads(), f.agentIDs())
	}
	if !strings.Contains(f.log.String(), "agent directory loaded") {
		t.Fatalf("log: %s", f.log)
	}
}

func TestNewWatcherRefusesABadFile(t *testing.T) {
	_, err := newWatchFixture(t, dirBad)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `line 3: agent id "a" is already defined on line 2`) {
		t.Fatalf("NewWatcher: %v", err)
	}
	_, err = NewWatcher(filepath.Join(t.TempDir(), "none.yaml"), nil, nil)
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("NewWatcher on a missing file: %v", err)
	}
}

func TestWatcherReloadsOnChange(t *testing.T) {
	f, err := newWatchFixture(t, dirA)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.tick(t)
	if f.loads() != 1 {
		t.Fatalf("an unchanged file was loaded again: %d loads", f.loads())
	}
	f.write(t, dirAB) // another size
	f.clock.tick(t)
	if f.loads() != 2 || f.agentIDs() != "a,b" {
		t.Fatalf("after a change of size: %d loads, agents %s", f.loads(), f.agentIDs())
	}
	f.clock.tick(t)
	if f.loads() != 2 {
		t.Fatalf("loaded again without a change: %d loads", f.loads())
	}
	f.write(t, strings.Replace(dirAB, "b", "c", 1)) // same size, later time
	f.clock.tick(t)
	if f.loads() != 3 || f.agentIDs() != "a,c" {
		t.Fatalf("after a change of time: %d loads, agents %s", f.loads(), f.agentIDs())
	}
}

// TestWatcherSeesAFileRenamedOver replaces the file with another of the
// same size and modification time, as a tool that writes a new file and
// renames it over the old one may: the file's identity changed.
func TestWatcherSeesAFileRenamedOver(t *testing.T) {
	f, err := newWatchFixture(t, dirA)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := f.path + ".new"
	if err := os.WriteFile(tmp, []byte(dirC), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.path); err != nil {
		t.Fatal(err)
	}
	f.clock.tick(t)
	if f.loads() != 2 || f.agentIDs() != "c" {
		t.Fatalf("after a rename over the file: %d loads, agents %s", f.loads(), f.agentIDs())
	}
}

func TestWatcherKeepsThePreviousDirectory(t *testing.T) {
	f, err := newWatchFixture(t, dirAB)
	if err != nil {
		t.Fatal(err)
	}
	before := f.w.Current()
	f.write(t, dirBad)
	f.clock.tick(t)
	if f.loads() != 1 || f.w.Current() != before || f.agentIDs() != "a,b" {
		t.Fatalf("after a bad file: %d loads, agents %s", f.loads(), f.agentIDs())
	}
	if n := strings.Count(f.log.String(), "agent directory refused; keeping the previous one"); n != 1 {
		t.Fatalf("%d refusals logged, want 1:\n%s", n, f.log)
	}
	if !strings.Contains(f.log.String(), `agent id \"a\" is already defined on line 2`) {
		t.Fatalf("the log does not say why:\n%s", f.log)
	}
	// The same bad file is not logged again at every poll.
	f.clock.tick(t)
	f.clock.tick(t)
	if n := strings.Count(f.log.String(), "refused"); n != 1 {
		t.Fatalf("%d refusals logged after more polls, want 1", n)
	}
	// A reload on demand says so again, and keeps the directory too.
	if err := f.w.Reload(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Reload of a bad file: %v", err)
	}
	if f.w.Current() != before || strings.Count(f.log.String(), "refused") != 2 {
		t.Fatalf("after Reload of a bad file: agents %s, log:\n%s", f.agentIDs(), f.log)
	}
	// Fixed: loaded at the next poll.
	f.write(t, dirC)
	f.clock.tick(t)
	if f.loads() != 2 || f.agentIDs() != "c" {
		t.Fatalf("after the fix: %d loads, agents %s", f.loads(), f.agentIDs())
	}
}

func TestWatcherMissingFile(t *testing.T) {
	f, err := newWatchFixture(t, dirAB)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.path); err != nil {
		t.Fatal(err)
	}
	f.clock.tick(t)
	f.clock.tick(t)
	if f.agentIDs() != "a,b" {
		t.Fatalf("after the file went: agents %s", f.agentIDs())
	}
	if n := strings.Count(f.log.String(), "agent directory cannot be read; keeping the previous one"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, f.log)
	}
	f.write(t, dirAB) // back, as it was
	f.clock.tick(t)
	if f.loads() != 2 || f.agentIDs() != "a,b" {
		t.Fatalf("after the file came back: %d loads, agents %s", f.loads(), f.agentIDs())
	}
}

// TestWatcherReload is what the program does on SIGHUP: a reload now,
// whatever the file's time says.
func TestWatcherReload(t *testing.T) {
	f, err := newWatchFixture(t, dirA)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, same time, same file: polling cannot see this change.
	if err := os.WriteFile(f.path, []byte(dirC), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(f.path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	f.clock.tick(t)
	if f.agentIDs() != "a" {
		t.Fatalf("the poll saw an invisible change: agents %s", f.agentIDs())
	}
	if err := f.w.Reload(); err != nil {
		t.Fatal(err)
	}
	if f.loads() != 2 || f.agentIDs() != "c" {
		t.Fatalf("after Reload: %d loads, agents %s", f.loads(), f.agentIDs())
	}
	f.clock.tick(t)
	if f.loads() != 2 {
		t.Fatalf("the poll after Reload loaded again: %d loads", f.loads())
	}
}

func TestWatcherClose(t *testing.T) {
	f, err := newWatchFixture(t, dirA)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.clock.stopped:
	default:
		t.Fatal("Close did not stop the ticker")
	}
	if err := f.w.Reload(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reload after Close: %v", err)
	}
	if err := f.w.Close(); err != nil {
		t.Fatalf("a second Close: %v", err)
	}
	if f.loads() != 1 || f.agentIDs() != "a" {
		t.Fatalf("after Close: %d loads", f.loads())
	}
}

// TestWatcherConcurrentReloads runs Reload from several goroutines while
// the file changes and the poller ticks (run with -race): onLoad is never
// called twice at once.
func TestWatcherConcurrentReloads(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agents.csv")
	if err := os.WriteFile(path, []byte("id\na\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var inside, overlap, calls int
	var mu sync.Mutex
	w, err := NewWatcher(path, nil, func(*Directory) {
		mu.Lock()
		inside++
		if inside > 1 {
			overlap++
		}
		calls++
		mu.Unlock()
		runtime.Gosched()
		mu.Lock()
		inside--
		mu.Unlock()
	}, WatcherConfig{Interval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				if err := w.Reload(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	w.Close()
	if overlap != 0 || calls < 41 {
		t.Fatalf("%d onLoad calls, %d overlapping", calls, overlap)
	}
}
