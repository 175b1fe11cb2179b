package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

// bigServer is a capture server whose status holds n sessions of three
// endpoints each.
type bigServer struct {
	fakeServer
	n int
}

func (b bigServer) Status(context.Context, *relay.Peer) (any, error) {
	st := &status.ServerStatus{Server: "big-1", Version: relay.Version, Source: "pcap:x", Sessions: make([]status.SessionStatus, b.n),
		Supervisors: []relay.SenderStats{{Supervisor: "127.0.0.1:9", State: "connecting"}}}
	for i := range st.Sessions {
		st.Sessions[i] = status.SessionStatus{ID: fmt.Sprintf("%032x", i), Agent: fmt.Sprint(10000 + i),
			Endpoints:  []string{fmt.Sprintf("10.0.%d.%d", i>>8&255, i&255), fmt.Sprintf("10.1.%d.%d", i>>8&255, i&255), "10.2.0.1:20000-20999"},
			Supervisor: "127.0.0.1:9", SupervisorState: "connecting", Streams: []status.StreamStatus{}}
	}
	return st, nil
}

// TestStatusTenThousandSessions: smctl status --json against a server
// holding 10,000 sessions prints one valid JSON object with every session
// (the status comes in parts; the old smctl failed with "frame too
// large"), and the table prints a summary and a row for each.
func TestStatusTenThousandSessions(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	srv := relay.NewServer(relay.ServerConfig{Handler: bigServer{n: n}, Logger: slog.New(slog.DiscardHandler)})
	go srv.Serve(ln)
	defer srv.Close()
	addr := ln.Addr().String()

	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), []string{"status", "--json", "--server", addr, "--insecure"}, &out, &errb); code != 0 {
		t.Fatalf("status --json exited %d: %s", code, errb.String())
	}
	var st status.ServerStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("status --json printed %d bytes that are not one JSON object: %v", out.Len(), err)
	}
	seen := map[string]bool{}
	for _, x := range st.Sessions {
		seen[x.ID] = true
	}
	if st.Server != "big-1" || len(st.Sessions) != n || len(seen) != n || len(st.Supervisors) != 1 {
		t.Fatalf("server %q, %d sessions (%d distinct), %d supervisors; want big-1, %d, 1", st.Server, len(st.Sessions), len(seen), len(st.Supervisors), n)
	}

	out.Reset()
	errb.Reset()
	if code := cli.Run(newRootCmd(), []string{"status", "--server", addr, "--insecure"}, &out, &errb); code != 0 {
		t.Fatalf("status exited %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "10000 monitor sessions, 1 supervisor connections (0 unreachable)") {
		t.Fatalf("no summary in %.300q", out.String())
	}
	if rows := strings.Count(out.String(), "\n  requested by "); rows != n {
		t.Fatalf("%d session rows, want %d", rows, n)
	}
}
