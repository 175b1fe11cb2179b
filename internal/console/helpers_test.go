package console

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testToken = "00112233445566778899aabbccddeeff"

// fakeSessions is a Sessions with a status the test sets.
type fakeSessions struct {
	mu sync.Mutex
	st service.SupervisorStatus
}

func (f *fakeSessions) Snapshot() service.SupervisorStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeSessions) set(sessions ...service.SupervisorSession) {
	f.mu.Lock()
	f.st = service.SupervisorStatus{Role: relay.RoleSupervisor, Sessions: sessions}
	f.mu.Unlock()
}

// fakeListener answers offers with a fixed answer and reports levels the
// test sets.
type fakeListener struct {
	mu     sync.Mutex
	levels map[string]Levels
	offers []string
}

func (f *fakeListener) Answer(_ context.Context, session, offer string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if session == "gone" {
		return "", errors.New("session gone is not played here")
	}
	f.offers = append(f.offers, session+"|"+offer)
	return "v=0\r\nanswer-for " + session + "\r\n", nil
}

func (f *fakeListener) Levels() map[string]Levels {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]Levels{}
	for k, v := range f.levels {
		out[k] = v
	}
	return out
}

func (f *fakeListener) Close() error { return nil }

// fakeClock makes tickers that fire only when the test says.
type fakeClock struct {
	mu      sync.Mutex
	tickers map[time.Duration][]*fakeTicker
	made    chan time.Duration
}

type fakeTicker struct{ c chan time.Time }

func (t *fakeTicker) C() <-chan time.Time { return t.c }
func (t *fakeTicker) Stop()               {}

func newFakeClock() *fakeClock {
	return &fakeClock{tickers: map[time.Duration][]*fakeTicker{}, made: make(chan time.Duration, 64)}
}

func (c *fakeClock) NewTicker(d time.Duration) Ticker {
	t := &fakeTicker{c: make(chan time.Time, 1)}
	c.mu.Lock()
	c.tickers[d] = append(c.tickers[d], t)
	c.mu.Unlock()
	c.made <- d
	return t
}

// tick fires every ticker of period d.
func (c *fakeClock) tick(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tickers[d] {
		select {
		case t.c <- time.Time{}:
		default:
		}
	}
}

// waitTicker waits until a ticker of period d exists.
func (c *fakeClock) waitTicker(t *testing.T, d time.Duration) {
	t.Helper()
	for {
		c.mu.Lock()
		n := len(c.tickers[d])
		c.mu.Unlock()
		if n > 0 {
			return
		}
		select {
		case <-c.made:
		case <-time.After(10 * time.Second):
			t.Fatalf("no ticker of %v was made", d)
		}
	}
}

// startTest starts a console on a free loopback port with cfg (Token,
// Sessions and Clock filled in when empty).
func startTest(t *testing.T, cfg Config) (*Server, string) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.Sessions == nil {
		cfg.Sessions = &fakeSessions{}
	}
	if cfg.Clock == nil {
		cfg.Clock = newFakeClock()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { s.Close() })
	scheme := "http://"
	if cfg.TLS != nil {
		scheme = "https://"
	}
	return s, scheme + s.Addr().String()
}

// noRedirect is a client that does not follow redirects.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends a request with the headers given as "Name: value" strings.
func do(t *testing.T, c *http.Client, method, url string, body io.Reader, headers ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	if c == nil {
		c = noRedirect
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// event is one server-sent event.
type event struct{ name, data string }

// readEvents reads the events of an open stream into a channel.
func readEvents(t *testing.T, body io.Reader) <-chan event {
	ch := make(chan event, 64)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		var ev event
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					ch <- ev
				}
				ev = event{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return ch
}

// next returns the next event named name, skipping others.
func next(t *testing.T, ch <-chan event, name string) event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the event stream ended before a %s event", name)
			}
			if ev.name == name {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event", name)
		}
	}
}

// freeLoopback returns a loopback address whose port no other call
// returned.
func freeLoopback(t *testing.T) string {
	t.Helper()
	return testutil.FreeAddr(t, "127.0.0.1")
}

// collect returns the first event of each name, in whatever order they
// come.
func collect(t *testing.T, ch <-chan event, names ...string) map[string]event {
	t.Helper()
	out := map[string]event{}
	timeout := time.After(10 * time.Second)
	for len(out) < len(names) {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("the event stream ended with %d of the events %v", len(out), names)
			}
			if _, seen := out[ev.name]; !seen {
				out[ev.name] = ev
			}
		case <-timeout:
			t.Fatalf("got only %v of the events %v", out, names)
		}
	}
	return out
}
