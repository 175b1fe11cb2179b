package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/relay"
)

// writeAuditTrails writes two members' trails (sm1 accepted the start,
// sm2 streamed), with one line in both and one torn line.
func writeAuditTrails(t *testing.T) (sm1, sm2 string) {
	t.Helper()
	dir := t.TempDir()
	at := func(m int) time.Time { return time.Date(2026, 3, 1, 9, m, 0, 0, time.UTC) }
	sup := "10.0.1.5:42228"
	write := func(name string, recs []audit.Record, extra string) string {
		var b bytes.Buffer
		for _, r := range recs {
			if r.Endpoints == nil {
				r.Endpoints = []string{}
			}
			line, _ := json.Marshal(&r)
			b.Write(append(line, '\n'))
		}
		b.WriteString(extra)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stop := audit.Record{Time: at(30), Member: "sm1", Action: audit.ActionStop, Result: audit.ResultAccepted, SessionID: "5f0c", Agent: "1001", ClientSubject: "CN=admin"}
	sm1 = write("sm1.log", []audit.Record{
		{Time: at(0), Member: "sm1", Action: audit.ActionStart, Result: audit.ResultAccepted, SessionID: "5f0c", Agent: "1001", Endpoints: []string{"10.0.0.11"}, Supervisor: sup, ClientSubject: "CN=admin", Until: at(59)},
		{Time: at(5), Member: "sm1", Action: audit.ActionStart, Result: audit.ResultRefused, Reason: "agent 1002 is unknown", Agent: "1002", Source: "10.0.1.9:5000"},
		stop,
		{Time: at(30), Member: "sm1", Action: audit.ActionEnd, Reason: audit.ReasonStopped, SessionID: "5f0c", Agent: "1001", Supervisor: sup},
	}, `{"time":"2026-03-01T09:31:00Z","action":"st`+"\n")
	sm2 = write("sm2.log", []audit.Record{
		{Time: at(1), Member: "sm2", Action: audit.ActionSupervisorConnected, Supervisor: sup, SupervisorSubject: "CN=sup1"},
		{Time: at(1), Member: "sm2", Action: audit.ActionCaptureBegin, SessionID: "5f0c", Agent: "1001", Supervisor: sup},
		{Time: at(2), Member: "sm2", Action: audit.ActionRecordFailed, SessionID: "5f0c", Agent: "1001", Reason: "no space left on device", File: "/rec/5f0c.pcap"},
		{Time: at(30), Member: "sm2", Action: audit.ActionCaptureEnd, SessionID: "5f0c", Agent: "1001", Supervisor: sup, Packets: 90000},
		stop, // copied here by hand: a duplicate to remove
	}, "")
	return sm1, sm2
}

func TestAuditFile(t *testing.T) {
	sm1, sm2 := writeAuditTrails(t)
	tests := []struct {
		name string
		args []string
		// want: "member action session" of each record, in order.
		want       []string
		wantStderr string
	}{
		{
			name:       "both members merged",
			args:       []string{"--file", sm1, "--file", sm2},
			want:       []string{"sm1 start 5f0c", "sm2 supervisor-connected ", "sm2 capture-begin 5f0c", "sm2 record-failed 5f0c", "sm1 start ", "sm1 stop 5f0c", "sm1 end 5f0c", "sm2 capture-end 5f0c"},
			wantStderr: "skipped 1 malformed lines of 5 in " + sm1,
		},
		{
			name: "glob pattern",
			args: []string{"--file", filepath.Join(filepath.Dir(sm1), "sm*.log"), "--agent", "1002"},
			want: []string{"sm1 start "},
		},
		{
			name: "agent in a window",
			args: []string{"--file", sm1, "--file", sm2, "--agent", "1001", "--since", "2026-03-01T09:01:00Z", "--until", "2026-03-01T09:30:00Z"},
			want: []string{"sm2 supervisor-connected ", "sm2 capture-begin 5f0c", "sm2 record-failed 5f0c"},
		},
		{
			name: "session",
			args: []string{"--file", sm2, "--session", "5f0c", "--since", "2026-03-01T09:02:00+00:00"},
			// Records of equal times keep the order of the file.
			want: []string{"sm2 record-failed 5f0c", "sm2 capture-end 5f0c", "sm1 stop 5f0c"},
		},
		{
			name: "nothing before a long time ago",
			args: []string{"--file", sm1, "--until", "87600h"},
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := cli.Run(newRootCmd(), append([]string{"audit", "--json"}, tc.args...), &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if l == "" {
					continue
				}
				var r audit.Record
				if err := json.Unmarshal([]byte(l), &r); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				got = append(got, r.Member+" "+r.Action+" "+r.SessionID)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if tc.wantStderr != "" && !strings.Contains(errb.String(), tc.wantStderr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tc.wantStderr)
			}
		})
	}
}

