package captureserver

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/internal/directory"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// agentOf returns the agent id's entry of an agents reply.
func agentOf(rep *relay.AgentsReply, id string) (relay.AgentStatus, bool) {
	for _, a := range rep.Agents {
		if a.ID == id {
			return a, true
		}
	}
	return relay.AgentStatus{}, false
}

// TestBindOverTLS: over real mutual TLS to a running capture server, a
// certificate of the cti role binds agent 1001 to a phone IP, a phone MAC
// on a VLAN and an extension; the reply gives them in canonical form and
// the agents list shows the devices learned from "cti" with the
// extension; a plain client's certificate is refused as unauthorized
// (and the refusal audited); an unbind removes what it names; an unbind
// naming nothing removes the rest (logout) and the agent leaves the
// list; values the relay's validation refuses are refused.
func TestBindOverTLS(t *testing.T) {
	var ctiDir, cliDir string
	r := newTLSRig(t, func(r *tlsRig, cfg *Config) {
		ctiDir, cliDir = r.roleSet(t, smtls.RoleCTI), r.roleSet(t, smtls.RoleClient)
		cfg.SecurityDir = r.roleSet(t, smtls.RoleCapture)
	})
	ctx := context.Background()
	cti, desk := r.client(t, ctiDir), r.client(t, cliDir)

	rep, err := cti.AgentsBind(ctx, relay.AgentsBind{Action: relay.BindActionBind, Agent: "1001",
		Devices: []string{"10.1.1.5", "vlan85/00:1B:54:AA:BB:CC"}, Extensions: []string{"5001"}})
	if err != nil {
		t.Fatalf("bind by a cti certificate: %v", err)
	}
	if !slices.Equal(rep.Devices, []string{"10.1.1.5", "vlan85/00:1b:54:aa:bb:cc"}) || !slices.Equal(rep.Extensions, []string{"5001"}) {
		t.Fatalf("bind reply %+v", rep)
	}
	list, err := desk.AgentsQuery(ctx, relay.AgentsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	ag, ok := agentOf(list, "1001")
	if !ok {
		t.Fatalf("agent 1001 is not listed after its bind: %+v", list.Agents)
	}
	if len(ag.Devices) != 2 || ag.Devices[0].Address != "10.1.1.5" || ag.Devices[0].Learned != relay.DeviceFromCTI ||
		ag.Devices[1].Learned != relay.DeviceFromCTI || !slices.Equal(ag.Extensions, []string{"5001"}) {
		t.Fatalf("agent 1001 listed as %+v, want its two devices learned from cti and extension 5001", ag)
	}

	_, err = desk.AgentsBind(ctx, relay.AgentsBind{Action: relay.BindActionBind, Agent: "1002", Devices: []string{"10.1.1.6"}})
	if !isCode(err, relay.CodeUnauthorized) || !strings.Contains(err.Error(), "neither the cti nor the admin role") {
		t.Fatalf("bind by a client certificate: %v, want unauthorized", err)
	}
	list, _ = desk.AgentsQuery(ctx, relay.AgentsQuery{})
	if _, ok := agentOf(list, "1002"); ok {
		t.Fatal("the refused bind was applied")
	}

	rep, err = cti.AgentsBind(ctx, relay.AgentsBind{Action: relay.BindActionUnbind, Agent: "1001", Devices: []string{"10.1.1.5"}})
	if err != nil || !slices.Equal(rep.Devices, []string{"vlan85/00:1b:54:aa:bb:cc"}) || !slices.Equal(rep.Extensions, []string{"5001"}) {
		t.Fatalf("unbind of one device: %+v, %v", rep, err)
	}
	rep, err = cti.AgentsBind(ctx, relay.AgentsBind{Action: relay.BindActionUnbind, Agent: "1001"})
	if err != nil || len(rep.Devices) != 0 || len(rep.Extensions) != 0 {
		t.Fatalf("unbind of everything: %+v, %v", rep, err)
	}
	list, _ = desk.AgentsQuery(ctx, relay.AgentsQuery{})
	if ag, ok := agentOf(list, "1001"); ok {
		t.Fatalf("agent 1001 still listed after its logout: %+v", ag)
	}

	for _, bad := range []relay.AgentsBind{
		{Action: relay.BindActionBind, Agent: "1001", Devices: []string{"10.1.1.5:5060"}},
		{Action: relay.BindActionBind, Agent: "1001"},
		{Action: relay.BindActionBind, Agent: "10 01", Extensions: []string{"5001"}},
		{Action: relay.BindActionBind, Agent: "1001", Extensions: []string{"50 01"}},
		{Action: "login", Agent: "1001", Extensions: []string{"5001"}},
	} {
		if _, err := cti.AgentsBind(ctx, bad); !isCode(err, relay.CodeBadRequest) {
			t.Errorf("bind %+v: %v, want bad-request", bad, err)
		}
	}

	var lines []audit.Record
	waitUntil(t, "the bind audit lines", func() bool {
		lines, _, _ = audit.ReadFile(r.audit, audit.Query{})
		n := 0
		for _, l := range lines {
			if l.Action == actionAgentBound || l.Action == actionAgentUnbound {
				n++
			}
		}
		return n >= 4
	})
	var got []string
	for _, l := range lines {
		if l.Action == actionAgentBound || l.Action == actionAgentUnbound {
			got = append(got, l.Action+" "+l.Result+" "+l.Agent+" "+strings.Join(l.Endpoints, ",")+" "+strings.Join(l.Extensions, ",")+" "+l.ClientSubject)
		}
	}
	want := []string{"agent-bound accepted 1001 10.1.1.5,vlan85/00:1B:54:AA:BB:CC 5001 ", "agent-bound refused 1002 10.1.1.6  ",
		"agent-unbound accepted 1001 10.1.1.5  ", "agent-unbound accepted 1001   "}
	if len(got) < len(want) {
		t.Fatalf("audit lines %q", got)
	}
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) || !strings.Contains(got[i], "CN=") {
			t.Errorf("audit line %d = %q, want %q and the requester's subject", i, got[i], w)
		}
	}
}

