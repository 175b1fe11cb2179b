package service

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	r, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, strings.TrimSpace(string(b))
}

// TestHealth: /healthz answers 200 "ok" while the check passes and 503
// with the check's reason while it fails; without a check, always ok.
func TestHealth(t *testing.T) {
	var bad atomic.Pointer[error]
	check := func() error {
		if e := bad.Load(); e != nil {
			return *e
		}
		return nil
	}
	log := slog.New(slog.DiscardHandler)
	m, err := ListenMetrics("127.0.0.1:0", prometheus.NewRegistry(), log, check)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Serve()
	plain, err := StartMetrics("127.0.0.1:0", prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	url := "http://" + m.Addr().String() + "/healthz"

	down := errors.New("capture worker 1 (eth0) is down: read: network is down")
	for _, tc := range []struct {
		name     string
		err      error
		wantCode int
		wantBody string
	}{
		{"healthy", nil, 200, "ok"},
		{"worker down", down, 503, "not ok: " + down.Error()},
		{"healthy again", nil, 200, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err != nil {
				bad.Store(&tc.err)
			} else {
				bad.Store(nil)
			}
			code, body := get(t, url)
			if code != tc.wantCode || body != tc.wantBody {
				t.Errorf("/healthz = %d %q, want %d %q", code, body, tc.wantCode, tc.wantBody)
			}
			if code, body := get(t, "http://"+plain.Addr().String()+"/healthz"); code != 200 || body != "ok" {
				t.Errorf("/healthz without a check = %d %q", code, body)
			}
		})
	}
}

// TestMetricsServeLater: ListenMetrics holds the address but answers
// nothing until Serve; Close without Serve releases the address.
func TestMetricsServeLater(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	m, err := ListenMetrics("127.0.0.1:0", prometheus.NewRegistry(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", m.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /healthz HTTP/1.0\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	var ne net.Error
	if n, err := c.Read(make([]byte, 1)); n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("answered before Serve: %d bytes, %v", n, err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	m.Serve()
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(line, "200") {
		t.Fatalf("after Serve: %q %v", line, err)
	}
	m.Close()

	m2, err := ListenMetrics("127.0.0.1:0", prometheus.NewRegistry(), log, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := m2.Addr().String()
	m2.Close()
	m2.Serve() // after Close: nothing
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("address still held after Close without Serve: %v", err)
	}
	ln.Close()
}

// TestBuildInfo: /metrics carries silentmon_build_info 1 with the
// program's version, commit, date and Go release.
func TestBuildInfo(t *testing.T) {
	m, err := StartMetrics("127.0.0.1:0", prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	code, body := get(t, "http://"+m.Addr().String()+"/metrics")
	var line string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "silentmon_build_info{") {
			line = l
		}
	}
	if code != 200 || !strings.HasSuffix(line, "} 1") || !strings.Contains(line, `goversion="`+runtime.Version()+`"`) ||
		!strings.Contains(line, `commit="`) || !strings.Contains(line, `version="`) {
		t.Fatalf("metrics: %d, build info line %q", code, line)
	}
}
