package relay

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// logRecord is one record a recordLog kept, with the test clock's time.
type logRecord struct {
	at    time.Time
	level slog.Level
	msg   string
	attrs map[string]string
}

// recordLog is a slog.Handler that keeps every record. Safe for
// concurrent use.
type recordLog struct {
	clk interface{ Now() time.Time }
	mu  sync.Mutex
	out []logRecord
}

func (h *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordLog) WithGroup(string) slog.Handler            { return h }
func (h *recordLog) Handle(_ context.Context, r slog.Record) error {
	rec := logRecord{at: h.clk.Now(), level: r.Level, msg: r.Message, attrs: map[string]string{}}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.out = append(h.out, rec)
	h.mu.Unlock()
	return nil
}

func (h *recordLog) records(msg string) []logRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []logRecord
	for _, r := range h.out {
		if r.msg == msg {
			out = append(out, r)
		}
	}
	return out
}

// TestForwarderLogsUnreachableSupervisor: a supervisor that refuses
// connections for 5 minutes (simulated) is logged as a warning at the
// first failed attempt, with its address and the reason in one sentence,
// then at most once a minute; the status keeps that sentence as the last
// error and the outage's start; the connection that ends the outage is
// logged as information with the failed attempts. (Before, nothing above
// information was logged while a supervisor stayed unreachable.)
func TestForwarderLogsUnreachableSupervisor(t *testing.T) {
	clk := newManualClock()
	logs := &recordLog{clk: clk}
	fw := NewForwarder(ForwarderConfig{Logger: slog.New(logs), Clock: clk})
	defer fw.Close()
	fw.rand = func() float64 { return 0 }
	_, real := startServer(t, &testHandler{}, ServerConfig{Role: RoleSupervisor, Logger: quiet()})
	var up atomic.Bool
	// The kernel's refusal, as net.Dialer reports it.
	fw.dial = func(ctx context.Context, addr string) (net.Conn, error) {
		if up.Load() {
			return dial(ctx, real, DialConfig{})
		}
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.OpError{Op: "connect", Err: syscall.ECONNREFUSED}}
	}
	const dead = "192.0.2.1:42228"
	const want = "cannot connect to the supervisor at 192.0.2.1:42228: connection refused"
	start := clk.Now()
	fw.Reach(dead)
	clk.runFor(t, start.Add(5*time.Minute))

	warns := logs.records("supervisor unreachable")
	if len(warns) < 4 || len(warns) > 6 {
		t.Fatalf("%d warnings in 5 minutes of refusals, want 4 to 6 (the first at once, then at most one a minute): %+v", len(warns), warns)
	}
	if !warns[0].at.Equal(start) {
		t.Errorf("first warning at +%v, want at the first failed attempt", warns[0].at.Sub(start))
	}
	for i, w := range warns {
		if w.level != slog.LevelWarn || w.attrs["supervisor"] != dead || w.attrs["err"] != want {
			t.Errorf("warning %d: %v %q supervisor=%q err=%q, want WARN naming %s with %q", i, w.level, w.msg, w.attrs["supervisor"], w.attrs["err"], dead, want)
		}
		if i > 0 && w.at.Sub(warns[i-1].at) < UnreachableLogInterval {
			t.Errorf("warnings %d and %d only %v apart, want at least %v", i-1, i, w.at.Sub(warns[i-1].at), UnreachableLogInterval)
		}
	}
	st := fw.Stats()
	if len(st) != 1 || st[0].LastError != want || !st[0].UnreachableSince.Equal(start) || st[0].State != "connecting" {
		t.Fatalf("stats %+v, want connecting, last error %q, unreachable since %v", st, want, start)
	}

	up.Store(true)
	clk.fireNext()
	waitFor(t, "the connection", func() bool { s := fw.Stats(); return len(s) == 1 && s[0].State == "connected" })
	infos := logs.records("connected to supervisor")
	if len(infos) != 1 || infos[0].level != slog.LevelInfo || infos[0].attrs["supervisor"] != dead || infos[0].attrs["failed_attempts"] == "" {
		t.Fatalf("connection logged as %+v, want one INFO naming %s with the failed attempts", infos, dead)
	}
	if n := len(logs.records("supervisor unreachable")); n != len(warns) {
		t.Errorf("%d more warnings after the supervisor came back", n-len(warns))
	}
}
