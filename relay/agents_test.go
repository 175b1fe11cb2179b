package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// agentsHandler serves agents queries from a fixed list sorted by id,
// one page of req.Limit agents after req.After, restricted to req.Team.
// Hello name "intruder" is refused.
type agentsHandler struct {
	testHandler
	agents  []AgentStatus
	huge    bool // answer with more than a frame holds
	queries []AgentsQuery
}

func (h *agentsHandler) AgentsQuery(ctx context.Context, p *Peer, req *AgentsQuery) (*AgentsReply, error) {
	h.mu.Lock()
	h.queries = append(h.queries, *req)
	h.mu.Unlock()
	if p.Hello.Name == "intruder" {
		return nil, &Error{Code: CodeUnauthorized, Message: "this identity may not list agents"}
	}
	if h.huge {
		return &AgentsReply{Agents: []AgentStatus{{ID: "big", Name: strings.Repeat("x", DefaultMaxFrame), State: AgentIdle}}}, nil
	}
	rep := &AgentsReply{}
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

func (h *agentsHandler) seen() []AgentsQuery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]AgentsQuery(nil), h.queries...)
}

// testAgents returns n agents a0000, a0001, ... in teams "Billing" (even)
// and "Sales" (odd); every tenth has a call, and the devices of the
// others are left nil (the server sends them as []).
func testAgents(n int) []AgentStatus {
	out := make([]AgentStatus, n)
	for i := range out {
		a := AgentStatus{ID: fmt.Sprintf("a%04d", i), Name: fmt.Sprintf("Agent %d", i), Team: "Sales",
			Extensions: []string{fmt.Sprint(5000 + i)}, State: AgentIdle}
		if i%2 == 0 {
			a.Team = "Billing"
		}
		if i%10 == 0 {
			a.Devices = []AgentDevice{{Address: fmt.Sprintf("10.10.%d.%d", i/256, i%256), Learned: DeviceFromRegister, Since: "2026-03-01T09:00:00Z"}}
			a.State = AgentTalking
			a.Calls = []AgentCall{{CallID: fmt.Sprintf("c%d@pbx", i), State: AgentTalking, Peer: "+15550100",
				Local: []string{"10.10.0.1:20000"}, Codecs: []string{"PCMU"}}}
		}
		out[i] = a
	}
	return out
}

