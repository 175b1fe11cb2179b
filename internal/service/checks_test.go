package service

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	smtls "github.com/silentmon/silentmon/tls"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestHeartbeats: a loop is healthy while it turns within 3 periods (at
// least 10 s), named when it has not turned for longer or when it
// stopped, healthy again once restarted; a loop that is done, or waiting
// for its input, is not checked.
func TestHeartbeats(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	h := NewHeartbeats(clk.now)
	keeper := h.Add("session keeper", time.Second)          // bound 10 s
	worker := h.Add("capture worker eth0#0", 5*time.Second) // bound 15 s
	replay := h.Add("capture worker calls.pcap", time.Second)
	if err := h.Check(); err != nil {
		t.Fatalf("fresh loops: %v", err)
	}
	clk.add(9 * time.Second)
	keeper.Beat()
	worker.Beat()
	replay.Done()
	clk.add(11 * time.Second)
	worker.Beat()
	err := h.Check()
	if err == nil || err.Error() != "loop session keeper has not turned for 11s (bound 10s)" || !errors.Is(err, ErrLoopStuck) {
		t.Fatalf("keeper stuck for 11 s: %v", err)
	}
	keeper.Beat()
	worker.Stopped(errors.New("read: network is down"))
	err = h.Check()
	if err == nil || err.Error() != "loop capture worker eth0#0 stopped: read: network is down" || !errors.Is(err, ErrLoopStopped) {
		t.Fatalf("worker stopped: %v", err)
	}
	worker.Restarted()
	if err := h.Check(); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	// A loop blocked on its input is not stuck; back from it, it is
	// checked again.
	worker.Waiting()
	clk.add(time.Minute)
	keeper.Beat()
	if err := h.Check(); err != nil {
		t.Fatalf("worker waiting for frames a minute: %v", err)
	}
	worker.Beat()
	keeper.Beat()
	clk.add(time.Minute)
	err = h.Check()
	if err == nil || strings.Count(err.Error(), "\n") != 1 || !strings.Contains(err.Error(), "loop session keeper has not turned for 1m0s") ||
		!strings.Contains(err.Error(), "loop capture worker eth0#0 has not turned for 1m0s (bound 15s)") {
		t.Fatalf("both stuck: %v", err)
	}
	h.Remove(keeper)
	h.Remove(worker)
	if err := h.Check(); err != nil {
		t.Fatalf("after Remove: %v", err)
	}
}

// TestHealthzNamesLoops: /healthz answers 503 with one "not ok" line per
// loop that stopped turning, 200 "ok" otherwise.
func TestHealthzNamesLoops(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)}
	h := NewHeartbeats(clk.now)
	a := h.Add("forwarder", time.Second)
	b := h.Add("relay accept loop", time.Second)
	m, err := StartMetrics("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.AddHealth(Check{Name: "loops", Check: h.Check})
	url := "http://" + m.Addr().String() + "/healthz"
	if code, body := get(t, url); code != 200 || body != "ok" {
		t.Fatalf("turning: %d %q", code, body)
	}
	clk.add(30 * time.Second)
	a.Beat()
	b.Stopped(nil)
	code, body := get(t, url)
	if code != 503 || body != "not ok: loop relay accept loop stopped" {
		t.Fatalf("accept loop stopped: %d %q", code, body)
	}
	b.Restarted()
	clk.add(30 * time.Second)
	code, body = get(t, url)
	want := "not ok: loop forwarder has not turned for 30s (bound 10s)\nnot ok: loop relay accept loop has not turned for 30s (bound 10s)"
	if code != 503 || body != want {
		t.Fatalf("both stuck: %d %q, want %q", code, body, want)
	}
}

