package service

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// syncBuffer is a log destination the server goroutines may write to
// while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestProfilesOnlyOnDebugAddress checks that the metrics address serves no
// profile (404) and that the debug address serves them.
func TestProfilesOnlyOnDebugAddress(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	m, err := StartMetrics("127.0.0.1:0", prometheus.NewRegistry(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d, err := StartDebug("127.0.0.1:0", log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline", "/debug/pprof/heap"} {
		if code, _ := get(t, "http://"+m.Addr().String()+path); code != http.StatusNotFound {
			t.Errorf("metrics address %s: status %d, want 404", path, code)
		}
		if code, body := get(t, "http://"+d.Addr().String()+path); code != http.StatusOK || body == "" {
			t.Errorf("debug address %s: status %d, %d bytes; want 200 with a profile", path, code, len(body))
		}
	}
	if code, body := get(t, "http://"+m.Addr().String()+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("metrics address /metrics: status %d", code)
	}
}

// TestDebugOffByDefault checks that an empty address serves nothing and
// that closing the nil server is harmless.
func TestDebugOffByDefault(t *testing.T) {
	d, err := StartDebug("", slog.New(slog.DiscardHandler))
	if err != nil || d != nil {
		t.Fatalf("StartDebug(\"\") = %v, %v; want nil, nil", d, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDebugWarnsOffLoopback checks the warning for an address that is not
// loopback, and its absence on loopback.
func TestDebugWarnsOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{{"127.0.0.1:0", false}, {"[::1]:0", false}, {"0.0.0.0:0", true}, {":0", true}} {
		t.Run(tc.addr, func(t *testing.T) {
			var buf syncBuffer
			d, err := StartDebug(tc.addr, slog.New(slog.NewTextHandler(&buf, nil)))
			if err != nil {
				if strings.HasPrefix(tc.addr, "[::1]") {
					t.Skipf("no IPv6 loopback here: %v", err)
				}
				t.Fatal(err)
			}
			d.Close()
			if got := strings.Contains(buf.String(), "level=WARN"); got != tc.warn {
				t.Errorf("address %s: warned %v, want %v; log:\n%s", tc.addr, got, tc.warn, buf.String())
			}
		})
	}
}

// TestDebugBadAddress checks that an address that cannot be listened on
// is an error naming it.
func TestDebugBadAddress(t *testing.T) {
	_, err := StartDebug("127.0.0.1:99999", slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `"127.0.0.1:99999"`) {
		t.Fatalf("error %v; want one naming the address", err)
	}
}
