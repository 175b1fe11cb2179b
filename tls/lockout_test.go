package tls

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// A flood of failures from other addresses must not make the table
// forget a locked source.
func TestLockoutSurvivesAddressFlood(t *testing.T) {
	clk := newFakeClock()
	lo := NewLockout(LockoutConfig{Clock: clk})
	victim := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < DefaultLockoutThreshold; i++ {
		lo.Fail(victim)
	}
	if err := lo.Allow(victim); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("not locked after %d failures: %v", DefaultLockoutThreshold, err)
	}
	// The locked entry is now the oldest: a table that drops the oldest
	// entry to make room would drop it.
	clk.Advance(time.Second)
	for i := 0; i < DefaultMaxSources; i++ {
		lo.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if err := lo.Allow(victim); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after failures from %d other addresses the locked source is allowed: %v", DefaultMaxSources, err)
	}
	st := lo.Stats()
	if st.Sources > DefaultMaxSources {
		t.Fatalf("tracking %d sources, bound %d", st.Sources, DefaultMaxSources)
	}
	if st.TableFull == 0 {
		t.Fatalf("stats %+v: the failures beyond the bound are not counted as table full", st)
	}
	// The lockout still ends on time, and then the table has room again.
	clk.Advance(DefaultLockoutDuration)
	if err := lo.Allow(victim); err != nil {
		t.Fatalf("after the lockout: %v", err)
	}
	if _, _, err := lo.begin(netip.MustParseAddr("198.51.100.1"), 8); err != nil {
		t.Fatalf("a new source once the entries expired: %v", err)
	}
}

// IPv6 sources count per /64: one host holds a whole /64.
func TestLockoutIPv6Per64(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		name   string
		fails  []string
		src    string
		locked bool
	}{
		{"three addresses of one /64 lock it", []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff:ffff:ffff:ffff"}, "2001:db8:1:2::abcd", true},
		{"another /64 is unaffected", []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"}, "2001:db8:1:3::1", false},
		{"failures in two /64s do not add up", []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:3::1"}, "2001:db8:1:2::1", false},
		{"IPv4 counts per address", []string{"192.0.2.1", "192.0.2.1", "192.0.2.2"}, "192.0.2.1", false},
		{"IPv4-mapped counts as IPv4", []string{"::ffff:192.0.2.1", "192.0.2.1", "::ffff:192.0.2.1"}, "192.0.2.1", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo := NewLockout(LockoutConfig{Clock: newFakeClock()})
			for _, f := range tc.fails {
				lo.Fail(a(f))
			}
			err := lo.Allow(a(tc.src))
			if got := errors.Is(err, ErrLockedOut); got != tc.locked {
				t.Fatalf("locked = %v (%v), want %v", got, err, tc.locked)
			}
		})
	}
	// The refusal names the prefix, not one address of it.
	lo := NewLockout(LockoutConfig{Clock: newFakeClock(), Threshold: 1})
	lo.Fail(a("2001:db8:1:2::1"))
	if err := lo.Allow(a("2001:db8:1:2::9")); err == nil || !strings.Contains(err.Error(), "2001:db8:1:2::/64") {
		t.Fatalf("refusal %v does not name the /64", err)
	}
}

// When the table is full, a new source is refused; a locked one is never
// forgotten to make room, and expired entries are.
func TestLockoutTableFull(t *testing.T) {
	clk := newFakeClock()
	lo := NewLockout(LockoutConfig{Clock: clk, MaxSources: 3})
	locked := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < 3; i++ {
		lo.Fail(locked)
	}
	lo.Fail(netip.MustParseAddr("192.0.2.2")) // one failure: a count running
	busy := netip.MustParseAddr("192.0.2.3")
	k, e, err := lo.begin(busy, 8) // a handshake in progress
	if err != nil {
		t.Fatal(err)
	}
	newcomer := netip.MustParseAddr("192.0.2.4")
	if lo.Fail(newcomer) {
		t.Fatal("a failure of a new source locked it while the table is full")
	}
	if _, _, err := lo.begin(newcomer, 8); !errors.Is(err, errTableFull) {
		t.Fatalf("new source with a full table: %v, want errTableFull", err)
	}
	if err := lo.Allow(locked); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("the locked source was forgotten: %v", err)
	}
	if st := lo.Stats(); st.TableFull != 2 || st.Sources != 3 || st.Locked != 1 {
		t.Fatalf("stats %+v, want 2 table-full refusals, 3 sources, 1 locked", st)
	}
	// The handshake ends: its entry leaves and the newcomer fits.
	lo.end(k, e, endNeutral)
	if _, _, err := lo.begin(newcomer, 8); err != nil {
		t.Fatalf("new source after an entry left: %v", err)
	}
	// Expired entries make room: after Duration both the lockout and
	// the running count are over.
	clk.Advance(DefaultLockoutDuration)
	for i, s := range []string{"198.51.100.1", "198.51.100.2"} {
		if _, _, err := lo.begin(netip.MustParseAddr(s), 8); err != nil {
			t.Fatalf("new source %d after the entries expired: %v", i, err)
		}
	}
}

