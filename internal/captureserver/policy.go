package captureserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/directory"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// KeyRules is the configuration key of the authorization rules.
const KeyRules = "authorization.rules"

// Rule is one authorization rule (authorization.rules): the clients it
// names in Identities may monitor the agents of Teams (by the agent
// directory), the agents of Agents (by id, or by an extension that is in
// no directory), or every agent when All is set.
//
// An identity is one of:
//   - "role:client" or "role:admin": every certificate with that role;
//   - a SHA-256 certificate fingerprint, 64 hexadecimal digits with or
//     without colons (as smctl certs show prints it);
//   - "CN=NAME" or a bare NAME: every certificate whose subject's common
//     name is NAME;
//   - a distinguished name of more than one attribute, such as
//     "CN=desk-sales,O=Acme" (RFC 4514 form, or "/O=Acme/CN=desk-sales"
//     as OpenSSL prints it): the certificate whose subject has exactly
//     these attributes, in any order. Attribute types ignore case;
//     values do not.
//
// Rule is a plain value.
type Rule struct {
	Identities []string `json:"identities" yaml:"identities"`
	Teams      []string `json:"teams,omitempty" yaml:"teams,omitempty"`
	Agents     []string `json:"agents,omitempty" yaml:"agents,omitempty"`
	All        bool     `json:"all,omitempty" yaml:"all,omitempty"`
}

// ParseRules reads the value of authorization.rules as the configuration
// gives it: a list of maps (from the YAML file), or a YAML or JSON text
// of that list (from the environment). nil or an empty text is no rules.
// Each error is one sentence naming the rule (counted from 1) and the bad
// key or value: an unknown key, a rule without identities or without
// teams, agents or all, an empty or unusable identity, a bad team or
// agent name.
func ParseRules(v any) ([]Rule, error) {
	if s, ok := v.(string); ok {
		if strings.TrimSpace(s) == "" {
			return nil, nil
		}
		var parsed any
		if err := yaml.Unmarshal([]byte(s), &parsed); err != nil {
			return nil, fmt.Errorf("configuration key %s is not a YAML list of rules: %v", KeyRules, firstLine(err.Error()))
		}
		v = parsed
	}
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("configuration key %s must be a list of rules (each with identities and teams, agents or all), not %T", KeyRules, v)
	}
	rules := make([]Rule, 0, len(list))
	for i, x := range list {
		r, err := parseRule(x)
		if err != nil {
			return nil, fmt.Errorf("configuration key %s, rule %d: %w", KeyRules, i+1, err)
		}
		rules = append(rules, r)
	}
	if _, err := compilePolicy(rules); err != nil {
		return nil, err
	}
	return rules, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func parseRule(x any) (Rule, error) {
	var r Rule
	m, ok := x.(map[string]any)
	if !ok {
		return r, fmt.Errorf("is %v, not a map with identities and teams, agents or all", x)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		var err error
		switch k {
		case "identities":
			r.Identities, err = stringList(k, m[k])
		case "teams":
			r.Teams, err = stringList(k, m[k])
		case "agents":
			r.Agents, err = stringList(k, m[k])
		case "all":
			b, ok := m[k].(bool)
			if !ok {
				return r, fmt.Errorf("all has value %v, which is not true or false", m[k])
			}
			r.All = b
		default:
			return r, fmt.Errorf("unknown key %q; a rule has identities, teams, agents and all", k)
		}
		if err != nil {
			return r, err
		}
	}
	return r, nil
}