func TestAuditTable(t *testing.T) {
	sm1, sm2 := writeAuditTrails(t)
	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), []string{"audit", "--file", sm1, "--file", sm2, "--session", "5f0c"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{
		"TIME", "2026-03-01T09:00:00Z", "CN=admin", "until 2026-03-01T09:59:00Z", "endpoints 10.0.0.11",
		"CN=sup1", "90000 packets", "no space left on device; file /rec/5f0c.pcap", "stopped; supervisor 10.0.1.5:42228",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := cli.Run(newRootCmd(), []string{"audit", "--file", sm1, "--agent", "none"}, &out, &errb); code != 0 || strings.TrimSpace(out.String()) != "no audit records match" {
		t.Errorf("no match: exit %d, %q", code, out.String())
	}
}

func TestAuditErrors(t *testing.T) {
	sm1, _ := writeAuditTrails(t)
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"audit"}, cli.ExitUsage, "--file PATH is required"},
		{[]string{"audit", "--server", closedPort(t), "--insecure", "--timeout", "1s"}, cli.ExitFailed, "reach"},
		{[]string{"audit", "--server", "127.0.0.1:42228", "--file", sm1}, cli.ExitUsage, "not both"},
		{[]string{"audit", "--file", filepath.Join(t.TempDir(), "missing.log")}, cli.ExitFailed, "missing.log"},
		{[]string{"audit", "--file", filepath.Join(t.TempDir(), "none*")}, cli.ExitFailed, "none*"},
		{[]string{"audit", "--file", sm1, "--since", "yesterday"}, cli.ExitUsage, "yesterday"},
		{[]string{"audit", "--file", sm1, "--until", "-2h"}, cli.ExitUsage, "-2h"},
		{[]string{"audit", "--file", sm1, "--since", "1h", "--until", "2h"}, cli.ExitUsage, "not before"},
		{[]string{"audit", "--file", sm1, "extra"}, cli.ExitUsage, "extra"},
	} {
		var out, errb bytes.Buffer
		code := cli.Run(newRootCmd(), tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.msg) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line naming %q", tt.args, code, errb.String(), tt.code, tt.msg)
		}
	}
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"2h", now.Add(-2 * time.Hour), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"0s", now, true},
		{"2026-03-01T09:30:00Z", time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC), true},
		{"2026-03-01T10:30:00.5+01:00", time.Date(2026, 3, 1, 9, 30, 0, 5e8, time.UTC), true},
		{"-2h", time.Time{}, false},
		{"2026-03-01", time.Time{}, false},
		{"2d", time.Time{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseWhen("--since", tc.in, now)
			if (err == nil) != tc.ok || !got.Equal(tc.want) {
				t.Errorf("parseWhen(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
			}
			if err != nil && cli.CodeOf(err) != cli.ExitUsage {
				t.Errorf("parseWhen(%q) error exits %d, want %d", tc.in, cli.CodeOf(err), cli.ExitUsage)
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// auditServer is a capture server's relay side that answers audit
// queries from a fixed trail, two records per page, and names a member
// that did not answer.
type auditServer struct {
	relay.MediaOnly
	recs  []audit.Record
	pages atomic.Int32
}

func (h *auditServer) Status(context.Context, *relay.Peer) (any, error) { return nil, nil }
func (h *auditServer) Media(*relay.Peer, *relay.MediaFrame) error       { return nil }
func (h *auditServer) Closed(*relay.Peer, error)                        {}

func (h *auditServer) AuditQuery(_ context.Context, p *relay.Peer, req *relay.AuditQuery) (*relay.AuditReply, error) {
	h.pages.Add(1)
	if req.Agent == "intruder" {
		return nil, &relay.Error{Code: relay.CodeUnauthorized, Message: "only an administrator may query the audit trail"}
	}
	q := audit.Query{Agent: req.Agent, Session: req.Session}
	var err error
	if req.Since != "" {
		if q.Since, err = time.Parse(time.RFC3339Nano, req.Since); err != nil {
			return nil, &relay.Error{Code: relay.CodeBadRequest, Message: err.Error()}
		}
	}
	if req.Until != "" {
		if q.Until, err = time.Parse(time.RFC3339Nano, req.Until); err != nil {
			return nil, &relay.Error{Code: relay.CodeBadRequest, Message: err.Error()}
		}
	}
	recs := audit.Select(h.recs, q)
	rep := &relay.AuditReply{Records: []json.RawMessage{}, Members: []relay.AuditMember{
		{Name: "sm1", Malformed: 1}, {Name: "sm2"}, {Name: "sm3", Error: "member sm3: no reply within 2s"}}}
	// Two new records per page, plus those at since; runs whole.
	counted := 0
	for i, r := range recs {
		if counted >= 2 && !r.Time.Equal(recs[i-1].Time) {
			rep.Truncated = true
			break
		}
		if !r.Time.Equal(q.Since) {
			counted++
		}
		b, _ := json.Marshal(&r)
		rep.Records = append(rep.Records, b)
	}
	return rep, nil
}

func startAuditServer(t *testing.T, recs []audit.Record) (*auditServer, string) {
	t.Helper()
	h := &auditServer{recs: recs}
	srv := relay.NewServer(relay.ServerConfig{Handler: h, Logger: slog.New(slog.DiscardHandler), Name: "sm1"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return h, ln.Addr().String()
}

// TestAuditServer: smctl audit --server follows the pages of an
// in-process server (a dead --server first: failover), prints the same
// records as --file, names the member that did not answer on stderr and
// exits 0; a refusal exits 1.
func TestAuditServer(t *testing.T) {
	sm1, sm2 := writeAuditTrails(t)
	all, _, err := audit.ReadFile(filepath.Join(filepath.Dir(sm1), "sm*.log"), audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	h, addr := startAuditServer(t, all)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"everything", nil},
		{"agent in a window", []string{"--agent", "1001", "--since", "2026-03-01T09:01:00Z", "--until", "2026-03-01T09:30:00Z"}},
		{"session", []string{"--session", "5f0c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var want, wantErr bytes.Buffer
			if code := cli.Run(newRootCmd(), append([]string{"audit", "--json", "--file", sm1, "--file", sm2}, tc.args...), &want, &wantErr); code != 0 {
				t.Fatalf("--file: exit %d: %s", code, wantErr.String())
			}
			h.pages.Store(0)
			var out, errb bytes.Buffer
			args := append([]string{"audit", "--json", "--insecure", "--server", closedPort(t), "--server", addr}, tc.args...)
			if code := cli.Run(newRootCmd(), args, &out, &errb); code != 0 {
				t.Fatalf("--server: exit %d: %s", code, errb.String())
			}
			if out.String() != want.String() {
				t.Errorf("--server printed\n%s\n--file printed\n%s", out.String(), want.String())
			}
			if !strings.Contains(errb.String(), "incomplete answer: member sm3 did not answer: member sm3: no reply within 2s") ||
				!strings.Contains(errb.String(), "member sm1 skipped 1 malformed lines") {
				t.Errorf("stderr %q does not name sm3 and sm1's malformed line", errb.String())
			}
			t.Logf("%d pages", h.pages.Load())
		})
	}
	if h.pages.Load() < 2 {
		t.Errorf("the last query took %d pages, want several", h.pages.Load())
	}

	var out, errb bytes.Buffer
	code := cli.Run(newRootCmd(), []string{"audit", "--insecure", "--server", addr, "--agent", "intruder"}, &out, &errb)
	if code != cli.ExitFailed || !strings.Contains(errb.String(), "only an administrator") {
		t.Errorf("refused: exit %d, stderr %q; want exit 1 naming the refusal", code, errb.String())
	}
}
