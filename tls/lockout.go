package tls

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// LockoutConfig configures a Lockout. Zero fields take the defaults of the
// original product (MonitorModeDisableThreshold and
// MonitorModeDisableDuration).
type LockoutConfig struct {
	// Threshold is the number of consecutive failed authentications from
	// one source that locks it out; default 3. It also caps the
	// handshakes a Listener runs at once for one source: the threshold
	// minus the failures already counted.
	Threshold int
	// Duration of a lockout, counted from the failure that reached the
	// threshold; default 15 minutes. Attempts refused during a lockout do
	// not extend it. A count of failures is also forgotten after Duration
	// without a further failure.
	Duration time.Duration
	// Clock tells the time; default the system clock.
	Clock Clock
	// Logger receives one warning per lockout; nil discards.
	Logger *slog.Logger
	// MaxSources bounds the number of sources tracked; default 65536
	// (DefaultMaxSources). A source is tracked while it has failures
	// counted, is locked out or has a handshake in progress. When the
	// table is full, entries whose lockout or count has expired are
	// dropped; if it is still full, a new source is refused (its
	// connection closed, its failure not recorded) until room frees up.
	// A locked source is never forgotten to make room.
	MaxSources int
}

// Defaults of LockoutConfig.
const (
	DefaultLockoutThreshold = 3
	DefaultLockoutDuration  = 15 * time.Minute
	DefaultMaxSources       = 65536
)

// LockoutStats are cumulative counters of a Lockout, and two gauges.
type LockoutStats struct {
	Failures  uint64 // failed authentications reported
	Lockouts  uint64 // times a source became locked out
	Refused   uint64 // attempts refused because the source was locked out
	TableFull uint64 // new sources refused, or failures not recorded, because the table was full
	Locked    int    // sources locked out now
	Sources   int    // sources tracked now
}

type lockEntry struct {
	fails    int       // consecutive failures counted
	inflight int       // handshakes in progress (Listener)
	last     time.Time // last failure
	until    time.Time // locked out until; zero if not locked
}

// Lockout is the brute-force guard: after Threshold consecutive failed
// authentications from one source, that source is refused for Duration. A
// success resets its count; a count is also forgotten after Duration
// without a further failure.
//
// A source is an IPv4 address, or an IPv6 /64 prefix (one host usually
// holds a whole /64, so counting per address would give it 2^64 tries);
// IPv4-mapped IPv6 addresses count as IPv4. Ports are ignored.
//
// What counts as a failed authentication is the caller's decision: the
// Listener reports only a refused client certificate (missing, untrusted,
// expired, wrong role), never a probe, a timeout or a handshake the client
// abandoned; see Listener.
//
// The table of sources is bounded by MaxSources and never forgets a locked
// source to make room for a new one: when it is full, new sources are
// refused instead.
//
// A Lockout is safe for concurrent use. A nil *Lockout allows everything
// and records nothing.
type Lockout struct {
	cfg LockoutConfig
	log *slog.Logger

	mu sync.Mutex
	m  map[netip.Prefix]*lockEntry
	// noExpiryBefore: no entry can expire before this time, so a full
	// table is not scanned again until then (l.mu).
	noExpiryBefore time.Time

	failures, lockouts, refused, tableFull atomic.Uint64
}

// NewLockout returns a Lockout with cfg's zero fields set to their
// defaults.
func NewLockout(cfg LockoutConfig) *Lockout {
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultLockoutThreshold
	}
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultLockoutDuration
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock
	}
	if cfg.MaxSources <= 0 {
		cfg.MaxSources = DefaultMaxSources
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lockout{cfg: cfg, log: log, m: make(map[netip.Prefix]*lockEntry)}
}

