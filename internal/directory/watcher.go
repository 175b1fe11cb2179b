package directory

import (
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silentmon/silentmon/internal/ticker"
)

// DefaultPollInterval is how often a Watcher looks at its file.
const DefaultPollInterval = 2 * time.Second

// Clock makes the tickers a Watcher polls with; tests inject one whose
// ticks they send by hand.
type Clock = ticker.Clock

// Ticker delivers ticks on C until stopped.
type Ticker = ticker.Ticker

// SystemClock makes time.Tickers.
type SystemClock = ticker.System

// WatcherConfig tunes a Watcher; the zero value means the defaults.
type WatcherConfig struct {
	// Interval is how often the file's size, modification time and
	// identity are checked; 0 means DefaultPollInterval (2 s).
	Interval time.Duration
	// Clock makes the poll ticker; nil means SystemClock.
	Clock Clock
	// Options bound the file (16 MiB, 100,000 agents by default).
	Options Options

	afterPoll func() // tests: called after each poll
}

// Watcher keeps a directory loaded from a file: it reloads the file when
// its size, modification time or identity (a new file renamed over it)
// change, and when Reload is called (on SIGHUP). A refused file is logged
// and the previous directory stays in use; the same refused file is
// logged once, not at every poll.
//
// Its methods are safe for concurrent use. onLoad runs for each directory
// loaded, one call at a time, never after Close returned; it must not
// call Reload or Close. After Close returns, no goroutine of the Watcher
// runs and Reload returns ErrClosed.
type Watcher struct {
	path   string
	log    *slog.Logger
	onLoad func(*Directory)
	cfg    WatcherConfig

	cur atomic.Pointer[Directory]

	mu      sync.Mutex // serialises loads and onLoad calls
	last    os.FileInfo
	missing bool
	closed  bool

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// NewWatcher loads the directory at path, calls onLoad with it (onLoad
// may be nil) and watches the file, polling every 2 s. A file that cannot
// be loaded at start is an error: nothing is started. cfg is optional;
// log may be nil.
func NewWatcher(path string, log *slog.Logger, onLoad func(*Directory), cfg ...WatcherConfig) (*Watcher, error) {
	w := &Watcher{path: path, log: log, onLoad: onLoad, stop: make(chan struct{})}
	if len(cfg) > 0 {
		w.cfg = cfg[0]
	}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	if w.onLoad == nil {
		w.onLoad = func(*Directory) {}
	}
	if w.cfg.Interval <= 0 {
		w.cfg.Interval = DefaultPollInterval
	}
	if w.cfg.Clock == nil {
		w.cfg.Clock = SystemClock{}
	}
	w.mu.Lock()
	err := w.loadLocked("start")
	w.mu.Unlock()
	if err != nil {
		return nil, err
	}
	t := w.cfg.Clock.NewTicker(w.cfg.Interval)
	w.wg.Add(1)
	go w.run(t)
	return w, nil
}

// Current returns the directory in use: the last one loaded.
func (w *Watcher) Current() *Directory { return w.cur.Load() }

// Reload loads the file now, changed or not (the program calls it on
// SIGHUP). On error the previous directory stays in use and the error,
// also logged, is returned.
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	return w.loadLocked("reload requested")
}

// Close stops watching and waits for the poller to end.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { close(w.stop) })
	w.wg.Wait()
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return nil
}

func (w *Watcher) run(t Ticker) {
	defer w.wg.Done()
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C():
			w.poll()
			if w.cfg.afterPoll != nil {
				w.cfg.afterPoll()
			}
		}
	}
}

// poll reloads the file if it changed since the last load or attempt.
func (w *Watcher) poll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	st, err := os.Stat(w.path)
	if err != nil {
		if !w.missing {
			w.log.Warn("agent directory cannot be read; keeping the previous one", "path", w.path, "agents", w.cur.Load().Len(), "err", err)
			w.missing = true
		}
		w.last = nil
		return
	}
	w.missing = false
	if w.last != nil && os.SameFile(w.last, st) && w.last.Size() == st.Size() && w.last.ModTime().Equal(st.ModTime()) {
		return
	}
	w.loadLocked("file changed")
}

// loadLocked loads the file; w.mu is held. The file's state is noted
// before it is read, so a change during the read is seen at the next
// poll.
func (w *Watcher) loadLocked(why string) error {
	st, statErr := os.Stat(w.path)
	d, err := w.cfg.Options.Load(w.path)
	if statErr == nil {
		w.last = st
	}
	if err != nil {
		if prev := w.cur.Load(); prev != nil {
			w.log.Warn("agent directory refused; keeping the previous one", "path", w.path, "reason", why, "agents", prev.Len(), "err", err)
		}
		return err
	}
	w.cur.Store(d)
	w.log.Info("agent directory loaded", "path", w.path, "reason", why, "agents", d.Len(), "teams", len(d.Teams()))
	w.onLoad(d)
	return nil
}
