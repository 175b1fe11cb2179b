package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/relay"
)

// agentsServer is a capture server's relay side that answers agents
// queries from a fixed list sorted by id, in pages of req.Limit, and
// records the queries. Team "Secret" is refused.
type agentsServer struct {
	relay.MediaOnly
	agents []relay.AgentStatus

	mu      sync.Mutex
	queries []relay.AgentsQuery
}

func (h *agentsServer) Status(context.Context, *relay.Peer) (any, error) { return nil, nil }
func (h *agentsServer) Media(*relay.Peer, *relay.MediaFrame) error       { return nil }
func (h *agentsServer) Closed(*relay.Peer, error)                        {}

func (h *agentsServer) AgentsQuery(_ context.Context, _ *relay.Peer, req *relay.AgentsQuery) (*relay.AgentsReply, error) {
	h.mu.Lock()
	h.queries = append(h.queries, *req)
	h.mu.Unlock()
	if req.Team == "Secret" {
		return nil, &relay.Error{Code: relay.CodeUnauthorized, Message: "this certificate may not list team Secret"}
	}
	rep := &relay.AgentsReply{}
	for _, a := range h.agents {
		if a.ID <= req.After || (req.Team != "" && a.Team != req.Team) {
			continue
		}
		if len(rep.Agents) == req.Limit {
			rep.More = true
			break
		}
		rep.Agents = append(rep.Agents, a)
	}
	return rep, nil
}

func (h *agentsServer) seen() []relay.AgentsQuery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]relay.AgentsQuery(nil), h.queries...)
}

