package service

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	smtls "github.com/silentmon/silentmon/tls"
)

// Check is one named condition of /healthz or /readyz. Check returns nil
// when the condition holds, else why not, in one sentence without the
// name: the answer's line is "NAME: REASON". A check that holds but has
// something to say returns Note's error (the line is "NAME: ready, NOTE").
// Checks are called at every request, possibly at once from several:
// they must be cheap and safe for concurrent use.
type Check struct {
	Name  string
	Check func() error
}

// note is a check's remark that is not a failure.
type note string

func (n note) Error() string { return string(n) }

// Note returns an error that a Check returns to pass with a remark, as
// "replay finished".
func Note(format string, args ...any) error { return note(fmt.Sprintf(format, args...)) }

// Result is one check's outcome.
type Result struct {
	Name string
	OK   bool
	// Text is the line's text after the name: "ready", "ready, NOTE" or
	// the reason of the failure.
	Text string
}

// Line is the result as the answer's line: "NAME: TEXT".
func (r Result) Line() string { return r.Name + ": " + r.Text }

// RunChecks runs every check in order and returns their results and
// whether all passed. A failure whose error has several lines (as
// errors.Join makes) gives one result per line.
func RunChecks(checks []Check) ([]Result, bool) {
	out := make([]Result, 0, len(checks))
	all := true
	for _, c := range checks {
		err := c.Check()
		var n note
		switch {
		case err == nil:
			out = append(out, Result{Name: c.Name, OK: true, Text: "ready"})
		case errors.As(err, &n):
			out = append(out, Result{Name: c.Name, OK: true, Text: "ready, " + string(n)})
		default:
			all = false
			for _, l := range strings.Split(err.Error(), "\n") {
				out = append(out, Result{Name: c.Name, Text: l})
			}
		}
	}
	return out, all
}

// checkList is a list of checks that grows before and while serving.
type checkList struct {
	mu     sync.Mutex
	checks []Check
}

func (l *checkList) add(c ...Check) {
	l.mu.Lock()
	l.checks = append(l.checks, c...)
	l.mu.Unlock()
}

func (l *checkList) list() []Check {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Check(nil), l.checks...)
}

// serveReady answers /readyz: every check's line, the failures first, 503
// when one fails, 200 otherwise (no check: 200 "ready").
func serveReady(w http.ResponseWriter, checks []Check) {
	res, ok := RunChecks(checks)
	var b strings.Builder
	for _, pass := range []bool{false, true} {
		for _, r := range res {
			if r.OK == pass {
				b.WriteString(r.Line() + "\n")
			}
		}
	}
	if len(res) == 0 {
		b.WriteString("ready\n")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprint(w, b.String())
}

// MinHeartbeatBound is the least time a loop may go without turning
// before /healthz names it.
const MinHeartbeatBound = 10 * time.Second

// Heartbeats records the last turn of a program's long-running loops, for
// /healthz: a loop that has not turned for longer than its bound, or that
// stopped, makes the process unhealthy. Its methods, and its Heartbeats',
// are safe for concurrent use and do not allocate once the loops are
// added. The zero value is not usable: use NewHeartbeats.
type Heartbeats struct {
	now   func() time.Time
	mu    sync.Mutex
	beats []*Heartbeat
}

// NewHeartbeats returns an empty set timed by now (time.Now if nil).
func NewHeartbeats(now func() time.Time) *Heartbeats {
	if now == nil {
		now = time.Now
	}
	return &Heartbeats{now: now}
}

// Heartbeat is one loop's record: the loop calls Beat at every turn (an
// atomic store), Waiting before it blocks for input that may be long to
// come (a quiet capture port), Done when it ends as it should, Stopped
// when it ends before its time.
type Heartbeat struct {
	h     *Heartbeats
	name  string
	bound time.Duration
	last  atomic.Int64 // Unix ns of the last turn
	state atomic.Int32 // running, done, stopped
	why   atomic.Pointer[string]
}

const (
	beatRunning int32 = iota
	beatWaiting
	beatDone
	beatStopped
)

// Add registers a loop named name (as /healthz will name it) that turns
// every period; it counts as turned now. The loop is unhealthy once it
// has not turned for 3 periods, and never sooner than MinHeartbeatBound.
func (h *Heartbeats) Add(name string, period time.Duration) *Heartbeat {
	b := &Heartbeat{h: h, name: name, bound: max(3*period, MinHeartbeatBound)}
	b.Beat()
	h.mu.Lock()
	h.beats = append(h.beats, b)
	h.mu.Unlock()
	return b
}

// Beat records a turn of the loop now. A nil Heartbeat does nothing.
func (b *Heartbeat) Beat() {
	if b != nil {
		b.last.Store(b.h.now().UnixNano())
		if b.state.Load() == beatWaiting {
			b.state.CompareAndSwap(beatWaiting, beatRunning)
		}
	}
}

// Waiting says the loop blocks for its input (a read): it is not checked
// until its next Beat, so a loop is stuck only when it does not come back
// to its wait. A nil Heartbeat does nothing.
func (b *Heartbeat) Waiting() {
	if b != nil {
		b.state.CompareAndSwap(beatRunning, beatWaiting)
	}
}

// Done says the loop ended as it should (a replay read to its end): it
// is no longer checked. A nil Heartbeat does nothing.
func (b *Heartbeat) Done() {
	if b != nil {
		b.state.CompareAndSwap(beatRunning, beatDone)
	}
}

// Stopped says the loop ended before its time, for why (may be nil):
// /healthz names it until Restarted. A nil Heartbeat does nothing.
func (b *Heartbeat) Stopped(why error) {
	if b == nil {
		return
	}
	s := ""
	if why != nil {
		s = ": " + why.Error()
	}
	b.why.Store(&s)
	b.state.Store(beatStopped)
}

// Restarted says the loop runs again; it counts as turned now.
func (b *Heartbeat) Restarted() {
	if b == nil {
		return
	}
	b.Beat()
	b.state.Store(beatRunning)
}

// Remove forgets the loop (it ended with what it served).
func (h *Heartbeats) Remove(b *Heartbeat) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.beats {
		if x == b {
			h.beats = append(h.beats[:i], h.beats[i+1:]...)
			return
		}
	}
}