func dialAgents(t *testing.T, addr, name string) *Client {
	t.Helper()
	cl, err := Dial(context.Background(), ClientConfig{Servers: []string{addr}, Logger: quiet(), Name: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// TestAgentsQueryPaging: 1,200 agents in pages of 500 come in 3 pages
// (500, 500, 200) in id order, More set on the first two; the handler
// sees After as the last id of the previous page, the Team and the
// Limit; a Limit of 0 reaches it as 500; nil lists arrive as [].
func TestAgentsQueryPaging(t *testing.T) {
	all := testAgents(1200)
	h := &agentsHandler{agents: all}
	_, addr := startServer(t, h, ServerConfig{Name: "sm1"})
	cl := dialAgents(t, addr, "smctl")
	ctx := context.Background()

	q := AgentsQuery{Limit: 500}
	var got []AgentStatus
	var sizes []int
	var more []bool
	for page := 0; ; page++ {
		if page == 10 {
			t.Fatal("more than 10 pages")
		}
		rep, err := cl.AgentsQuery(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if rep.RequestID == 0 {
			t.Errorf("page %d has no request id", page)
		}
		got = append(got, rep.Agents...)
		sizes = append(sizes, len(rep.Agents))
		more = append(more, rep.More)
		if !rep.More {
			break
		}
		q.After = rep.Agents[len(rep.Agents)-1].ID
	}
	if fmt.Sprint(sizes) != "[500 500 200]" || fmt.Sprint(more) != "[true true false]" {
		t.Fatalf("pages of %v agents, more %v; want [500 500 200], [true true false]", sizes, more)
	}
	for i, a := range got {
		if a.ID != all[i].ID {
			t.Fatalf("agent %d is %s, want %s", i, a.ID, all[i].ID)
		}
		if a.Devices == nil {
			t.Fatalf("agent %s: devices null on the wire", a.ID)
		}
		for _, c := range a.Calls {
			if c.Local == nil || c.Remote == nil {
				t.Fatalf("agent %s call %s: media addresses null on the wire", a.ID, c.CallID)
			}
		}
	}
	if g := got[10]; g.State != AgentTalking || len(g.Calls) != 1 || g.Calls[0].Peer != "+15550100" ||
		len(g.Devices) != 1 || g.Devices[0].Learned != DeviceFromRegister || g.Team != "Billing" || g.Extensions[0] != "5010" {
		t.Errorf("agent a0010 arrived as %+v", g)
	}
	var afters []string
	for _, s := range h.seen() {
		afters = append(afters, s.After)
	}
	if strings.Join(afters, ",") != ",a0499,a0999" {
		t.Errorf("the handler saw after %q, want \"\", a0499, a0999", afters)
	}
	// The handler's own lists are not changed by the server.
	if all[1].Devices != nil {
		t.Error("the server wrote into the handler's agents")
	}

	h.mu.Lock()
	h.queries = nil
	h.mu.Unlock()
	rep, err := cl.AgentsQuery(ctx, AgentsQuery{Team: "Sales"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Agents) != DefaultAgentsLimit || !rep.More || rep.Agents[0].ID != "a0001" || rep.Agents[0].Team != "Sales" {
		t.Errorf("team Sales, no limit: %d agents from %s, more %v; want 500 from a0001, more", len(rep.Agents), rep.Agents[0].ID, rep.More)
	}
	if s := h.seen(); len(s) != 1 || s[0].Team != "Sales" || s[0].Limit != DefaultAgentsLimit || s[0].After != "" {
		t.Errorf("the handler saw %+v, want team Sales, limit %d", s, DefaultAgentsLimit)
	}
}

// TestAgentsQueryRefused: a bad team, after or limit is refused with
// bad-request naming the value, and the handler is never called; values
// at the limits pass.
func TestAgentsQueryRefused(t *testing.T) {
	h := &agentsHandler{agents: testAgents(3)}
	_, addr := startServer(t, h, ServerConfig{})
	cl := dialAgents(t, addr, "smctl")
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		q    AgentsQuery
		msg  string // the refusal names this; "" = accepted
	}{
		{"team with a space", AgentsQuery{Team: "Sales Team"}, `team "Sales Team"`},
		{"team with a slash", AgentsQuery{Team: "../etc"}, `team "../etc"`},
		{"team too long", AgentsQuery{Team: strings.Repeat("t", 65)}, "team \"" + strings.Repeat("t", 65)},
		{"team not ASCII", AgentsQuery{Team: "Équipe"}, `team "Équipe"`},
		{"after with a slash", AgentsQuery{After: "a/b"}, `after "a/b"`},
		{"after with a control character", AgentsQuery{After: "a\x01"}, `after "a\x01"`},
		{"after too long", AgentsQuery{After: strings.Repeat("a", 65)}, "after \"" + strings.Repeat("a", 65)},
		{"negative limit", AgentsQuery{Limit: -1}, "limit -1"},
		{"limit too large", AgentsQuery{Limit: 2001}, "limit 2001"},
		{"longest team", AgentsQuery{Team: strings.Repeat("t", 64)}, ""},
		{"team of every kind", AgentsQuery{Team: "Sales_2.north-EU"}, ""},
		{"after with a space and an accent", AgentsQuery{After: "Zoé Martin"}, ""},
		{"longest after", AgentsQuery{After: strings.Repeat("a", 64)}, ""},
		{"largest limit", AgentsQuery{Limit: 2000}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.seen())
			_, err := cl.AgentsQuery(ctx, tc.q)
			called := len(h.seen()) - before
			if tc.msg == "" {
				if err != nil || called != 1 {
					t.Errorf("%+v: %v, handler called %d times; want accepted", tc.q, err, called)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest || !strings.Contains(e.Message, tc.msg) {
				t.Errorf("%+v: %v, want bad-request naming %s", tc.q, err, tc.msg)
			}
			if called != 0 {
				t.Errorf("%+v: the handler was called", tc.q)
			}
		})
	}
	if cl.Failovers() != 0 {
		t.Errorf("%d failovers: a refusal closed the connection", cl.Failovers())
	}

	intruder := dialAgents(t, addr, "intruder")
	_, err := intruder.AgentsQuery(ctx, AgentsQuery{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeUnauthorized || !errors.Is(err, ErrRemote) {
		t.Errorf("the handler's refusal: %v, want an unauthorized *Error", err)
	}
}

// TestAgentsQueryTooLarge: a reply over the frame limit is not sent; the
// client gets an internal error naming the limit and the connection
// stays up.
func TestAgentsQueryTooLarge(t *testing.T) {
	_, addr := startServer(t, &agentsHandler{huge: true}, ServerConfig{})
	cl := dialAgents(t, addr, "smctl")
	ctx := context.Background()
	_, err := cl.AgentsQuery(ctx, AgentsQuery{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeInternal || !strings.Contains(e.Message, "frame limit") {
		t.Fatalf("oversized reply: %v, want an internal error naming the frame limit", err)
	}
	if _, err := cl.Status(ctx); err != nil || cl.Failovers() != 0 {
		t.Errorf("after the refusal: status %v, %d failovers", err, cl.Failovers())
	}
}

// TestAgentsQueryNotSupported: a server whose handler does not answer
// agents queries does not list the feature; the client sends nothing and
// says so. A raw query to it is answered bad-request; a server that
// answers lists the feature.
func TestAgentsQueryNotSupported(t *testing.T) {
	_, addr := startServer(t, &testHandler{}, ServerConfig{})
	cl := dialAgents(t, addr, "smctl")
	_, err := cl.AgentsQuery(context.Background(), AgentsQuery{})
	if !errors.Is(err, ErrNotSupported) || errors.Is(err, ErrRemote) || !strings.Contains(err.Error(), addr) ||
		!strings.Contains(err.Error(), "agent list queries") {
		t.Errorf("query to a server without the feature: %v, want ErrNotSupported naming %s and agent list queries", err, addr)
	}

	c, r := rawDial(t, addr)
	b, _ := AppendJSON(nil, MsgHello, Hello{Versions: []int{Version}, Role: RoleClient})
	b, _ = AppendJSON(b, MsgAgentsQuery, AgentsQuery{RequestID: 7})
	c.Write(b)
	var hello Hello
	if typ, body, err := r.Next(); err != nil || typ != MsgHello || DecodeJSON(typ, body, &hello) != nil || hello.HasFeature(FeatureAgents) {
		t.Fatalf("hello: %v %s %v, want a hello without the agents feature", typ, body, err)
	}
	typ, body, err := r.Next()
	if err != nil || typ != MsgError {
		t.Fatalf("raw query: %v %s %v, want an error", typ, body, err)
	}
	var e Error
	DecodeJSON(typ, body, &e)
	if e.Code != CodeBadRequest || e.RequestID != 7 {
		t.Errorf("raw query: %+v, want bad-request for request 7", e)
	}

	_, addr2 := startServer(t, &agentsHandler{}, ServerConfig{})
	c2, r2 := rawDial(t, addr2)
	b, _ = AppendJSON(nil, MsgHello, Hello{Versions: []int{Version}, Role: RoleClient})
	b, _ = AppendJSON(b, MsgAgentsQuery, AgentsQuery{RequestID: 9})
	c2.Write(b)
	if typ, body, err := r2.Next(); err != nil || typ != MsgHello || DecodeJSON(typ, body, &hello) != nil || !hello.HasFeature(FeatureAgents) {
		t.Fatalf("hello: %v %s %v, want a hello with the agents feature", typ, body, err)
	}
	typ, body, err = r2.Next()
	if err != nil || typ != MsgAgentsReply {
		t.Fatalf("raw query: %v %s %v, want an agents reply", typ, body, err)
	}
	// An empty directory is an empty list, not null.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || string(raw["agents"]) != "[]" || string(raw["request_id"]) != "9" {
		t.Errorf("raw reply %s, want request 9 with agents []", body)
	}
}

// TestValidateAgentsQuery: what JSON cannot carry (it turns invalid
// UTF-8 into U+FFFD) is refused by the check too, for callers in process.
func TestValidateAgentsQuery(t *testing.T) {
	var e *Error
	if err := ValidateAgentsQuery(&AgentsQuery{After: "a\xff"}); !errors.As(err, &e) || e.Code != CodeBadRequest || !strings.Contains(e.Message, `after "a\xff"`) {
		t.Errorf("after not UTF-8: %v, want bad-request naming it", err)
	}
	if err := ValidateAgentsQuery(&AgentsQuery{}); err != nil {
		t.Errorf("the empty query: %v", err)
	}
}

func TestAgentsMsgTypeNames(t *testing.T) {
	if MsgAgentsQuery.String() != "agents-query" || MsgAgentsReply.String() != "agents-reply" {
		t.Errorf("names %q %q", MsgAgentsQuery, MsgAgentsReply)
	}
}