// startRelayServer serves h on a loopback port without TLS.
func startRelayServer(t *testing.T, h relay.Handler) string {
	t.Helper()
	srv := relay.NewServer(relay.ServerConfig{Handler: h, Logger: slog.New(slog.DiscardHandler), Name: "sm1"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return ln.Addr().String()
}

// manyAgents returns n idle agents a0000, a0001, ... of team Billing,
// every third of team Sales with a registered phone.
func manyAgents(n int) []relay.AgentStatus {
	out := make([]relay.AgentStatus, n)
	for i := range out {
		out[i] = relay.AgentStatus{ID: fmt.Sprintf("a%04d", i), Name: fmt.Sprintf("Agent %d", i), Team: "Billing",
			Extensions: []string{fmt.Sprint(5000 + i)}, Devices: []relay.AgentDevice{}, State: relay.AgentIdle}
		if i%3 == 0 {
			out[i].Team = "Sales"
			out[i].Devices = []relay.AgentDevice{{Address: fmt.Sprintf("10.10.%d.%d", i/256, i%256), Learned: relay.DeviceFromRegister}}
		}
	}
	return out
}

// tableAgents is one agent in each state, with every kind of cell.
var tableAgents = []relay.AgentStatus{
	{ID: "1001", Name: "Ada Lovelace", Team: "Billing", Extensions: []string{"5001", "5101"}, State: relay.AgentTalking,
		Devices: []relay.AgentDevice{{Address: "10.10.0.1", Learned: relay.DeviceFromDirectory}, {Address: "10.10.0.1:5060", Learned: relay.DeviceFromRegister}},
		Calls: []relay.AgentCall{{CallID: "c1@pbx", State: relay.AgentTalking, Peer: "+15550100", Local: []string{"10.10.0.1:20000"},
			Remote: []string{"192.0.2.7:30000"}, Codecs: []string{"PCMU"}}}},
	{ID: "1002", Name: "Grace Hopper", Team: "Billing", Extensions: []string{"5002"}, State: relay.AgentRinging,
		Devices: []relay.AgentDevice{{Address: "00:11:22:33:44:55", Learned: relay.DeviceFromDirectory}},
		Calls:   []relay.AgentCall{{CallID: "c2@pbx", State: relay.AgentRinging, Peer: "+15550101", Local: []string{"10.10.0.2:20002"}, Remote: []string{}, Encrypted: true}}},
	{ID: "1003", Name: "Alan Turing", Team: "Sales", State: relay.AgentHeld, Mobile: true,
		Devices: []relay.AgentDevice{{Address: "192.0.2.50", Learned: relay.DeviceFromCall}},
		Calls: []relay.AgentCall{{CallID: "c3@pbx", State: relay.AgentHeld, Local: []string{}, Remote: []string{}},
			{CallID: "c4@pbx", State: relay.AgentRinging, Local: []string{}, Remote: []string{}}}},
	{ID: "1004", Team: "Sales", Extensions: []string{"5004"}, State: relay.AgentIdle, Devices: []relay.AgentDevice{}},
	{ID: "5005", Extensions: []string{"5005"}, State: relay.AgentUnknown, Devices: []relay.AgentDevice{{Address: "10.10.0.5:5060", Learned: relay.DeviceFromCTI}}},
}

// TestAgentsJSON: --json fetches every page (1,100 agents in pages of
// 500) and prints them all, in id order, as one object; the server saw
// the pages asked after the last id of the previous one.
func TestAgentsJSON(t *testing.T) {
	all := manyAgents(1100)
	h := &agentsServer{agents: all}
	addr := startRelayServer(t, h)
	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), []string{"agents", "--insecure", "--server", addr, "--json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var got struct {
		Agents []relay.AgentStatus `json:"agents"`
	}
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("output is not one {\"agents\":[...]} object: %v", err)
	}
	if dec.More() {
		t.Error("output holds more than one JSON value")
	}
	if len(got.Agents) != len(all) {
		t.Fatalf("%d agents printed, want %d", len(got.Agents), len(all))
	}
	for i := range all {
		a, w := got.Agents[i], all[i]
		if a.ID != w.ID || a.Name != w.Name || a.Team != w.Team || a.State != w.State || fmt.Sprint(a.Extensions) != fmt.Sprint(w.Extensions) ||
			fmt.Sprint(a.Devices) != fmt.Sprint(w.Devices) {
			t.Fatalf("agent %d printed as %+v, want %+v", i, a, w)
		}
	}
	var afters []string
	for _, q := range h.seen() {
		afters = append(afters, q.After)
		if q.Limit != relay.DefaultAgentsLimit || q.Team != "" {
			t.Errorf("query %+v, want limit %d and no team", q, relay.DefaultAgentsLimit)
		}
	}
	if strings.Join(afters, ",") != ",a0499,a0999" {
		t.Errorf("pages asked after %q, want \"\", a0499, a0999", afters)
	}

	// No agent: an empty list, not null.
	out.Reset()
	empty := startRelayServer(t, &agentsServer{})
	if code := cli.Run(newRootCmd(), []string{"agents", "--insecure", "--server", empty, "--json"}, &out, &errb); code != 0 ||
		strings.Join(strings.Fields(out.String()), "") != `{"agents":[]}` {
		t.Errorf("no agents: exit %d, %q; want {\"agents\":[]}", code, out.String())
	}
}

