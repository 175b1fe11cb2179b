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
	// one source address that locks it out; default 3.
	Threshold int
	// Duration of a lockout, counted from the failure that reached the
	// threshold; default 15 minutes. Attempts refused during a lockout do
	// not extend it.
	Duration time.Duration
	// Clock tells the time; default the system clock.
	Clock Clock
	// Logger receives one warning per lockout; nil discards.
	Logger *slog.Logger
	// MaxSources bounds the number of addresses tracked; default 65536.
	// When full, entries that are neither locked nor recently failed are
	// dropped first, then the oldest.
	MaxSources int
}

// Defaults of LockoutConfig.
const (
	DefaultLockoutThreshold = 3
	DefaultLockoutDuration  = 15 * time.Minute
	defaultMaxSources       = 65536
)

// LockoutStats are cumulative counters of a Lockout.
type LockoutStats struct {
	Failures uint64 // failed authentications recorded
	Lockouts uint64 // times a source became locked out
	Refused  uint64 // attempts refused because the source was locked out
	Locked   int    // sources locked out now
}

type lockEntry struct {
	fails int
	last  time.Time // last failure
	until time.Time // locked out until; zero if not locked
}

// Lockout is the brute-force guard: after Threshold consecutive failed
// authentications from one source address, that address is refused for
// Duration. A success resets its count; a count is also forgotten after
// Duration without a further failure. Addresses are compared without port
// (IPv4-mapped IPv6 addresses as IPv4).
//
// A Lockout is safe for concurrent use. A nil *Lockout allows everything
// and records nothing.
type Lockout struct {
	cfg LockoutConfig
	log *slog.Logger

	mu sync.Mutex
	m  map[netip.Addr]*lockEntry

	failures, lockouts, refused atomic.Uint64
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
		cfg.MaxSources = defaultMaxSources
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Lockout{cfg: cfg, log: log, m: make(map[netip.Addr]*lockEntry)}
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

// Allow returns nil if src may try to authenticate, or an error wrapping
// ErrLockedOut that names src and the end of its lockout.
func (l *Lockout) Allow(src netip.Addr) error {
	if l == nil {
		return nil
	}
	src = src.Unmap()
	now := l.cfg.Clock.Now()
	l.mu.Lock()
	e := l.m[src]
	if e == nil || e.until.IsZero() {
		l.mu.Unlock()
		return nil
	}
	if !now.Before(e.until) {
		delete(l.m, src) // lockout over: a fresh count
		l.mu.Unlock()
		return nil
	}
	until := e.until
	l.mu.Unlock()
	l.refused.Add(1)
	return newErr(ErrLockedOut, "source %s is locked out until %s after repeated failed authentications",
		src, until.UTC().Format("2006-01-02 15:04:05 MST"))
}

// Fail records a failed authentication from src and reports whether src is
// now locked out. The lockout is logged once, when it starts.
func (l *Lockout) Fail(src netip.Addr) (locked bool) {
	if l == nil {
		return false
	}
	src = src.Unmap()
	now := l.cfg.Clock.Now()
	l.failures.Add(1)
	l.mu.Lock()
	e := l.m[src]
	if e != nil && !e.until.IsZero() {
		if now.Before(e.until) {
			l.mu.Unlock()
			return true
		}
		e = nil // lockout over
	}
	if e != nil && now.Sub(e.last) >= l.cfg.Duration {
		e = nil // stale count
	}
	if e == nil {
		if len(l.m) >= l.cfg.MaxSources {
			l.pruneLocked(now)
		}
		e = &lockEntry{}
		l.m[src] = e
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
		"source", src.String(), "failures", fails, "duration", l.cfg.Duration.String(),
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
	src = src.Unmap()
	l.mu.Lock()
	if e := l.m[src]; e != nil && e.until.IsZero() {
		delete(l.m, src)
	}
	l.mu.Unlock()
}

// pruneLocked drops expired and stale entries, then, if still full, the
// entry with the oldest last failure. l.mu is held.
func (l *Lockout) pruneLocked(now time.Time) {
	var (
		oldest netip.Addr
		ot     time.Time
	)
	for a, e := range l.m {
		if (!e.until.IsZero() && !now.Before(e.until)) || (e.until.IsZero() && now.Sub(e.last) >= l.cfg.Duration) {
			delete(l.m, a)
			continue
		}
		if ot.IsZero() || e.last.Before(ot) {
			oldest, ot = a, e.last
		}
	}
	if len(l.m) >= l.cfg.MaxSources && oldest.IsValid() {
		delete(l.m, oldest)
	}
}

// Stats returns the counters.
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
	l.mu.Unlock()
	return LockoutStats{
		Failures: l.failures.Load(),
		Lockouts: l.lockouts.Load(),
		Refused:  l.refused.Load(),
		Locked:   n,
	}
}
