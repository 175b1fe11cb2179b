package captureserver

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/directory"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// TestStartWithoutEndpoint: a start that names no endpoint for an agent
// nothing is known about is refused with a sentence saying what is
// missing, unless it waits for the agent's next call; extensions are
// validated and kept on the session.
func TestStartWithoutEndpoint(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	ctx := context.Background()
	peer := peerWithCert(t, "alice")
	req := startReq
	req.Endpoints = nil
	req.Extensions = []string{"5001"}
	_, err := ts.StartMonitor(ctx, peer, &req)
	if !isCode(err, relay.CodeBadRequest) || !strings.Contains(err.Error(), "nothing is known about agent 1001 (extensions 5001)") ||
		!strings.Contains(err.Error(), "--wait") {
		t.Fatalf("start without endpoint: %v", err)
	}
	req.Extensions = []string{"50 01"}
	if _, err := ts.StartMonitor(ctx, peer, &req); !isCode(err, relay.CodeBadRequest) || !strings.Contains(err.Error(), `extension "50 01"`) {
		t.Fatalf("bad extension: %v", err)
	}
	req.Extensions, req.Wait = []string{"5001", "+33155550100"}, true
	st, err := ts.StartMonitor(ctx, peer, &req)
	if err != nil {
		t.Fatalf("start with --wait: %v", err)
	}
	sess, ok := ts.filter.Session(st.Session)
	if !ok || !sess.Wait || len(sess.Extensions) != 2 || len(sess.Endpoints) != 0 {
		t.Fatalf("session %+v", sess)
	}
}

// TestStartByDirectoryExtension: a start by extension alone (smctl
// monitor start --extension 5001) for an extension only the directory
// knows is accepted as a start for the directory's agent of it, whose
// phone it then follows; so is one for an extension a CTI bound; an
// extension nobody knows is still refused.
func TestStartByDirectoryExtension(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	ctx := context.Background()
	peer := peerWithCert(t, "alice")
	d, err := directory.Parse([]byte("agents:\n  - id: alice\n    team: sales\n    extensions: [\"5001\"]\n    phone_ip: 10.10.0.1\n"), "agents.yaml", directory.FormatYAML)
	if err != nil {
		t.Fatal(err)
	}
	ts.agents.setDirectory(d)
	req := startReq
	req.Agent, req.Endpoints, req.Extensions = "5001", nil, []string{"5001"}
	st, err := ts.StartMonitor(ctx, peer, &req)
	if err != nil {
		t.Fatalf("start by the directory's extension: %v", err)
	}
	if st.Agent != "alice" {
		t.Fatalf("the session's agent is %q, want the directory's alice", st.Agent)
	}
	if !learnedHas(ts.server, st.Session, filter.Endpoint{IP: netip.MustParseAddr("10.10.0.1")}) {
		t.Fatal("the session does not follow alice's phone from the directory")
	}

	cti := peerWithRoles(t, "cti-1", smtls.RoleClient, smtls.RoleCTI)
	if _, err := ts.AgentsBind(ctx, cti, &relay.AgentsBind{Action: relay.BindActionBind, Agent: "bob", Extensions: []string{"6001"}}); err != nil {
		t.Fatal(err)
	}
	req.Agent, req.Extensions = "6001", []string{"6001"}
	if st, err := ts.StartMonitor(ctx, peer, &req); err != nil || st.Agent != "bob" {
		t.Fatalf("start by a bound extension: %+v, %v; want agent bob", st, err)
	}
	req.Agent, req.Extensions = "7001", []string{"7001"}
	if _, err := ts.StartMonitor(ctx, peer, &req); !isCode(err, relay.CodeBadRequest) || !strings.Contains(err.Error(), "nothing is known about agent 7001") {
		t.Fatalf("start by an unknown extension: %v", err)
	}
}