// Check returns nil while every running loop turned within its bound and
// none stopped, else one error naming each that did not, as "loop NAME
// has not turned for 41s (bound 10s)" or "loop NAME stopped: REASON",
// one per line, wrapping ErrLoopStuck or ErrLoopStopped.
func (h *Heartbeats) Check() error {
	now := h.now()
	h.mu.Lock()
	beats := append([]*Heartbeat(nil), h.beats...)
	h.mu.Unlock()
	var errs []error
	for _, b := range beats {
		switch b.state.Load() {
		case beatDone, beatWaiting:
			continue
		case beatStopped:
			why := ""
			if p := b.why.Load(); p != nil {
				why = *p
			}
			errs = append(errs, &loopError{kind: ErrLoopStopped, msg: "loop " + b.name + " stopped" + why})
			continue
		}
		if ago := now.Sub(time.Unix(0, b.last.Load())); ago > b.bound {
			errs = append(errs, &loopError{kind: ErrLoopStuck,
				msg: fmt.Sprintf("loop %s has not turned for %s (bound %s)", b.name, ago.Round(time.Second), b.bound)})
		}
	}
	return joinLines(errs)
}

// loopError is a loop's failure: its text names the loop, errors.Is
// finds its kind.
type loopError struct {
	kind error
	msg  string
}

func (e *loopError) Error() string { return e.msg }
func (e *loopError) Unwrap() error { return e.kind }

// joinLines joins errors one per line, wrapping each (errors.Is finds
// them); nil when there are none.
func joinLines(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

// Expiry is the end of validity of the certificate of a security file,
// or why the file could not be read.
type Expiry struct {
	File     string // base name, as CtiosServer.pem
	NotAfter time.Time
	Err      error
}

// FileExpiries reads the first certificate of each of files in dir (base
// names such as smtls.ServerFile) at every call: what a restart would
// load. A program whose certificates reload (a tls Store) reports the
// ones in use instead.
func FileExpiries(dir string, files ...string) []Expiry {
	out := make([]Expiry, 0, len(files))
	for _, f := range files {
		x := Expiry{File: f}
		certs, err := smtls.ReadCertificates(filepath.Join(dir, f))
		switch {
		case err != nil:
			x.Err = err
		case len(certs) == 0:
			x.Err = fmt.Errorf("%s holds no certificate", f)
		default:
			x.NotAfter = certs[0].NotAfter
		}
		out = append(out, x)
	}
	return out
}

// StoreExpiries lists the certificates st uses now (CA, then each link's),
// for CertificateCheck: what the reloaded certificates are, not what is
// on disk.
func StoreExpiries(st *smtls.Store) func() []Expiry {
	return func() []Expiry {
		list := st.Expiries()
		out := make([]Expiry, 0, len(list))
		for _, x := range list {
			out = append(out, Expiry{File: x.File, NotAfter: x.NotAfter})
		}
		return out
	}
}

// MinCertificateValidity is how long the certificates must stay valid for
// /readyz to pass: an operator has two weeks to renew.
const MinCertificateValidity = 14 * 24 * time.Hour

// CertificateCheck is /readyz's "certificate" check: every certificate
// expiries lists (the security files in use) must be readable and valid
// for more than minValid at now (MinCertificateValidity if 0). Each
// failure is one line, as "CtiosServer.pem expires in 9 days
// (2026-12-11)".
func CertificateCheck(now func() time.Time, minValid time.Duration, expiries func() []Expiry) Check {
	if now == nil {
		now = time.Now
	}
	if minValid <= 0 {
		minValid = MinCertificateValidity
	}
	return Check{Name: "certificate", Check: func() error {
		t := now()
		var errs []error
		for _, x := range expiries() {
			day := x.NotAfter.UTC().Format(time.DateOnly)
			left := x.NotAfter.Sub(t)
			switch {
			case x.Err != nil:
				errs = append(errs, fmt.Errorf("%s cannot be read: %w", x.File, x.Err))
			case left <= 0:
				errs = append(errs, fmt.Errorf("%s expired %s ago (%s)", x.File, days(-left), day))
			case left <= minValid:
				errs = append(errs, fmt.Errorf("%s expires in %s (%s)", x.File, days(left), day))
			}
		}
		return joinLines(errs)
	}}
}

// days writes d in whole days ("1 day", "9 days"), or hours under a day.
func days(d time.Duration) string {
	switch n := int(d / (24 * time.Hour)); {
	case n == 1:
		return "1 day"
	case n > 1:
		return fmt.Sprintf("%d days", n)
	}
	if h := int(d / time.Hour); h != 1 {
		return fmt.Sprintf("%d hours", h)
	}
	return "1 hour"
}
