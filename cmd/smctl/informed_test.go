package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

// watchServer answers a watch of agent 1001 (monitored by s1) and 1002
// (not monitored), then pushes two changes; it records whether a start
// asked to inform the agent.
type watchServer struct {
	relay.MediaOnly
	mu     sync.Mutex
	inform []bool
}

func (w *watchServer) StartMonitor(_ context.Context, _ *relay.Peer, req *relay.StartMonitor) (*relay.SessionStatus, error) {
	w.mu.Lock()
	w.inform = append(w.inform, req.InformAgent)
	w.mu.Unlock()
	return &relay.SessionStatus{Session: "s9", State: relay.SessionStarted, Agent: req.Agent, Informed: req.InformAgent}, nil
}

func (w *watchServer) AgentWatch(_ context.Context, _ *relay.Peer, req *relay.AgentWatch, push func(relay.AgentEvent) error) (*relay.AgentEvents, error) {
	var evs []relay.AgentEvent
	for _, a := range req.Agents {
		if a == "1001" {
			evs = append(evs, relay.AgentEvent{Agent: a, State: relay.AgentMonitored, Sessions: []string{"s1"}})
		} else {
			evs = append(evs, relay.AgentEvent{Agent: a, State: relay.AgentNotMonitored})
		}
	}
	// Pushed after the reply is written (the server holds them).
	push(relay.AgentEvent{Agent: "1002", State: relay.AgentMonitored, Sessions: []string{"s2"}})
	push(relay.AgentEvent{Agent: "1001", State: relay.AgentNotMonitored})
	return &relay.AgentEvents{Events: evs}, nil
}

func (w *watchServer) Status(context.Context, *relay.Peer) (any, error) { return map[string]any{}, nil }
func (w *watchServer) Closed(*relay.Peer, error)                        {}
func (w *watchServer) Media(*relay.Peer, *relay.MediaFrame) error       { return nil }

func serveRelay(t *testing.T, h relay.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := relay.NewServer(relay.ServerConfig{Handler: h, Logger: slog.New(slog.DiscardHandler)})
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// TestAgentsWatch: smctl agents watch prints each watched agent's
// current state, then each change, one line each (text or JSON), and
// exits after --count changes; bad arguments exit 2.
func TestAgentsWatch(t *testing.T) {
	addr := serveRelay(t, &watchServer{})
	base := []string{"agents", "watch", "--insecure", "--server", addr, "--agent", "1001", "--agent", "1002", "--count", "2"}
	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), base, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	want := "agent 1001 monitored (sessions s1)\nagent 1002 not-monitored\nagent 1002 monitored (sessions s2)\nagent 1001 not-monitored\n"
	if out.String() != want {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	if code := cli.Run(newRootCmd(), append(base, "--json"), &out, &errb); code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("--json output %q", out.String())
	}
	var e relay.AgentEvent
	if err := json.Unmarshal([]byte(lines[2]), &e); err != nil || e.Agent != "1002" || e.State != relay.AgentMonitored || e.Sessions[0] != "s2" {
		t.Fatalf("line %q: %+v %v", lines[2], e, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agents", "watch", "--insecure", "--server", addr}, "--agent ID is required"},
		{[]string{"agents", "watch", "--insecure", "--server", addr, "--agent", "a b"}, `Agent "a b" is not`},
		{[]string{"agents", "watch", "--insecure", "--server", addr, "--agent", "1001", "--count", "-1"}, "--count -1"},
	} {
		var out, errb bytes.Buffer
		if code := cli.Run(newRootCmd(), tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

// TestAgentsWatchInterrupted: without --count, the watch lasts until the
// command's context ends (Ctrl-C), then exits 0.
func TestAgentsWatchInterrupted(t *testing.T) {
	addr := serveRelay(t, &watchServer{})
	ctx, cancel := context.WithCancel(context.Background())
	var out lockedWriter
	cmd := newRootCmd()
	cmd.SetArgs([]string{"agents", "watch", "--insecure", "--server", addr, "--agent", "1001"})
	cmd.SetOut(&out)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "agent 1001 not-monitored") {
		if time.Now().After(deadline) {
			t.Fatalf("no change printed: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("interrupted watch: %v", err)
	}
}

type lockedWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMonitorInformAgent: --inform-agent asks the server to mark the
// session "agent informed"; without it the start is silent.
func TestMonitorInformAgent(t *testing.T) {
	w := &watchServer{}
	addr := serveRelay(t, w)
	start := []string{"monitor", "start", "--insecure", "--server", addr, "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9", "--json"}
	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), append(start, "--inform-agent"), &out, &errb); code != 0 || !strings.Contains(out.String(), `"informed": true`) {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := cli.Run(newRootCmd(), start, &out, &errb); code != 0 || strings.Contains(out.String(), "informed") {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.inform) != 2 || !w.inform[0] || w.inform[1] {
		t.Fatalf("inform_agent sent %v, want [true false]", w.inform)
	}
}

// TestStatusShowsInformed: smctl status says "agent informed" on an
// informed session's line and nothing of it on a silent one's.
func TestStatusShowsInformed(t *testing.T) {
	if d := sessionDetails(status.SessionStatus{Informed: true, SupervisorState: "connected"}, time.Time{}); !strings.HasSuffix(d, ", agent informed") {
		t.Fatalf("informed: %q", d)
	}
	if d := sessionDetails(status.SessionStatus{SupervisorState: "connected"}, time.Time{}); strings.Contains(d, "informed") {
		t.Fatalf("silent: %q", d)
	}
}