// stringList accepts a list of strings (numbers are taken as written:
// agent ids are often digits) or a single string.
func stringList(key string, v any) ([]string, error) {
	item := func(x any) (string, error) {
		switch y := x.(type) {
		case string:
			return y, nil
		case int, int64, uint64, float64:
			return fmt.Sprint(y), nil
		case nil:
			return "", nil
		}
		return "", fmt.Errorf("%s holds %v, which is not a string", key, x)
	}
	switch y := v.(type) {
	case nil:
		return nil, nil
	case []any:
		out := make([]string, 0, len(y))
		for _, x := range y {
			s, err := item(x)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	case []string:
		return y, nil
	}
	s, err := item(v)
	if err != nil {
		return nil, err
	}
	return []string{s}, nil
}

// policy is the compiled form of the rules. A nil or empty policy allows
// every client. Immutable once built; safe for concurrent use.
type policy struct {
	rules []compiledRule
}

type compiledRule struct {
	ids    []identity
	teams  map[string]bool
	agents map[string]bool
	all    bool
}

type identityKind int

const (
	idCN identityKind = iota
	idDN
	idRole
	idFingerprint
)

type identity struct {
	kind  identityKind
	value string   // the common name or the normalised fingerprint
	dn    []string // idDN: "TYPE=value", sorted
	role  smtls.Role
}

// compilePolicy checks the rules and compiles them.
func compilePolicy(rules []Rule) (*policy, error) {
	p := &policy{}
	for i, r := range rules {
		bad := func(format string, a ...any) error {
			return fmt.Errorf("configuration key %s, rule %d: %s", KeyRules, i+1, fmt.Sprintf(format, a...))
		}
		if len(r.Identities) == 0 {
			return nil, bad("names no identities; give certificate subjects, common names, fingerprints or role:client / role:admin")
		}
		if len(r.Teams) == 0 && len(r.Agents) == 0 && !r.All {
			return nil, bad("allows nothing; give teams, agents or all: true")
		}
		c := compiledRule{teams: map[string]bool{}, agents: map[string]bool{}, all: r.All}
		for _, s := range r.Identities {
			id, err := parseIdentity(s)
			if err != nil {
				return nil, bad("%v", err)
			}
			c.ids = append(c.ids, id)
		}
		for _, t := range r.Teams {
			if !directory.ValidTeam(t) {
				return nil, bad("team %q is not 1 to %d of A-Z a-z 0-9 . _ -", t, directory.MaxTeamLen)
			}
			c.teams[t] = true
		}
		for _, a := range r.Agents {
			if !filter.ValidAgent(a) {
				return nil, bad("agent %q is not 1 to %d printable characters without a slash", a, filter.MaxAgentLen)
			}
			c.agents[a] = true
		}
		p.rules = append(p.rules, c)
	}
	return p, nil
}

// parseIdentity reads one identity of a rule (see Rule).
func parseIdentity(s string) (identity, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return identity{}, fmt.Errorf("an identity is empty")
	}
	if rest, ok := strings.CutPrefix(strings.ToLower(t), "role:"); ok {
		r, err := smtls.ParseRole(rest)
		if err != nil || (r != smtls.RoleClient && r != smtls.RoleAdmin) {
			return identity{}, fmt.Errorf("identity %q names no client role; use role:client or role:admin", s)
		}
		return identity{kind: idRole, role: r}, nil
	}
	if fp, ok := NormalizeFingerprint(t); ok {
		return identity{kind: idFingerprint, value: fp}, nil
	}
	if !strings.Contains(t, "=") {
		return identity{kind: idCN, value: t}, nil
	}
	attrs, err := parseDN(t)
	if err != nil {
		return identity{}, fmt.Errorf("identity %q: %v", s, err)
	}
	if len(attrs) == 1 {
		if v, ok := strings.CutPrefix(attrs[0], "CN="); ok {
			return identity{kind: idCN, value: v}, nil
		}
	}
	return identity{kind: idDN, dn: attrs}, nil
}

// parseDN splits a distinguished name into "TYPE=value" attributes
// (types upper case, values unescaped), sorted. It reads the RFC 4514
// form ("CN=a,O=b", '+' and ';' also separate) and OpenSSL's
// ("/O=b/CN=a").
func parseDN(s string) ([]string, error) {
	seps := ",;+"
	if strings.HasPrefix(s, "/") {
		seps, s = "/", s[1:]
	}
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case strings.IndexByte(seps, c) >= 0:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	parts = append(parts, cur.String())
	var out []string
	for _, p := range parts {
		typ, val, ok := strings.Cut(p, "=")
		typ, val = strings.ToUpper(strings.TrimSpace(typ)), strings.TrimSpace(val)
		if !ok || typ == "" || val == "" {
			return nil, fmt.Errorf("%q is not an attribute TYPE=value of a distinguished name", strings.TrimSpace(p))
		}
		out = append(out, typ+"="+val)
	}
	slices.Sort(out)
	return out, nil
}

// matches reports whether the client certificate of cs is id.
func (id identity) matches(cs *tls.ConnectionState) bool {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return false
	}
	cert := cs.PeerCertificates[0]
	switch id.kind {
	case idRole:
		return smtls.PeerHasRole(cs, id.role)
	case idFingerprint:
		return smtls.Fingerprint(cert.Raw) == id.value
	case idCN:
		return cert.Subject.CommonName == id.value
	case idDN:
		attrs, err := parseDN(cert.Subject.String())
		return err == nil && slices.Equal(attrs, id.dn)
	}
	return false
}

// grant is what the rules matching one client allow, together.
type grant struct {
	teams, agents map[string]bool
	all           bool
}

func (p *policy) grantFor(cs *tls.ConnectionState) grant {
	g := grant{teams: map[string]bool{}, agents: map[string]bool{}}
	for _, r := range p.rules {
		if !slices.ContainsFunc(r.ids, func(id identity) bool { return id.matches(cs) }) {
			continue
		}
		g.all = g.all || r.all
		for t := range r.teams {
			g.teams[t] = true
		}
		for a := range r.agents {
			g.agents[a] = true
		}
	}
	return g
}