// TestAgentsTable: one aligned line per agent with its devices and calls,
// then the summary by state; --team is forwarded and selects.
func TestAgentsTable(t *testing.T) {
	h := &agentsServer{agents: tableAgents}
	addr := startRelayServer(t, h)
	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), []string{"agents", "--insecure", "--server", addr}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 7 {
		t.Fatalf("%d lines, want a header, 5 agents and a summary:\n%s", len(lines), out.String())
	}
	col := func(l, name string) int { return strings.Index(l, name) }
	header := lines[0]
	for _, name := range []string{"ID", "NAME", "TEAM", "EXTENSIONS", "STATE", "DEVICES", "CALLS"} {
		if col(header, name) < 0 {
			t.Fatalf("header %q lacks %s", header, name)
		}
	}
	want := []struct{ state, devices, calls string }{
		{"talking", "10.10.0.1 (directory), 10.10.0.1:5060 (sip-register)", "talking with +15550100 10.10.0.1:20000"},
		{"ringing", "00:11:22:33:44:55 (directory)", "ringing with +15550101 10.10.0.2:20002 (SRTP)"},
		{"held", "192.0.2.50 (sip-call)", "2 calls"},
		{"idle", "-", "-"},
		{"unknown", "10.10.0.5:5060 (cti)", "-"},
	}
	for i, w := range want {
		l := lines[i+1]
		if !strings.HasPrefix(l[col(header, "STATE"):], w.state+" ") || !strings.HasPrefix(l[col(header, "DEVICES"):], w.devices+" ") ||
			l[col(header, "CALLS"):] != w.calls {
			t.Errorf("line %q: want state %q, devices %q and calls %q in the header's columns", l, w.state, w.devices, w.calls)
		}
	}
	if l := lines[1]; !strings.HasPrefix(l, "1001 ") || !strings.HasPrefix(l[col(header, "NAME"):], "Ada Lovelace ") ||
		!strings.HasPrefix(l[col(header, "TEAM"):], "Billing ") || !strings.HasPrefix(l[col(header, "EXTENSIONS"):], "5001,5101 ") {
		t.Errorf("first agent %q", l)
	}
	if l := lines[5]; !strings.HasPrefix(l[col(header, "NAME"):], "- ") || !strings.HasPrefix(l[col(header, "TEAM"):], "- ") {
		t.Errorf("agent without name or team %q, want dashes", l)
	}
	if s := lines[6]; s != "5 agents: 1 talking, 1 ringing, 1 held, 1 idle, 1 unknown" {
		t.Errorf("summary %q", s)
	}

	out.Reset()
	if code := cli.Run(newRootCmd(), []string{"agents", "--insecure", "--server", addr, "--team", "Sales"}, &out, &errb); code != 0 {
		t.Fatalf("--team: exit %d: %s", code, errb.String())
	}
	if q := h.seen(); q[len(q)-1].Team != "Sales" {
		t.Errorf("--team Sales sent %+v", q[len(q)-1])
	}
	if !strings.Contains(out.String(), "1003 ") || !strings.Contains(out.String(), "1004 ") || strings.Contains(out.String(), "1001 ") ||
		!strings.HasSuffix(out.String(), "2 agents: 0 talking, 0 ringing, 1 held, 1 idle\n") {
		t.Errorf("--team Sales printed\n%s", out.String())
	}

	out.Reset()
	if code := cli.Run(newRootCmd(), []string{"agents", "--insecure", "--server", addr, "--team", "Support"}, &out, &errb); code != 0 ||
		out.String() != "no agents known in team Support\n" {
		t.Errorf("empty team: exit %d, %q", code, out.String())
	}
	out.Reset()
	empty := startRelayServer(t, &agentsServer{})
	if code := cli.Run(newRootCmd(), []string{"agents", "--insecure", "--server", empty}, &out, &errb); code != 0 ||
		out.String() != "no agents known (no directory given and no SIP seen)\n" {
		t.Errorf("no agents: exit %d, %q", code, out.String())
	}
}

// statusOnly is a capture server that does not answer agents queries.
type statusOnly struct{ relay.MediaOnly }

func (statusOnly) Status(context.Context, *relay.Peer) (any, error) { return nil, nil }
func (statusOnly) Media(*relay.Peer, *relay.MediaFrame) error       { return nil }
func (statusOnly) Closed(*relay.Peer, error)                        {}

