package main

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/silentmon/silentmon/relay"
)

// bindServer answers binds like a capture server: it keeps each agent's
// bindings and refuses agent "boss" as unauthorized.
type bindServer struct {
	agentsServer
	mu    sync.Mutex
	binds map[string]*relay.AgentsBindReply
	reqs  []relay.AgentsBind
}

func (h *bindServer) AgentsBind(_ context.Context, _ *relay.Peer, req *relay.AgentsBind) (*relay.AgentsBindReply, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, *req)
	if req.Agent == "boss" {
		return nil, &relay.Error{Code: relay.CodeUnauthorized, Message: `certificate "CN=desk" has neither the cti nor the admin role: it may not bind or unbind agents`}
	}
	cur := h.binds[req.Agent]
	if cur == nil {
		cur = &relay.AgentsBindReply{Agent: req.Agent}
		h.binds[req.Agent] = cur
	}
	if req.Action == relay.BindActionBind {
		cur.Devices = append(cur.Devices, req.Devices...)
		cur.Extensions = append(cur.Extensions, req.Extensions...)
	} else {
		cur.Devices, cur.Extensions = nil, nil
	}
	out := *cur
	return &out, nil
}

// TestAgentsBindCmd: smctl agents bind sends the agent, devices and
// extensions and prints the bindings after, as text or JSON; unbind
// without devices or extensions prints that the agent has none; bad
// values are refused locally with exit 2 before anything is sent; a
// refusal by the server is one sentence with exit 1.
func TestAgentsBindCmd(t *testing.T) {
	h := &bindServer{binds: map[string]*relay.AgentsBindReply{}}
	addr := startRelayServer(t, h)
	code, out, errs := smctl(t, "agents", "bind", "--server", addr, "--insecure", "--agent", "1001",
		"--device", "10.1.1.5", "--device", "vlan85/00:1b:54:aa:bb:cc", "--extension", "5001")
	if code != 0 || out != "agent 1001: devices 10.1.1.5, vlan85/00:1b:54:aa:bb:cc; extensions 5001\n" {
		t.Fatalf("bind: exit %d, %q, %s", code, out, errs)
	}
	if r := h.reqs[0]; r.Action != "bind" || r.Agent != "1001" || len(r.Devices) != 2 || len(r.Extensions) != 1 {
		t.Fatalf("request sent %+v", r)
	}
	code, out, _ = smctl(t, "agents", "bind", "--server", addr, "--insecure", "--agent", "1001", "--extension", "5002", "--json")
	var rep relay.AgentsBindReply
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Agent != "1001" || len(rep.Extensions) != 2 {
		t.Fatalf("bind --json: exit %d, %s", code, out)
	}
	code, out, _ = smctl(t, "agents", "unbind", "--server", addr, "--insecure", "--agent", "1001")
	if code != 0 || out != "agent 1001 has no bindings\n" {
		t.Fatalf("unbind: exit %d, %q", code, out)
	}
	n := len(h.reqs)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--agent", "1001", "--device", "10.1.1.5:5060"}, `device "10.1.1.5:5060" has a port range`},
		{[]string{"--agent", "1001"}, "names no device and no extension"},
		{[]string{"--device", "10.1.1.5"}, "--agent ID is required"},
		{[]string{"--agent", "10 01", "--device", "10.1.1.5"}, `agent "10 01"`},
	} {
		code, _, errs := smctl(t, append([]string{"agents", "bind", "--server", addr, "--insecure"}, tc.args...)...)
		if code != 2 || !strings.Contains(strings.ToLower(errs), strings.ToLower(tc.want)) || strings.Count(strings.TrimSpace(errs), "\n") != 0 {
			t.Errorf("bind %v: exit %d, %q, want exit 2 and %q", tc.args, code, errs, tc.want)
		}
	}
	if len(h.reqs) != n {
		t.Error("a bad bind was sent to the server")
	}
	code, _, errs = smctl(t, "agents", "bind", "--server", addr, "--insecure", "--agent", "boss", "--device", "10.1.1.9")
	if code != 1 || !strings.Contains(errs, "Agents bind refused by") || !strings.Contains(errs, "neither the cti nor the admin role") {
		t.Errorf("refused bind: exit %d, %q", code, errs)
	}
}