// TestReadyz: /readyz lists every check, the failures first with their
// reason (one line per reason), 503 while one fails, 200 with "ready"
// lines otherwise; a note passes.
func TestReadyz(t *testing.T) {
	m, err := StartMetrics("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	url := "http://" + m.Addr().String() + "/readyz"
	if code, body := get(t, url); code != 200 || body != "ready" {
		t.Fatalf("no checks: %d %q", code, body)
	}
	var mu sync.Mutex
	capture, cluster := error(nil), error(nil)
	m.AddReady(Check{Name: "capture", Check: func() error { mu.Lock(); defer mu.Unlock(); return capture }},
		Check{Name: "cluster", Check: func() error { mu.Lock(); defer mu.Unlock(); return cluster }})
	set := func(c, cl error) { mu.Lock(); capture, cluster = c, cl; mu.Unlock() }
	for _, tc := range []struct {
		name     string
		capture  error
		cluster  error
		wantCode int
		wantBody string
	}{
		{"all ready", nil, nil, 200, "capture: ready\ncluster: ready"},
		{"replay finished", Note("replay finished"), nil, 200, "capture: ready, replay finished\ncluster: ready"},
		{"carrier down", errors.New("eth1: no carrier (cable unplugged or the switch port down)"), nil, 503,
			"capture: eth1: no carrier (cable unplugged or the switch port down)\ncluster: ready"},
		{"two peers", nil, errors.Join(errors.New("no route to peer b"), errors.New("no route to peer c")), 503,
			"cluster: no route to peer b\ncluster: no route to peer c\ncapture: ready"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set(tc.capture, tc.cluster)
			if code, body := get(t, url); code != tc.wantCode || body != tc.wantBody {
				t.Errorf("/readyz = %d %q, want %d %q", code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

// TestCertificateCheck: the certificate check fails for a certificate
// valid for 14 days or less, expired or unreadable, naming the file, the
// days left and the date; it passes beyond 14 days.
func TestCertificateCheck(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	var list []Expiry
	c := CertificateCheck(func() time.Time { return now }, 0, func() []Expiry { return list })
	for _, tc := range []struct {
		name string
		list []Expiry
		want string
	}{
		{"valid a year", []Expiry{{File: "CtiosServer.pem", NotAfter: now.Add(365 * day)}}, ""},
		{"15 days", []Expiry{{File: "CtiosServer.pem", NotAfter: now.Add(15 * day)}}, ""},
		{"9 days", []Expiry{{File: "CtiosServer.pem", NotAfter: now.Add(9*day + time.Hour)}},
			"CtiosServer.pem expires in 9 days (2026-12-11)"},
		{"expired and unreadable", []Expiry{
			{File: "CtiosRootCert.pem", NotAfter: now.Add(-3 * day)},
			{File: "CtiosClient.pem", Err: errors.New("open CtiosClient.pem: permission denied")}},
			"CtiosRootCert.pem expired 3 days ago (2026-11-29)\nCtiosClient.pem cannot be read: open CtiosClient.pem: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list = tc.list
			err := c.Check()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("check = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestStoreAndFileExpiries: the certificate check's two sources agree on
// a quickstart set: the store's certificates in use and the files; a
// missing file is reported, not skipped.
func TestStoreAndFileExpiries(t *testing.T) {
	dir := t.TempDir()
	if err := smtls.Quickstart(dir, smtls.QuickstartOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := smtls.NewStore(dir, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ServerConfig([]smtls.Role{smtls.RoleCapture}, []smtls.Role{smtls.RoleClient}); err != nil {
		t.Fatal(err) // the store holds the certificates of the links made
	}
	fromStore := map[string]time.Time{}
	for _, x := range StoreExpiries(st)() {
		fromStore[x.File] = x.NotAfter
	}
	files := FileExpiries(dir, smtls.RootCertFile, smtls.ServerFile, "missing.pem")
	for _, x := range files[:2] {
		if x.Err != nil || x.NotAfter.IsZero() || !x.NotAfter.Equal(fromStore[x.File]) {
			t.Errorf("%s: file %v (%v), store %v", x.File, x.NotAfter, x.Err, fromStore[x.File])
		}
	}
	if files[2].Err == nil {
		t.Errorf("missing file: no error")
	}
	now := time.Now()
	c := CertificateCheck(func() time.Time { return now }, 0, StoreExpiries(st))
	if err := c.Check(); err != nil {
		t.Errorf("fresh quickstart set: %v", err)
	}
}