// AddrOf returns the IP address of a, a *net.TCPAddr or *net.UDPAddr or
// any address whose String is host:port; the zero Addr if none.
func AddrOf(a net.Addr) netip.Addr {
	switch x := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(x.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(x.IP)
		return ip.Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// sourceOf returns the source an address counts against: the IPv4
// address, or the /64 prefix of an IPv6 address. All invalid addresses
// share the zero Prefix.
func sourceOf(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	bits := 32
	if a.Is6() {
		bits = 64
	}
	p, _ := a.Prefix(bits)
	return p
}

// sourceString names a source in logs and errors: the IPv4 address, or
// the IPv6 prefix with its length.
func sourceString(p netip.Prefix) string {
	switch {
	case !p.IsValid():
		return "(unknown address)"
	case p.Addr().Is4():
		return p.Addr().String()
	}
	return p.String()
}

// refresh ends e's lockout or forgets its count if their time is over,
// and reports whether e must stay in the table. l.mu is held.
func (l *Lockout) refresh(e *lockEntry, now time.Time) (keep bool) {
	if !e.until.IsZero() {
		if now.Before(e.until) {
			return true
		}
		e.until, e.fails = time.Time{}, 0 // lockout over: a fresh count
	}
	if e.fails > 0 && now.Sub(e.last) >= l.cfg.Duration {
		e.fails = 0 // stale count
	}
	return e.fails > 0 || e.inflight > 0
}

// lookup returns the entry of k after refresh, or nil. l.mu is held.
func (l *Lockout) lookup(k netip.Prefix, now time.Time) *lockEntry {
	e := l.m[k]
	if e != nil && !l.refresh(e, now) {
		delete(l.m, k)
		return nil
	}
	return e
}

// add creates the entry of a new source k if the table has room,
// pruning expired entries first; nil if it is full. l.mu is held.
func (l *Lockout) add(k netip.Prefix, now time.Time) *lockEntry {
	if len(l.m) >= l.cfg.MaxSources {
		l.prune(now)
		if len(l.m) >= l.cfg.MaxSources {
			l.tableFull.Add(1)
			return nil
		}
	}
	e := &lockEntry{}
	l.m[k] = e
	return e
}

// prune drops the entries whose lockout or count has expired. Locked
// entries, counts still running and entries with a handshake in progress
// stay. A scan that frees nothing is not repeated before the earliest
// time an entry can expire, so a full table under a flood of new sources
// costs one scan per Duration, not one per connection. l.mu is held.
func (l *Lockout) prune(now time.Time) {
	if now.Before(l.noExpiryBefore) {
		return
	}
	// Any expiry set from now on is at least now+Duration away.
	next := now.Add(l.cfg.Duration)
	for k, e := range l.m {
		if !l.refresh(e, now) {
			delete(l.m, k)
			continue
		}
		var exp time.Time
		switch {
		case !e.until.IsZero():
			exp = e.until
		case e.fails > 0:
			exp = e.last.Add(l.cfg.Duration)
		default:
			continue // a handshake in progress: leaves with its end
		}
		if exp.Before(next) {
			next = exp
		}
	}
	l.noExpiryBefore = next
}

// lockedErr is the refusal of a locked source k. l.mu is not held.
func (l *Lockout) lockedErr(k netip.Prefix, until time.Time) error {
	l.refused.Add(1)
	return newErr(ErrLockedOut, "source %s is locked out until %s after repeated failed authentications",
		sourceString(k), until.UTC().Format("2006-01-02 15:04:05 MST"))
}

// Allow returns nil if src may try to authenticate, or an error wrapping
// ErrLockedOut that names src and the end of its lockout. It does not
// reserve anything: the Listener uses a stricter check that also caps the
// handshakes in progress.
func (l *Lockout) Allow(src netip.Addr) error {
	if l == nil {
		return nil
	}
	k := sourceOf(src)
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	e := l.lookup(k, now)
	if e == nil || e.until.IsZero() {
		l.mu.Unlock()
		return nil
	}
	until := e.until
	l.mu.Unlock()
	return l.lockedErr(k, until)
}

// begin reserves a handshake for src: it refuses a locked source
// (ErrLockedOut), a source whose handshakes in progress already reach
// min(perSource, Threshold - failures counted) (errSourceBusy), and a
// new source when the table is full (errTableFull). The caller ends the
// handshake with end, passing the returned entry. The errors are the bare
// sentinels: the Listener counts refusals, it does not log them, and a
// flood should not cost a formatted message each.
func (l *Lockout) begin(src netip.Addr, perSource int) (netip.Prefix, *lockEntry, error) {
	k := sourceOf(src)
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	e := l.lookup(k, now)
	if e != nil && !e.until.IsZero() {
		l.mu.Unlock()
		l.refused.Add(1)
		return k, nil, ErrLockedOut
	}
	limit := l.cfg.Threshold
	inflight := 0
	if e != nil {
		limit -= e.fails
		inflight = e.inflight
	}
	limit = min(limit, perSource)
	if inflight >= limit {
		l.mu.Unlock()
		return k, nil, errSourceBusy
	}
	if e == nil {
		if e = l.add(k, now); e == nil {
			l.mu.Unlock()
			return k, nil, errTableFull
		}
	}
	e.inflight++
	l.mu.Unlock()
	return k, e, nil
}

// Handshake results reported to end.
const (
	endNeutral = iota // neither a success nor a failed authentication
	endSuccess
	endFailure
)

// end releases the handshake reserved by begin for source k (entry e)
// and records its result in the same step, so that the cap of begin
// never sees the handshake gone before its failure is counted.
func (l *Lockout) end(k netip.Prefix, e *lockEntry, result int) {
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	e.inflight--
	if l.m[k] != e {
		l.mu.Unlock() // cannot happen: entries in use are never dropped
		return
	}
	switch result {
	case endSuccess:
		l.succeedLocked(k, e, now)
	case endFailure:
		l.failures.Add(1)
		l.failLocked(k, e, now) // unlocks
		return
	default:
		if !l.refresh(e, now) {
			delete(l.m, k)
		}
	}
	l.mu.Unlock()
}

// Fail records a failed authentication from src and reports whether src is
// now locked out. The lockout is logged once, when it starts. If src is
// new and the table is full, the failure is not recorded (see
// LockoutConfig.MaxSources) and Fail reports false.
func (l *Lockout) Fail(src netip.Addr) (locked bool) {
	if l == nil {
		return false
	}
	k := sourceOf(src)
	now := l.cfg.Clock.Now()
	l.failures.Add(1)
	l.mu.Lock()
	e := l.lookup(k, now)
	if e == nil {
		if e = l.add(k, now); e == nil {
			l.mu.Unlock()
			return false
		}
	}
	return l.failLocked(k, e, now)
}

// failLocked counts a failure on e and unlocks l.mu; it logs the lockout
// if this failure starts one.
func (l *Lockout) failLocked(k netip.Prefix, e *lockEntry, now time.Time) (locked bool) {
	l.refresh(e, now) // an expired lockout or count starts again
	if !e.until.IsZero() {
		l.mu.Unlock()
		return true
	}
	e.fails++
	e.last = now
	if e.fails < l.cfg.Threshold {
		l.mu.Unlock()
		return false
	}
	e.until = now.Add(l.cfg.Duration)
	fails, until := e.fails, e.until
	l.mu.Unlock()
	l.lockouts.Add(1)
	l.log.Warn("source locked out after failed authentications",
		"source", sourceString(k), "failures", fails, "duration", l.cfg.Duration.String(),
		"until", until.UTC().Format(time.RFC3339))
	return true
}

// Succeed records a successful authentication from src: its count of
// failures starts again from zero. It does not lift a lockout in force
// (a locked-out source is refused before it can succeed).
func (l *Lockout) Succeed(src netip.Addr) {
	if l == nil {
		return
	}
	k := sourceOf(src)
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	if e := l.m[k]; e != nil {
		l.succeedLocked(k, e, now)
	}
	l.mu.Unlock()
}

// succeedLocked resets e's count unless it is locked. l.mu is held.
func (l *Lockout) succeedLocked(k netip.Prefix, e *lockEntry, now time.Time) {
	if l.refresh(e, now) && !e.until.IsZero() {
		return
	}
	e.fails = 0
	if e.inflight == 0 {
		delete(l.m, k)
	}
}

// Stats returns the counters. It walks the table, so it is meant for a
// metrics scrape, not for every connection.
func (l *Lockout) Stats() LockoutStats {
	if l == nil {
		return LockoutStats{}
	}
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	n := 0
	for _, e := range l.m {
		if !e.until.IsZero() && now.Before(e.until) {
			n++
		}
	}
	sources := len(l.m)
	l.mu.Unlock()
	return LockoutStats{
		Failures:  l.failures.Load(),
		Lockouts:  l.lockouts.Load(),
		Refused:   l.refused.Load(),
		TableFull: l.tableFull.Load(),
		Locked:    n,
		Sources:   sources,
	}
}
