package captureserver

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// peerWithRoles returns a peer presenting a certificate with common name
// cn, client usage and the given silentmon roles.
func peerWithRoles(t *testing.T, cn string, roles ...smtls.Role) *relay.Peer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	for _, r := range roles {
		tmpl.URIs = append(tmpl.URIs, smtls.RoleURI(r))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &relay.Peer{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50001},
		TLS: &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c}}}
}

// TestAdminRole: a certificate with the admin role may stop another
// client's session and read the audit trail without being listed in
// security.admins; a client-role certificate may do neither; the
// admin URI without client usage does not count.
func TestAdminRole(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	alice := peerWithRoles(t, "alice", smtls.RoleClient)
	bob := peerWithRoles(t, "bob", smtls.RoleClient)
	boss := peerWithRoles(t, "boss", smtls.RoleClient, smtls.RoleAdmin)
	fake := peerWithRoles(t, "fake", smtls.RoleAdmin)
	fake.TLS.PeerCertificates[0].ExtKeyUsage = nil // the role without its usage
	fake.TLS.PeerCertificates[0].URIs = []*url.URL{smtls.RoleURI(smtls.RoleAdmin)}
	ctx := context.Background()
	st, err := ts.StartMonitor(ctx, alice, &startReq)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*relay.Peer{bob, fake} {
		if _, err := ts.StopMonitor(ctx, p, &relay.StopMonitor{Session: st.Session}); !isCode(err, relay.CodeUnauthorized) {
			t.Fatalf("stop by %s: %v, want unauthorized", p.TLS.PeerCertificates[0].Subject.CommonName, err)
		}
		if ts.mayAudit(p) {
			t.Fatalf("%s may read the audit", p.TLS.PeerCertificates[0].Subject.CommonName)
		}
	}
	if !ts.mayAudit(boss) {
		t.Fatal("an admin-role certificate may not read the audit")
	}
	if _, err := ts.StopMonitor(ctx, boss, &relay.StopMonitor{Session: st.Session}); err != nil {
		t.Fatalf("stop by an administrator: %v", err)
	}
	if ss := ts.filter.Sessions(); len(ss) != 0 {
		t.Fatalf("sessions left %v", ss)
	}
}
