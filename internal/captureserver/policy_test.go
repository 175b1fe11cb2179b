package captureserver

import (
	"context"
	"crypto/x509/pkix"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/directory"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// policyDirectory is the agent directory of the policy tests: agent 1001
// of team sales (extension 5001, phone 10.10.0.1), agent 2001 of team
// support (extension 5002, phone 10.20.0.1), agent 3001 without a team.
const policyDirectory = `agents:
  - id: "1001"
    name: Sam Sales
    team: sales
    extensions: ["5001"]
    phone_ip: 10.10.0.1
  - id: "2001"
    name: Sue Support
    team: support
    extensions: ["5002"]
    phone_ip: 10.20.0.1
  - id: "3001"
    name: Tom Teamless
    extensions: ["5003"]
`

func writeDirectory(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agents.yaml")
	if err := os.WriteFile(p, []byte(policyDirectory), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadPolicyDirectory(t *testing.T) *directory.Directory {
	t.Helper()
	d, err := directory.Load(writeDirectory(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// deskSet writes a security directory holding a client-role certificate
// with common name cn, signed by the CA of the quickstart set in base.
func deskSet(t *testing.T, base string, pw []byte, cn string) string {
	t.Helper()
	dir := t.TempDir()
	kp, rp, err := smtls.CreateRequest(dir, smtls.RequestOptions{Roles: []smtls.Role{smtls.RoleClient}, CommonName: cn})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := smtls.LoadCA(filepath.Join(base, smtls.QuickstartCADir), pw)
	if err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(dir, "desk.crt")
	if _, err := smtls.SignFile(ca, rp, certPath, smtls.SignOptions{}, false); err != nil {
		t.Fatal(err)
	}
	var bundle []byte
	for _, p := range []string{certPath, kp} {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		bundle = append(bundle, b...)
	}
	if err := os.WriteFile(filepath.Join(dir, smtls.ClientFile), bundle, 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(base, smtls.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, smtls.RootCertFile), root, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startTLSServer runs a capture server over mutual TLS with the policy
// directory and rules (see tlsRig).
func startTLSServer(t *testing.T, rules []Rule) *tlsRig {
	t.Helper()
	return newTLSRig(t, func(r *tlsRig, cfg *Config) {
		cfg.PcapWaitSession = true
		cfg.DirectoryFile, cfg.Rules, cfg.LogLevel = writeDirectory(t), rules, "warn"
	})
}

func startAgent(cl *relay.Client, req relay.StartMonitor) (*relay.SessionStatus, error) {
	if req.Supervisor == "" {
		req.Supervisor = "127.0.0.1:9"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return cl.StartMonitor(ctx, req)
}

// TestPolicyOverTLS: over real mutual TLS, with the rule
// {identities: ["CN=desk-sales"], teams: [sales]}, the desk-sales client
// may monitor agent 1001 (team sales); it is refused, with code
// unauthorized and a sentence naming the client, the agent and its team,
// for agent 2001 (team support) whether named by id, by its extension
// alone or by its phone's address added to a sales agent; each refusal is
// in the audit trail with its reason. The quickstart administrator
// (admin role) may monitor 2001. No warning about missing rules is
// logged.
func TestPolicyOverTLS(t *testing.T) {
	r := startTLSServer(t, []Rule{{Identities: []string{"CN=desk-sales"}, Teams: []string{"sales"}}})
	desk := r.client(t, deskSet(t, r.base, r.pw, "desk-sales"))
	other := r.client(t, deskSet(t, r.base, r.pw, "desk-other"))
	admin := r.client(t, r.base)

	if st, err := startAgent(desk, relay.StartMonitor{Agent: "1001"}); err != nil || st.Agent != "1001" {
		t.Fatalf("desk-sales monitoring agent 1001 of its team: %+v, %v", st, err)
	}
	const client = "client CN=desk-sales,O=silentmon may not monitor "
	for _, tc := range []struct {
		name string
		req  relay.StartMonitor
		want string
	}{
		{"by id", relay.StartMonitor{Agent: "2001"}, client + "agent 2001 (team support): no authorization rule allows it"},
		// A start by extension alone is a start for the directory's agent
		// of that extension.
		{"by extension", relay.StartMonitor{Agent: "5002", Extensions: []string{"5002"}}, client + "agent 2001 (team support)"},
		{"by phone", relay.StartMonitor{Agent: "1001", Endpoints: []string{"10.20.0.1"}}, client + "agent 2001 (team support, phone 10.20.0.1)"},
		{"teamless", relay.StartMonitor{Agent: "3001"}, client + "agent 3001 (no team)"},
		{"unknown agent", relay.StartMonitor{Agent: "9999", Wait: true}, client + "agent 9999 (not in the agent directory)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := startAgent(desk, tc.req)
			if !isCode(err, relay.CodeUnauthorized) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want code unauthorized and %q", err, tc.want)
			}
		})
	}
	if _, err := startAgent(other, relay.StartMonitor{Agent: "1001"}); !isCode(err, relay.CodeUnauthorized) ||
		!strings.Contains(err.Error(), "client CN=desk-other,O=silentmon may not monitor agent 1001 (team sales)") {
		t.Fatalf("a client no rule names: %v", err)
	}
	if st, err := startAgent(admin, relay.StartMonitor{Agent: "2001"}); err != nil || st.Agent != "2001" {
		t.Fatalf("the administrator monitoring agent 2001: %+v, %v", st, err)
	}

	lines, _, err := audit.ReadFile(r.audit, audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	var refused, accepted []string
	for _, l := range lines {
		if l.Action != audit.ActionStart {
			continue
		}
		switch l.Result {
		case audit.ResultRefused:
			refused = append(refused, l.Agent)
			if !strings.Contains(l.Reason, "may not monitor agent") || !strings.Contains(l.ClientSubject, "CN=desk-") {
				t.Errorf("refused line %+v, want the client and the reason", l)
			}
		case audit.ResultAccepted:
			accepted = append(accepted, l.Agent)
		}
	}
	if strings.Join(refused, " ") != "2001 2001 1001 3001 9999 1001" || strings.Join(accepted, " ") != "1001 2001" {
		t.Fatalf("audit: refused %v, accepted %v", refused, accepted)
	}
	for _, l := range lines {
		if l.Action == audit.ActionStart && l.Result == audit.ResultRefused && l.Agent == "2001" &&
			!strings.Contains(l.Reason, "client CN=desk-sales,O=silentmon may not monitor agent 2001 (team support)") {
			t.Errorf("the refusal of agent 2001 has reason %q", l.Reason)
		}
	}
	if strings.Contains(r.log.String(), "every client may monitor every agent") {
		t.Errorf("the no-rules warning was logged with rules set: %s", r.log.String())
	}
}

// TestNoRulesAllowsEveryone: without authorization rules every client
// may monitor every agent, and the server says so once, at start.
func TestNoRulesAllowsEveryone(t *testing.T) {
	r := startTLSServer(t, nil)
	desk := r.client(t, deskSet(t, r.base, r.pw, "desk-sales"))
	for _, agent := range []string{"1001", "2001", "3001"} {
		if _, err := startAgent(desk, relay.StartMonitor{Agent: agent}); err != nil {
			t.Fatalf("agent %s: %v", agent, err)
		}
	}
	if n := strings.Count(r.log.String(), "every client may monitor every agent"); n != 1 {
		t.Fatalf("the no-rules warning was logged %d times, want once:\n%s", n, r.log.String())
	}
}

// TestRulesRefusedAtStart: bad rules, and rules on an --insecure server,
// stop Run with a usage error (exit 2) of one sentence naming the value.
func TestRulesRefusedAtStart(t *testing.T) {
	for _, tc := range []struct {
		rules    []Rule
		insecure bool
		want     string
	}{
		{[]Rule{{Identities: []string{""}, All: true}}, false, "authorization.rules, rule 1: an identity is empty"},
		{[]Rule{{Identities: []string{"x"}, Teams: []string{"bad team"}}}, false, `team "bad team" is not`},
		{[]Rule{{Identities: []string{"x"}, All: true}}, true, "cannot be enforced with --insecure"},
	} {
		cfg := runConfig(t, filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap"))
		cfg.Rules, cfg.Insecure = tc.rules, tc.insecure
		err := Run(context.Background(), cfg, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%+v: %v, want %q", tc.rules, err, tc.want)
			continue
		}
		if cli.CodeOf(err) != 2 {
			t.Errorf("%v: exit code %d, want 2", err, cli.CodeOf(err))
		}
	}
}

// TestParseRules: the forms of authorization.rules the configuration
// gives (a list of maps from the file, YAML or JSON text from the
// environment) and the sentence of each bad rule.
func TestParseRules(t *testing.T) {
	good := []any{
		map[string]any{"identities": []any{"CN=desk-sales", "role:admin"}, "teams": []any{"sales"}},
		map[string]any{"identities": "desk-2", "agents": []any{1001, "1002"}},
		map[string]any{"identities": []any{"role:client"}, "all": true},
	}
	rules, err := ParseRules(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 || rules[1].Agents[0] != "1001" || rules[1].Identities[0] != "desk-2" || !rules[2].All {
		t.Fatalf("rules %+v", rules)
	}
	text, err := ParseRules(`[{identities: ["CN=desk-sales"], teams: [sales]}]`)
	if err != nil || len(text) != 1 || text[0].Teams[0] != "sales" {
		t.Fatalf("YAML text: %+v, %v", text, err)
	}
	if none, err := ParseRules(nil); err != nil || none != nil {
		t.Fatalf("nil: %v, %v", none, err)
	}
	if none, err := ParseRules([]any{}); err != nil || len(none) != 0 {
		t.Fatalf("empty: %v, %v", none, err)
	}
	for _, tc := range []struct {
		v    any
		want string
	}{
		{[]any{map[string]any{"identities": []any{"x"}, "team": []any{"sales"}}}, `rule 1: unknown key "team"; a rule has identities, teams, agents and all`},
		{[]any{map[string]any{"teams": []any{"sales"}}}, "rule 1: names no identities"},
		{[]any{map[string]any{"identities": []any{"  "}, "all": true}}, "rule 1: an identity is empty"},
		{[]any{map[string]any{"identities": []any{"x"}, "all": true}, map[string]any{"identities": []any{"x"}}}, "rule 2: allows nothing; give teams, agents or all: true"},
		{[]any{map[string]any{"identities": []any{"x"}, "teams": []any{"sales/eu"}}}, `rule 1: team "sales/eu" is not 1 to 64 of A-Z a-z 0-9 . _ -`},
		{[]any{map[string]any{"identities": []any{"x"}, "teams": []any{""}}}, `rule 1: team "" is not`},
		{[]any{map[string]any{"identities": []any{"role:capture"}, "all": true}}, `identity "role:capture" names no client role; use role:client or role:admin`},
		{[]any{map[string]any{"identities": []any{"CN=a,O"}, "all": true}}, `identity "CN=a,O": "O" is not an attribute TYPE=value`},
		{[]any{map[string]any{"identities": []any{"x"}, "all": "yes"}}, "rule 1: all has value yes, which is not true or false"},
		{[]any{map[string]any{"identities": []any{"x"}, "agents": []any{"a/b"}}}, `agent "a/b" is not`},
		{[]any{"CN=desk"}, "rule 1: is CN=desk, not a map"},
		{map[string]any{"identities": "x"}, "authorization.rules must be a list of rules"},
		{"[{identities: [x]", "authorization.rules is not a YAML list of rules"},
	} {
		_, err := ParseRules(tc.v)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line with %q", tc.v, err, tc.want)
		}
	}
}

// TestIdentityForms: each form of identity matches the certificates it
// names and no other.
func TestIdentityForms(t *testing.T) {
	p := certPeer(t, pkix.Name{CommonName: "desk-sales", Organization: []string{"Acme"}, OrganizationalUnit: []string{"Floor 2"}}, smtls.RoleClient)
	_, fp := smtls.PeerIdentity(p.TLS)
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"desk-sales", true},
		{"CN=desk-sales", true},
		{"cn = desk-sales", true},
		{"CN=Desk-Sales", false},
		{"desk", false},
		{"CN=desk-sales,OU=Floor 2,O=Acme", true},
		{"O=Acme, OU=Floor 2, CN=desk-sales", true},
		{"/O=Acme/OU=Floor 2/CN=desk-sales", true},
		{"CN=desk-sales,O=Acme", false},
		{"CN=desk-sales,OU=Floor 2,O=Other", false},
		{"CN=desk-sales,OU=Floor 2,O=Acme,C=FR", false},
		{fp, true},
		{strings.ToLower(strings.ReplaceAll(fp, ":", "")), true},
		{strings.Repeat("AB", 32), false},
		{"role:client", true},
		{"ROLE:Client", true},
		{"role:admin", false},
	} {
		id, err := parseIdentity(tc.id)
		if err != nil {
			t.Errorf("%q: %v", tc.id, err)
			continue
		}
		if got := id.matches(p.TLS); got != tc.want {
			t.Errorf("%q matches %v, want %v", tc.id, got, tc.want)
		}
	}
	if id, _ := parseIdentity("desk-sales"); id.matches(nil) {
		t.Error("an identity matches a connection without a certificate")
	}
}

// policyServer is a test server with the policy directory and rules.
func policyServer(t *testing.T, rules []Rule) *testServer {
	t.Helper()
	ts := newTestServer(t, t.TempDir())
	ts.agents.setDirectory(loadPolicyDirectory(t))
	pol, err := compilePolicy(rules)
	if err != nil {
		t.Fatal(err)
	}
	ts.policy = pol
	return ts
}

// TestPolicyRules: the rules matching a client add up; agents are
// allowed by id (agents), by team (teams) or all; an agent the directory
// does not know only by agents or all; a start naming several agents
// (extensions, phones) needs every one allowed; administrators (role or
// security.admins) may monitor everyone; a client without a certificate
// nothing; every refusal is counted.
func TestPolicyRules(t *testing.T) {
	ts := policyServer(t, []Rule{
		{Identities: []string{"desk-sales"}, Teams: []string{"sales"}},
		{Identities: []string{"role:client"}, Agents: []string{"3001", "9999"}},
		{Identities: []string{"CN=boss"}, All: true},
	})
	desk := certPeer(t, pkix.Name{CommonName: "desk-sales"}, smtls.RoleClient)
	plain := certPeer(t, pkix.Name{CommonName: "desk-plain"}, smtls.RoleClient)
	boss := certPeer(t, pkix.Name{CommonName: "boss"}, smtls.RoleClient)
	admin := certPeer(t, pkix.Name{CommonName: "someone"}, smtls.RoleClient, smtls.RoleAdmin)
	listed := certPeer(t, pkix.Name{CommonName: "listed"}, smtls.RoleClient)
	_, listedFP := smtls.PeerIdentity(listed.TLS)
	ts.admins[listedFP] = true
	ctx := context.Background()
	for _, tc := range []struct {
		who   string
		p     *relay.Peer
		req   relay.StartMonitor
		allow bool
	}{
		{"desk 1001", desk, relay.StartMonitor{Agent: "1001"}, true},
		{"desk 1001 by extension", desk, relay.StartMonitor{Agent: "5001", Extensions: []string{"5001"}, Wait: true}, true},
		{"desk 1001 and its phone", desk, relay.StartMonitor{Agent: "1001", Endpoints: []string{"10.10.0.1", "192.0.2.7"}}, true},
		{"desk 3001 (role rule)", desk, relay.StartMonitor{Agent: "3001"}, true},
		{"desk unknown listed", desk, relay.StartMonitor{Agent: "9999", Wait: true}, true},
		{"desk unknown", desk, relay.StartMonitor{Agent: "8888", Wait: true}, false},
		{"desk 2001", desk, relay.StartMonitor{Agent: "2001"}, false},
		{"desk 1001 with 2001's extension", desk, relay.StartMonitor{Agent: "1001", Extensions: []string{"5002"}}, false},
		{"desk 1001 with an unknown extension", desk, relay.StartMonitor{Agent: "1001", Extensions: []string{"7777"}}, false},
		{"plain 1001", plain, relay.StartMonitor{Agent: "1001"}, false},
		{"plain 3001", plain, relay.StartMonitor{Agent: "3001"}, true},
		{"boss 2001", boss, relay.StartMonitor{Agent: "2001"}, true},
		{"boss unknown", boss, relay.StartMonitor{Agent: "8888", Wait: true}, true},
		{"admin role 2001", admin, relay.StartMonitor{Agent: "2001"}, true},
		{"security.admins 2001", listed, relay.StartMonitor{Agent: "2001"}, true},
		{"no certificate 3001", &relay.Peer{}, relay.StartMonitor{Agent: "3001"}, false},
	} {
		t.Run(tc.who, func(t *testing.T) {
			req := tc.req
			req.Supervisor = "127.0.0.1:9"
			_, err := ts.StartMonitor(ctx, tc.p, &req)
			if tc.allow && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.allow && !isCode(err, relay.CodeUnauthorized) {
				t.Fatalf("got %v, want unauthorized", err)
			}
		})
	}
	if n := ts.unauthorized.Load(); n != 6 {
		t.Fatalf("silentmon_starts_unauthorized_total %d, want 6", n)
	}
}

// TestReassertChecked: a client re-asserting its session (after a
// failover) or repeating its start (same idempotency key) is checked
// against the rules as a new start is: a session it may no longer
// monitor is refused and audited.
func TestReassertChecked(t *testing.T) {
	ts := policyServer(t, nil)
	desk := certPeer(t, pkix.Name{CommonName: "desk-sales"}, smtls.RoleClient)
	ctx := context.Background()
	req := relay.StartMonitor{Agent: "2001", Supervisor: "127.0.0.1:9", IdempotencyKey: "k1"}
	st, err := ts.StartMonitor(ctx, desk, &req)
	if err != nil {
		t.Fatal(err)
	}
	pol, err := compilePolicy([]Rule{{Identities: []string{"desk-sales"}, Teams: []string{"sales"}}})
	if err != nil {
		t.Fatal(err)
	}
	ts.policy = pol
	if _, err := ts.StartMonitor(ctx, desk, &relay.StartMonitor{Session: st.Session, Agent: "2001", Supervisor: "127.0.0.1:9"}); !isCode(err, relay.CodeUnauthorized) ||
		!strings.Contains(err.Error(), "may not monitor agent 2001 (team support)") {
		t.Fatalf("re-assertion: %v", err)
	}
	if _, err := ts.StartMonitor(ctx, desk, &req); !isCode(err, relay.CodeUnauthorized) {
		t.Fatalf("repeated start: %v", err)
	}
	n := 0
	for _, l := range ts.auditLines(t) {
		if l.Action == audit.ActionStart && l.Result == audit.ResultRefused && strings.Contains(l.Reason, "may not monitor agent 2001") {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d refused lines, want 2", n)
	}
}