// TestBindApplied: a bound agent is known, so a start by its id alone
// is accepted, and its session matches the bound phone and the bound
// extension's SIP user part; binding the phone to another agent takes it
// from the first (audited as an unbind); after the logout a start
// without --wait is refused again; a plain client is refused.
func TestBindApplied(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	ctx := context.Background()
	alice := peerWithRoles(t, "alice", smtls.RoleClient)
	cti := peerWithRoles(t, "cti-1", smtls.RoleClient, smtls.RoleCTI)
	req := startReq
	req.Endpoints = nil
	if _, err := ts.StartMonitor(ctx, alice, &req); !isCode(err, relay.CodeBadRequest) {
		t.Fatalf("start for an agent nothing is known of: %v", err)
	}
	if _, err := ts.AgentsBind(ctx, alice, &relay.AgentsBind{Action: relay.BindActionBind, Agent: "1001", Devices: []string{"10.1.1.5"}}); !isCode(err, relay.CodeUnauthorized) {
		t.Fatalf("bind by a client: %v, want unauthorized", err)
	}
	if _, err := ts.AgentsBind(ctx, cti, &relay.AgentsBind{Action: relay.BindActionBind, Agent: "1001",
		Devices: []string{"10.1.1.5"}, Extensions: []string{"5001"}}); err != nil {
		t.Fatal(err)
	}
	st, err := ts.StartMonitor(ctx, alice, &req)
	if err != nil {
		t.Fatalf("start for a bound agent: %v", err)
	}
	sess, _ := ts.filter.Session(st.Session)
	if us := ts.agents.users(sess); !slices.Contains(us, "5001") {
		t.Errorf("the bound agent's SIP users %v lack the bound extension 5001", us)
	}
	phone := filter.Endpoint{IP: mustAddr("10.1.1.5")}
	if !learnedHas(ts.server, st.Session, phone) {
		t.Fatalf("the learned filter does not match the bound phone: %v", ts.agents.learned.Sessions())
	}
	// Agent 1002 sits at the same phone without 1001 logging out.
	if _, err := ts.AgentsBind(ctx, cti, &relay.AgentsBind{Action: relay.BindActionBind, Agent: "1002", Devices: []string{"10.1.1.5"}}); err != nil {
		t.Fatal(err)
	}
	if learnedHas(ts.server, st.Session, phone) {
		t.Fatal("agent 1001's session still matches the phone bound to agent 1002")
	}
	if b := ts.agents.bound("1001"); b == nil || len(b.Devices) != 0 || !slices.Equal(b.Extensions, []string{"5001"}) {
		t.Fatalf("agent 1001's bindings after 1002 took the phone: %+v", b)
	}
	var moved bool
	for _, l := range ts.auditLines(t) {
		moved = moved || l.Action == actionAgentUnbound && l.Agent == "1001" && strings.Contains(l.Reason, "bound to agent 1002") &&
			slices.Equal(l.Endpoints, []string{"10.1.1.5"})
	}
	if !moved {
		t.Error("the phone taken from agent 1001 is not audited")
	}
	if _, err := ts.AgentsBind(ctx, cti, &relay.AgentsBind{Action: relay.BindActionUnbind, Agent: "1001"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.StopMonitor(ctx, alice, &relay.StopMonitor{Session: st.Session}); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.StartMonitor(ctx, alice, &req); !isCode(err, relay.CodeBadRequest) || !strings.Contains(err.Error(), "nothing is known about agent 1001") {
		t.Fatalf("start after the logout: %v, want refused as unknown", err)
	}
	// An insecure listener lets anyone bind, as it lets anyone stop.
	if _, err := ts.AgentsBind(ctx, &relay.Peer{}, &relay.AgentsBind{Action: relay.BindActionBind, Agent: "1003", Extensions: []string{"5003"}}); err != nil {
		t.Fatalf("bind without TLS: %v", err)
	}
}

// TestBindLimits: an agent holds at most 16 devices; beyond, the bind is
// refused with the limit code and the bindings stay as they were.
func TestBindLimits(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	ctx := context.Background()
	var devs []string
	for i := range maxBoundDevices {
		devs = append(devs, "10.2.0."+itoa(i+1))
	}
	if _, err := ts.AgentsBind(ctx, &relay.Peer{}, &relay.AgentsBind{Action: relay.BindActionBind, Agent: "1001", Devices: devs}); err != nil {
		t.Fatal(err)
	}
	_, err := ts.AgentsBind(ctx, &relay.Peer{}, &relay.AgentsBind{Action: relay.BindActionBind, Agent: "1001", Devices: []string{"10.2.1.1"}})
	if !isCode(err, relay.CodeLimit) || !strings.Contains(err.Error(), "17 devices, more than 16") {
		t.Fatalf("a 17th device: %v, want the limit", err)
	}
	if b := ts.agents.bound("1001"); b == nil || len(b.Devices) != maxBoundDevices {
		t.Fatalf("bindings after the refused bind: %+v", b)
	}
}

// sharedMem is a store shared by servers in one test, published to as a
// cluster's is (a *localStore is not).
type sharedMem struct{ *localStore }

// TestDirectoryShared: servers sharing a store (as a cluster's members
// do) all know the agents of the directory one of them loaded; a member
// without a file learns them; a reload replaces that member's part; an
// agent in two members' directories comes from the member whose name
// sorts first; the directory stays once the member that loaded it is
// gone; a binding made on one member is applied by another's learned
// filter.
func TestDirectoryShared(t *testing.T) {
	store := sharedMem{newLocalStore()}
	member := func(name string) *server {
		cfg := &Config{}
		cfg.Name = name
		s := newServer(cfg, slog.New(slog.DiscardHandler))
		s.agents.share(store)
		t.Cleanup(s.agents.close)
		return s
	}
	parse := func(yaml string) *directory.Directory {
		d, err := directory.Parse([]byte(yaml), "agents.yaml", directory.FormatYAML)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := member("sm-b"), member("sm-c")
	a.agents.setDirectory(parse("agents:\n  - {id: \"1001\", name: Alice, team: Billing, phone_ip: 10.10.0.1}\n  - {id: \"1002\", name: Bruno}\n"))
	if d := b.agents.dir.Load(); d == nil || d.Len() != 2 {
		t.Fatalf("member without a file knows %v, want agents 1001 and 1002", d)
	}
	if !b.agents.known(&filter.Session{Agent: "1001"}) {
		t.Fatal("agent 1001 of another member's directory is unknown")
	}
	a.agents.setDirectory(parse("agents:\n  - {id: \"1001\", name: Alice, team: Billing, phone_ip: 10.10.0.1}\n  - {id: \"1003\", name: Chloe}\n"))
	if d := b.agents.dir.Load(); d == nil || d.Len() != 2 {
		t.Fatalf("after the reload the other member knows %d agents, want 2", d.Len())
	} else if _, ok := d.ByID("1002"); ok {
		t.Fatal("agent 1002, gone from the reloaded file, is still known")
	}
	first := member("sm-a")
	first.agents.setDirectory(parse("agents:\n  - {id: \"1001\", name: Alice at A, team: Sales}\n"))
	for _, s := range []*server{a, b, first} {
		ag, _ := s.agents.dir.Load().ByID("1001")
		if ag.Team != "Sales" || len(ag.Devices) != 0 {
			t.Errorf("member %s has agent 1001 as %+v, want sm-a's (its name sorts first)", s.cfg.Name, ag)
		}
	}
	// sm-b stops: its part stays in the store.
	a.agents.close()
	late := member("sm-d")
	if d := late.agents.dir.Load(); d == nil || d.Len() != 2 {
		t.Fatalf("a member that joined after sm-b stopped knows %v, want 1001 and 1003", d)
	}

	// A binding made on sm-c is applied by sm-d.
	sess := &filter.Session{ID: "s1", Agent: "2001", Supervisor: "127.0.0.1:9"}
	late.filter.Add(sess)
	if _, err := b.AgentsBind(context.Background(), &relay.Peer{}, &relay.AgentsBind{Action: relay.BindActionBind, Agent: "2001", Devices: []string{"10.3.0.1"}}); err != nil {
		t.Fatal(err)
	}
	if !learnedHas(late, "s1", filter.Endpoint{IP: mustAddr("10.3.0.1")}) {
		t.Fatal("another member's learned filter does not match the device bound on sm-c")
	}
	if _, err := first.AgentsBind(context.Background(), &relay.Peer{}, &relay.AgentsBind{Action: relay.BindActionUnbind, Agent: "2001"}); err != nil {
		t.Fatal(err)
	}
	if learnedHas(late, "s1", filter.Endpoint{IP: mustAddr("10.3.0.1")}) {
		t.Fatal("the unbind on sm-a left the device in sm-d's learned filter")
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func itoa(i int) string { return strconv.Itoa(i) }

// learnedHas reports whether s's learned filter gives session id the
// endpoint ep.
func learnedHas(s *server, id string, ep filter.Endpoint) bool {
	for _, x := range s.agents.learned.Sessions() {
		if x.ID == id && slices.Contains(x.Endpoints, ep) {
			return true
		}
	}
	return false
}
