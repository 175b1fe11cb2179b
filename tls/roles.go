package tls

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Role is what a certificate may do in silentmon. A certificate carries
// its roles as URI subject alternative names of the form
// "silentmon:role/NAME" (RoleURI), which any CA can issue, together with
// the extended key usages the role needs (Role.Usages). One certificate
// may carry several roles.
type Role string

// The roles. Every link checks the role of the certificate on the other
// side, not only its CA:
//   - RoleCapture: a capture server (smserver). It serves clients on
//     42228 and dials supervisor services to send them media, so it needs
//     server and client authentication.
//   - RoleSupervisor: a supervisor service (smsupervisor). It accepts
//     media from capture servers and status requests from clients on
//     42228: server authentication.
//   - RolePeer: a member of a capture-server cluster on 42029; routes are
//     accepted and dialed with it: server and client authentication.
//   - RoleClient: smctl, a supervisor's desktop, a CTI integration: may
//     start sessions and stop its own; client authentication.
//   - RoleAdmin: a client that may also stop other clients' sessions and
//     read the audit trail; client authentication.
//   - RoleCTI: a CTI integration that may bind agents to their devices
//     and extensions at login and unbind them at logout (smctl agents
//     bind|unbind); client authentication.
const (
	RoleCapture    Role = "capture"
	RoleSupervisor Role = "supervisor"
	RolePeer       Role = "peer"
	RoleClient     Role = "client"
	RoleAdmin      Role = "admin"
	RoleCTI        Role = "cti"
)

// Roles lists every role in a fixed order.
var Roles = []Role{RoleCapture, RoleSupervisor, RolePeer, RoleClient, RoleAdmin, RoleCTI}

// roleChoices lists the role names for messages.
const roleChoices = "capture, supervisor, peer, client, admin or cti"

// roleURIPrefix starts the URI SAN that carries a role.
const roleURIPrefix = "silentmon:role/"

// RoleURI returns the URI subject alternative name that carries r,
// "silentmon:role/" followed by r's name.
func RoleURI(r Role) *url.URL {
	return &url.URL{Scheme: "silentmon", Opaque: "role/" + string(r)}
}

// Usages returns the extended key usages a certificate of role r needs.
func (r Role) Usages() []x509.ExtKeyUsage {
	switch r {
	case RoleCapture, RolePeer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	case RoleSupervisor:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case RoleClient, RoleAdmin, RoleCTI:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return nil
}

func (r Role) valid() bool { return slices.Contains(Roles, r) }

// ParseRole accepts one role name: capture, supervisor, peer, client,
// admin or cti.
func ParseRole(s string) (Role, error) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	if r.valid() {
		return r, nil
	}
	if r == "server" {
		return "", newErr(ErrBadArgument, "role %q is ambiguous: a capture server's certificate has role capture, a supervisor service's has role supervisor", s)
	}
	return "", newErr(ErrBadArgument, "role %q is not known; use %s", s, roleChoices)
}

// ParseRoles accepts a comma-separated list of roles ("capture,peer") and
// returns them without repetition, in the order of Roles.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, p := range strings.Split(s, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		r, err := ParseRole(p)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, newErr(ErrBadArgument, "no role given; use %s", roleChoices)
	}
	slices.SortFunc(out, func(a, b Role) int { return slices.Index(Roles, a) - slices.Index(Roles, b) })
	return out, nil
}

// RoleNames joins roles with commas, or "none".
func RoleNames(roles []Role) string {
	if len(roles) == 0 {
		return "none"
	}
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}

// RolesOf returns the roles c carries (its "silentmon:role/NAME" URI
// SANs with a known name), in the order of Roles. The extended key
// usages are not checked here; CheckRole does.
func RolesOf(c *x509.Certificate) []Role {
	var out []Role
	for _, u := range c.URIs {
		name, ok := strings.CutPrefix(u.String(), roleURIPrefix)
		if r := Role(name); ok && r.valid() && !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b Role) int { return slices.Index(Roles, a) - slices.Index(Roles, b) })
	return out
}

// hasExactUsage reports whether c's extended key usage names u. A
// certificate without the extension, or with "any", does not qualify: a
// role needs its usages written out.
func hasExactUsage(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	return slices.Contains(c.ExtKeyUsage, u)
}