// allows reports whether g covers t: every agent with all; a directory
// agent by its id or its team; an agent the directory does not know by
// the name the start gave it (agents).
func (g grant) allows(t target) bool {
	if g.all || g.agents[t.name] {
		return true
	}
	if t.found {
		return g.agents[t.agent.ID] || (t.agent.Team != "" && g.teams[t.agent.Team])
	}
	return false
}

// target is one agent a session monitors: found, the directory's agent
// named by the session's agent id, one of its extensions, or the phone of
// one of its endpoints (via says which); otherwise name is the id or
// extension the directory does not know.
type target struct {
	name  string
	via   string
	found bool
	agent directory.Agent
}

func (t target) String() string {
	if !t.found {
		return fmt.Sprintf("agent %s (not in the agent directory)", t.name)
	}
	var extra []string
	if t.agent.Team != "" {
		extra = append(extra, "team "+t.agent.Team)
	} else {
		extra = append(extra, "no team")
	}
	if t.via != "" {
		extra = append(extra, t.via)
	}
	return fmt.Sprintf("agent %s (%s)", t.agent.ID, strings.Join(extra, ", "))
}

// sessionTargets returns the agents sess monitors, as far as dir (which
// may be nil) tells: the agent of its id (or, when the id is an
// extension, that extension's agent), the agents of its extensions, and
// the agents whose phones are among its endpoints. Each agent appears
// once; names the directory does not know appear as they are (endpoints
// it does not know are taken as the session's own agent's).
func sessionTargets(sess *filter.Session, dir *directory.Directory) []target {
	var out []target
	seen := map[string]bool{}
	add := func(t target) {
		key := "?" + t.name
		if t.found {
			key = "=" + t.agent.ID
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, t)
		}
	}
	byExt := func(x string) (directory.Agent, bool) {
		if dir == nil {
			return directory.Agent{}, false
		}
		return dir.ByExtension(x)
	}
	if dir != nil {
		if ag, ok := dir.ByID(sess.Agent); ok {
			add(target{name: sess.Agent, found: true, agent: ag})
		} else if ag, ok := byExt(sess.Agent); ok {
			add(target{name: sess.Agent, via: "extension " + sess.Agent, found: true, agent: ag})
		} else {
			add(target{name: sess.Agent})
		}
	} else {
		add(target{name: sess.Agent})
	}
	for _, x := range sess.Extensions {
		if ag, ok := byExt(x); ok {
			add(target{name: x, via: "extension " + x, found: true, agent: ag})
		} else if x != sess.Agent {
			add(target{name: x})
		}
	}
	if dir == nil {
		return out
	}
	for _, e := range sess.Endpoints {
		var ag directory.Agent
		var ok bool
		if e.IP.IsValid() {
			ag, ok = dir.ByIP(e.IP)
		}
		if !ok && e.HasMAC {
			ag, ok = dir.ByMAC(e.MAC[:])
		}
		if ok {
			add(target{name: ag.ID, via: "phone " + e.String(), found: true, agent: ag})
		}
	}
	return out
}

// authorize checks the authorization rules for a session p asks for (a
// new start, a repeated one or a re-assertion): nil when no rule is
// configured, when p is an administrator, or when the rules matching p
// allow every agent the session monitors; otherwise an error wrapping
// errUnauthorized naming the client and the first agent not allowed.
func (s *server) authorize(p *relay.Peer, sess *filter.Session) error {
	s.accessMu.RLock()
	pol := s.policy
	s.accessMu.RUnlock()
	if pol == nil || len(pol.rules) == 0 || s.isAdmin(p) {
		return nil
	}
	targets := sessionTargets(sess, s.agents.dir.Load())
	if p.TLS == nil || len(p.TLS.PeerCertificates) == 0 {
		return fmt.Errorf("%w: a client without a certificate may not monitor %s: authorization rules are set and only certificates can match them",
			errUnauthorized, targets[0])
	}
	g := pol.grantFor(p.TLS)
	for _, t := range targets {
		if !g.allows(t) {
			return fmt.Errorf("%w: client %s may not monitor %s: no authorization rule allows it", errUnauthorized, peerName(p), t)
		}
	}
	return nil
}

// errUnauthorized is wrapped by a start refused by the authorization
// rules (relay.CodeUnauthorized).
var errUnauthorized = errors.New("not authorized")

// setAccess replaces the authorization rules and the administrators'
// fingerprints (security.admins) for the requests that follow: a reload.
func (s *server) setAccess(pol *policy, admins []string) {
	m := make(map[string]bool, len(admins))
	for _, fp := range admins {
		if norm, ok := NormalizeFingerprint(fp); ok {
			m[norm] = true
		}
	}
	s.accessMu.Lock()
	s.policy, s.admins = pol, m
	s.accessMu.Unlock()
}