// The handshakes in progress from one source are capped at the failures
// it has left before a lockout, and at the per-source limit.
func TestLockoutAllowanceCapsHandshakes(t *testing.T) {
	src := netip.MustParseAddr("192.0.2.1")
	type res struct {
		k netip.Prefix
		e *lockEntry
	}
	tests := []struct {
		name      string
		threshold int
		perSource int
		want      int // handshakes begun before the first refusal
	}{
		{"threshold caps", 3, 8, 3},
		{"per-source limit caps", 20, 8, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lo := NewLockout(LockoutConfig{Clock: newFakeClock(), Threshold: tc.threshold})
			var held []res
			for {
				k, e, err := lo.begin(src, tc.perSource)
				if err != nil {
					if !errors.Is(err, errSourceBusy) {
						t.Fatalf("refusal %v, want errSourceBusy", err)
					}
					break
				}
				held = append(held, res{k, e})
			}
			if len(held) != tc.want {
				t.Fatalf("%d handshakes in progress allowed, want %d", len(held), tc.want)
			}
		})
	}
	// One failure leaves two: with two still in progress, no more.
	lo := NewLockout(LockoutConfig{Clock: newFakeClock()})
	var held []res
	for i := 0; i < 3; i++ {
		k, e, err := lo.begin(src, 8)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, res{k, e})
	}
	lo.end(held[0].k, held[0].e, endFailure)
	if _, _, err := lo.begin(src, 8); !errors.Is(err, errSourceBusy) {
		t.Fatalf("after one failure with two in progress: %v, want errSourceBusy", err)
	}
	lo.end(held[1].k, held[1].e, endNeutral) // a probe: no failure
	k, e, err := lo.begin(src, 8)
	if err != nil {
		t.Fatalf("after a neutral end: %v", err)
	}
	lo.end(k, e, endFailure)
	lo.end(held[2].k, held[2].e, endFailure)
	if _, _, err := lo.begin(src, 8); !errors.Is(err, ErrLockedOut) {
		t.Fatalf("after three failures: %v, want ErrLockedOut", err)
	}
	if st := lo.Stats(); st.Failures != 3 || st.Lockouts != 1 {
		t.Fatalf("stats %+v, want 3 failures, 1 lockout", st)
	}
}

// A full table under a flood of new sources is not rescanned for every
// one of them.
func TestLockoutFullTableScannedOncePerExpiry(t *testing.T) {
	clk := newFakeClock()
	lo := NewLockout(LockoutConfig{Clock: clk, MaxSources: 2})
	lo.Fail(netip.MustParseAddr("192.0.2.1"))
	lo.Fail(netip.MustParseAddr("192.0.2.2"))
	lo.Fail(netip.MustParseAddr("192.0.2.3")) // full: scans, finds nothing
	lo.mu.Lock()
	next := lo.noExpiryBefore
	lo.mu.Unlock()
	if want := clk.Now().Add(DefaultLockoutDuration); !next.Equal(want) {
		t.Fatalf("next scan at %v, want %v (the first expiry)", next, want)
	}
	clk.Advance(DefaultLockoutDuration)
	if lo.Fail(netip.MustParseAddr("192.0.2.3")); lo.Stats().Sources != 1 {
		t.Fatalf("after expiry the table holds %d sources, want 1", lo.Stats().Sources)
	}
}

// BenchmarkLockoutBeginEnd measures what the Listener adds per
// connection: reserving a handshake for a source and ending it, with
// 10,000 other sources tracked.
func BenchmarkLockoutBeginEnd(b *testing.B) {
	lo := NewLockout(LockoutConfig{})
	for i := 0; i < 10000; i++ {
		lo.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	src := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		k, e, err := lo.begin(src, DefaultMaxHandshakesPerSource)
		if err != nil {
			b.Fatal(err)
		}
		lo.end(k, e, endSuccess)
	}
}

// BenchmarkLockoutFullTable measures a new source refused by a full table
// of sources that are all locked out: the table is not rescanned per
// source.
func BenchmarkLockoutFullTable(b *testing.B) {
	lo := NewLockout(LockoutConfig{Threshold: 1, Clock: newFakeClock()})
	for i := 0; i < DefaultMaxSources; i++ {
		lo.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	src := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := lo.begin(src, DefaultMaxHandshakesPerSource); !errors.Is(err, errTableFull) {
			b.Fatal(err)
		}
	}
}