// CheckRole returns the first of allowed that c carries with the extended
// key usages the role needs, or an error wrapping ErrWrongRole (no such
// role) or ErrKeyUsage (the role without its usages). name describes c in
// the message ("the client certificate", a file name).
func CheckRole(c *x509.Certificate, name string, allowed ...Role) (Role, error) {
	has := RolesOf(c)
	for _, r := range allowed {
		if !slices.Contains(has, r) {
			continue
		}
		for _, u := range r.Usages() {
			if !hasExactUsage(c, u) {
				return "", newErr(ErrKeyUsage, "%s (%q) has role %s but not the %s usage it needs (its extended key usage is %s)",
					name, c.Subject.CommonName, r, extUsageNames[u], usageNames(c))
			}
		}
		return r, nil
	}
	if len(has) == 0 {
		return "", newErr(ErrWrongRole, "%s (%q) carries no silentmon role (a URI SAN %s...); it needs role %s",
			name, c.Subject.CommonName, roleURIPrefix, roleList(allowed))
	}
	return "", newErr(ErrWrongRole, "%s (%q) has role %s, not %s", name, c.Subject.CommonName, RoleNames(has), roleList(allowed))
}

func roleList(roles []Role) string {
	s := make([]string, len(roles))
	for i, r := range roles {
		s[i] = string(r)
	}
	switch len(s) {
	case 0:
		return "none"
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// PeerHasRole reports whether the peer certificate of cs carries role r
// with the usages it needs. Nil cs or no certificate: false.
func PeerHasRole(cs *tls.ConnectionState, r Role) bool {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return false
	}
	_, err := CheckRole(cs.PeerCertificates[0], "peer", r)
	return err == nil
}

// PeerRoles returns the roles of the peer certificate in cs that it
// carries with their usages.
func PeerRoles(cs *tls.ConnectionState) []Role {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return nil
	}
	var out []Role
	for _, r := range RolesOf(cs.PeerCertificates[0]) {
		if PeerHasRole(cs, r) {
			out = append(out, r)
		}
	}
	return out
}

// verifyPeerRole returns a VerifyConnection callback: the peer's leaf must
// carry one of roles with the usages it needs. The chain itself is
// verified by crypto/tls before (ClientCAs or RootCAs); asClient means
// the peer is the client of the connection.
func verifyPeerRole(roles []Role, asClient bool) func(tls.ConnectionState) error {
	side := "server"
	if asClient {
		side = "client"
	}
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return newErr(ErrWrongRole, "the %s presented no certificate", side)
		}
		leaf := cs.PeerCertificates[0]
		need := x509.ExtKeyUsageServerAuth
		if asClient {
			need = x509.ExtKeyUsageClientAuth
		}
		if !hasExactUsage(leaf, need) {
			return newErr(ErrKeyUsage, "the %s certificate %q is not for %s (its extended key usage is %s)",
				side, leaf.Subject.CommonName, extUsageNames[need], usageNames(leaf))
		}
		_, err := CheckRole(leaf, "the "+side+" certificate", roles...)
		return err
	}
}

// errNoRoleHint is added to the error for a security file whose
// certificate carries no role: it was made before roles existed.
func errNoRoleHint(dir string) string {
	return fmt.Sprintf("; certificates made before roles existed must be reissued: `smctl certs quickstart --dir %s --force` for a local set, or as docs/security.md says", dir)
}

// Files of the peer role: a capture server presents CtiosPeer.pem on its
// cluster routes (42029), in both directions. Without it, CtiosClient.pem
// is used when it carries the peer role (the original product's layout).
const (
	PeerFile     = "CtiosPeer.pem"
	PeerKeyFile  = "CtiosPeerKey.pem"
	PeerReqFile  = "CtiosPeerReq.pem"
	PeerCertFile = "CtiosPeerCert.pem" // a signed peer certificate before bundling
)

// fileKind is which of a security directory's bundles a role's
// certificate goes in: "server" (CtiosServer.pem: capture, supervisor),
// "peer" (CtiosPeer.pem) or "client" (CtiosClient.pem: client, admin,
// cti).
func fileKind(roles []Role) string {
	for _, r := range roles {
		switch r {
		case RoleCapture, RoleSupervisor:
			return "server"
		}
	}
	if slices.Contains(roles, RolePeer) {
		return "peer"
	}
	return "client"
}

// BundleFile returns the security-directory file a certificate of roles
// belongs in: CtiosServer.pem, CtiosPeer.pem or CtiosClient.pem.
func BundleFile(roles []Role) string {
	switch fileKind(roles) {
	case "server":
		return ServerFile
	case "peer":
		return PeerFile
	}
	return ClientFile
}

// usagesOf is the union of the extended key usages roles need.
func usagesOf(roles []Role) []x509.ExtKeyUsage {
	var out []x509.ExtKeyUsage
	for _, r := range roles {
		for _, u := range r.Usages() {
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// needsServerAuth reports whether one of roles serves TLS.
func needsServerAuth(roles []Role) bool {
	return slices.Contains(usagesOf(roles), x509.ExtKeyUsageServerAuth)
}