func TestAgentsErrors(t *testing.T) {
	h := &agentsServer{agents: tableAgents}
	addr := startRelayServer(t, h)
	old := startRelayServer(t, statusOnly{})
	for _, tt := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"agents", "--insecure", "--server", addr, "--team", "Sales Team"}, cli.ExitUsage, `--team "Sales Team"`},
		{[]string{"agents", "--insecure", "--server", addr, "--team", strings.Repeat("t", 65)}, cli.ExitUsage, "--team"},
		{[]string{"agents", "--insecure"}, cli.ExitUsage, "--server HOST:PORT is required"},
		{[]string{"agents", "--insecure", "--server", addr, "extra"}, cli.ExitUsage, "extra"},
		{[]string{"agents", "--insecure", "--server", old}, cli.ExitFailed, "does not answer agent list queries"},
		{[]string{"agents", "--insecure", "--server", addr, "--team", "Secret"}, cli.ExitFailed, "may not list team Secret"},
		{[]string{"agents", "--insecure", "--server", closedPort(t), "--timeout", "1s"}, cli.ExitFailed, "reach"},
	} {
		var out, errb bytes.Buffer
		code := cli.Run(newRootCmd(), tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(errb.String(), tt.msg) || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and one line naming %q", tt.args, code, errb.String(), tt.code, tt.msg)
		}
	}
	for _, q := range h.seen() {
		if q.Team != "Secret" {
			t.Errorf("a refused --team reached the server: %+v", q)
		}
	}
}

// pagesClient answers from pages given in advance.
type pagesClient struct {
	pages [][]relay.AgentStatus
	asked []relay.AgentsQuery
}

func (c *pagesClient) Server() string { return "sm1:42228" }

func (c *pagesClient) AgentsQuery(_ context.Context, q relay.AgentsQuery) (*relay.AgentsReply, error) {
	n := len(c.asked)
	c.asked = append(c.asked, q)
	if n >= len(c.pages) {
		return &relay.AgentsReply{}, nil
	}
	return &relay.AgentsReply{Agents: c.pages[n], More: n < len(c.pages)-1}, nil
}

func ids(from, to int) []relay.AgentStatus {
	var out []relay.AgentStatus
	for i := from; i < to; i++ {
		out = append(out, relay.AgentStatus{ID: fmt.Sprintf("a%04d", i)})
	}
	return out
}

// TestListAgentsBound: listing stops at the bound with a warning, not
// before; a server that breaks the id order or says more without agents
// fails the command.
func TestListAgentsBound(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pages   [][]relay.AgentStatus
		limit   int
		want    int    // agents returned; -1: an error naming msg
		msg     string // in the warning or the error
		queries int
	}{
		{"under the bound", [][]relay.AgentStatus{ids(0, 500), ids(500, 1000), ids(1000, 1100)}, 1200, 1100, "", 3},
		{"exactly the bound", [][]relay.AgentStatus{ids(0, 600), ids(600, 1200)}, 1200, 1200, "", 2},
		{"over the bound", [][]relay.AgentStatus{ids(0, 500), ids(500, 1000), ids(1000, 1500), ids(1500, 2000)}, 1200, 1200, "stopped after 1200 agents", 3},
		{"bound reached with more", [][]relay.AgentStatus{ids(0, 600), ids(600, 1200), ids(1200, 1300)}, 1200, 1200, "stopped after 1200 agents", 2},
		{"out of order", [][]relay.AgentStatus{ids(0, 500), ids(400, 600)}, 1200, -1, `agent "a0400" after "a0499"`, 2},
		{"more without agents", [][]relay.AgentStatus{ids(0, 5), nil, ids(5, 10)}, 1200, -1, "holds none", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &pagesClient{pages: tc.pages}
			var w bytes.Buffer
			got, err := listAgents(context.Background(), &w, c, relay.AgentsQuery{}, tc.limit)
			if tc.want < 0 {
				if err == nil || cli.CodeOf(err) != cli.ExitFailed || !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("error %v, want a failure naming %s", err, tc.msg)
				}
			} else {
				if err != nil || len(got) != tc.want {
					t.Fatalf("%d agents, %v; want %d", len(got), err, tc.want)
				}
				for i, a := range got {
					if a.ID != fmt.Sprintf("a%04d", i) {
						t.Fatalf("agent %d is %s", i, a.ID)
					}
				}
				if (tc.msg == "") != (w.Len() == 0) || !strings.Contains(w.String(), tc.msg) {
					t.Errorf("warning %q, want %q", w.String(), tc.msg)
				}
			}
			if len(c.asked) != tc.queries {
				t.Errorf("%d queries, want %d", len(c.asked), tc.queries)
			}
		})
	}
}
