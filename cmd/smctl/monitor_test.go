package main

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/relay"
)

// fakeServer starts a session with id "s1" and knows no other.
type fakeServer struct{ relay.MediaOnly }

func (fakeServer) StartMonitor(_ context.Context, _ *relay.Peer, req *relay.StartMonitor) (*relay.SessionStatus, error) {
	if req.IdempotencyKey == "" || req.ForMS != 8*3600*1000 {
		return nil, &relay.Error{Code: relay.CodeBadRequest, Message: "no key or not 8h"}
	}
	return &relay.SessionStatus{Session: "s1", State: relay.SessionStarted}, nil
}

func (fakeServer) StopMonitor(_ context.Context, _ *relay.Peer, req *relay.StopMonitor) (*relay.SessionStatus, error) {
	if req.Session != "s1" {
		return nil, &relay.Error{Code: relay.CodeUnknown, Message: "session " + req.Session + " does not exist"}
	}
	return &relay.SessionStatus{Session: "s1", State: relay.SessionStopped}, nil
}

func (fakeServer) Status(context.Context, *relay.Peer) (any, error) { return map[string]any{}, nil }
func (fakeServer) Closed(*relay.Peer, error)                        {}
func (fakeServer) Media(*relay.Peer, *relay.MediaFrame) error       { return nil }

func TestMonitorExitCodes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := relay.NewServer(relay.ServerConfig{Handler: fakeServer{}, Logger: slog.New(slog.DiscardHandler)})
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()
	start := []string{"monitor", "start", "--server", addr, "--insecure", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"start for 8h", append(start, "--for", "8h"), 0, "s1"},
		{"start refused", start, 1, "refused"},
		{"lifetime zero", append(start, "--for", "0s"), 2, "--for"},
		{"lifetime too long", append(start, "--for", "721h"), 2, "--for"},
		{"bad request key", append(start, "--for", "8h", "--request-key", "../x"), 2, "../x"},
		{"bad agent", []string{"monitor", "start", "--server", addr, "--insecure", "--agent", "a/b", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9"}, 2, "a/b"},
		{"stop", []string{"monitor", "stop", "--server", addr, "--insecure", "--session", "s1"}, 0, "stopped s1"},
		{"stop unknown", []string{"monitor", "stop", "--server", addr, "--insecure", "--session", "s2"}, 1, "does not exist"},
		{"stop a path", []string{"monitor", "stop", "--server", addr, "--insecure", "--session", "x/../../outside/pwned"}, 2, "x/../../outside/pwned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cli.Run(newRootCmd(), tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.out) {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q, want %q", code, tc.code, out.String(), errb.String(), tc.out)
			}
		})
	}
}
