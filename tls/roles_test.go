package tls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// roleSet is a quickstart directory of one role, signed by the CA of the
// one-host set in base (so every set of a test shares one CA).
func roleSet(t *testing.T, base string, role Role) string {
	t.Helper()
	dir := t.TempDir()
	if err := Quickstart(dir, QuickstartOptions{Role: role, CADir: filepath.Join(base, QuickstartCADir), Password: testPW}); err != nil {
		t.Fatalf("Quickstart --role %s: %v", role, err)
	}
	return dir
}

// issueRaw signs tmpl's certificate for a fresh key with the CA of base
// and writes it with its key to path: how a third-party CA, or an older
// quickstart, might have issued it.
func issueRaw(t *testing.T, base string, tmpl *x509.Certificate, path string) {
	t.Helper()
	ca, err := LoadCA(filepath.Join(base, QuickstartCADir), testPW)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(certPEM(der), kp...), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRoleHandshakes: each link accepts only the roles it names, on
// both sides, whatever the CA signed.
func TestRoleHandshakes(t *testing.T) {
	base := quickDir(t, QuickstartOptions{})
	sets := map[Role]string{}
	for _, r := range []Role{RoleCapture, RoleSupervisor, RoleClient, RoleAdmin} {
		sets[r] = roleSet(t, base, r)
	}
	server := func(r Role, peers ...Role) *tls.Config {
		c, err := ServerConfig(sets[r], Options{Roles: []Role{r}, PeerRoles: peers})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	client := func(dir string, file string, own []Role, peers ...Role) *tls.Config {
		c, err := ClientConfig(dir, Options{File: file, Roles: own, PeerRoles: peers})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// A capture server dials a supervisor with its server bundle.
	captureDials := client(sets[RoleCapture], ServerFile, []Role{RoleCapture}, RoleSupervisor)
	// A client that would take any server.
	clientAny := client(sets[RoleClient], "", nil, RoleCapture, RoleSupervisor)
	adminAny := client(sets[RoleAdmin], "", nil, RoleCapture, RoleSupervisor)
	// A supervisor's own client bundle, used as if it were a capture server.
	supClient := client(sets[RoleSupervisor], "", nil, RoleSupervisor, RoleCapture)

	tests := []struct {
		name   string
		server *tls.Config
		client *tls.Config
		wantOK bool
	}{
		{"client to capture server", server(RoleCapture), clientAny, true},
		{"admin to capture server", server(RoleCapture), adminAny, true},
		{"capture server to supervisor", server(RoleSupervisor, RoleCapture, RoleClient, RoleAdmin), captureDials, true},
		{"client to supervisor for status", server(RoleSupervisor, RoleCapture, RoleClient, RoleAdmin), clientAny, true},
		{"supervisor's client bundle to a capture-only listener", server(RoleSupervisor, RoleCapture), supClient, false},
		{"client to a capture-only listener", server(RoleSupervisor, RoleCapture), clientAny, false},
		{"admin to a capture-only listener", server(RoleSupervisor, RoleCapture), adminAny, false},
		// The capture server expects a supervisor: a capture server
		// answering in its place is refused by the dialer.
		{"capture server dials a capture server", server(RoleCapture, RoleCapture), captureDials, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client.Clone()
			c.ServerName = "localhost"
			cerr, serr := handshake(t, tc.server, c)
			if tc.wantOK && (cerr != nil || serr != nil) {
				t.Fatalf("handshake failed: client %v, server %v", cerr, serr)
			}
			if !tc.wantOK && cerr == nil && serr == nil {
				t.Fatal("handshake succeeded, want refusal")
			}
		})
	}
}

// TestCertificateWithoutUsageRefused: a certificate signed by the site CA
// without an extended key usage extension is not a client, even when it
// names a role; nor is one without any role.
func TestCertificateWithoutUsageRefused(t *testing.T) {
	base := quickDir(t, QuickstartOptions{})
	scfg, err := ServerConfig(base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tmpl *x509.Certificate
	}{
		{"no usage, no role", &x509.Certificate{Subject: pkix.Name{CommonName: "third-party"}}},
		{"no usage, client role", &x509.Certificate{Subject: pkix.Name{CommonName: "third-party"}, URIs: []*url.URL{RoleURI(RoleClient)}}},
		{"any usage, client role", &x509.Certificate{Subject: pkix.Name{CommonName: "third-party"}, URIs: []*url.URL{RoleURI(RoleClient)},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}},
		{"client usage, no role", &x509.Certificate{Subject: pkix.Name{CommonName: "old client"}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.pem")
			issueRaw(t, base, tc.tmpl, path)
			pair, err := ReadPair(path)
			if err != nil {
				t.Fatal(err)
			}
			ccfg, err := ClientConfig(base, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ccfg.Certificates = []tls.Certificate{pair.TLSCertificate()}
			_, serr := handshake(t, scfg, ccfg)
			if serr == nil {
				t.Fatal("the server accepted the certificate")
			}
			if !errors.Is(serr, ErrWrongRole) && !errors.Is(serr, ErrKeyUsage) {
				t.Errorf("server error %v, want a role or usage refusal", serr)
			}
		})
	}
}

// TestOldSetRefusedWithHint: a security directory whose certificates
// carry no role (made before roles existed) fails at start with one
// sentence saying how to reissue it.
func TestOldSetRefusedWithHint(t *testing.T) {
	base := quickDir(t, QuickstartOptions{})
	issueRaw(t, base, &x509.Certificate{Subject: pkix.Name{CommonName: "silentmon server old"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}, filepath.Join(base, ServerFile))
	_, err := ServerConfig(base, Options{})
	if !errors.Is(err, ErrWrongRole) {
		t.Fatalf("ServerConfig: %v, want ErrWrongRole", err)
	}
	for _, want := range []string{ServerFile, "carries no silentmon role", "smctl certs quickstart --dir " + base + " --force", "docs/security.md"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestPeerConfigRoles: routes present CtiosPeer.pem, or CtiosClient.pem
// when it is a peer's; a client bundle without the peer role is refused.
func TestPeerConfigRoles(t *testing.T) {
	base := quickDir(t, QuickstartOptions{})
	c, err := PeerConfig(base, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := RolesOf(c.Certificates[0].Leaf); len(got) != 1 || got[0] != RolePeer {
		t.Errorf("routes present roles %v, want peer", got)
	}
	// The original layout: the peer certificate in CtiosClient.pem.
	old := roleSet(t, base, RoleCapture)
	if err := os.Rename(filepath.Join(old, PeerFile), filepath.Join(old, ClientFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := PeerConfig(old, Options{}); err != nil {
		t.Errorf("PeerConfig with the peer certificate in CtiosClient.pem: %v", err)
	}
	// A supervisor's set has no peer certificate.
	if _, err := PeerConfig(roleSet(t, base, RoleSupervisor), Options{}); !errors.Is(err, ErrWrongRole) {
		t.Errorf("PeerConfig of a supervisor's set: %v, want ErrWrongRole", err)
	}
}

func TestParseRoles(t *testing.T) {
	got, err := ParseRoles("peer, capture,peer")
	if err != nil || RoleNames(got) != "capture, peer" {
		t.Errorf("ParseRoles = %v, %v", got, err)
	}
	for _, bad := range []string{"", "server", "root", "client,boss"} {
		if _, err := ParseRoles(bad); !errors.Is(err, ErrBadArgument) {
			t.Errorf("ParseRoles(%q) = %v, want ErrBadArgument", bad, err)
		}
	}
	if _, err := ParseRole("server"); err == nil || !strings.Contains(err.Error(), "capture") {
		t.Errorf("ParseRole(server) = %v, want a hint", err)
	}
}

// TestServerConfigChecksDirectory: a server's security directory holding
// the CA key is refused with Strict and warned about without it.
func TestServerConfigChecksDirectory(t *testing.T) {
	dir := quickDir(t, QuickstartOptions{})
	key, err := os.ReadFile(filepath.Join(dir, QuickstartCADir, RootKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, RootKeyFile), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ServerConfig(dir, Options{Strict: true}); !errors.Is(err, ErrCAKeyOnServer) {
		t.Fatalf("strict ServerConfig with the CA key in the directory: %v, want ErrCAKeyOnServer", err)
	}
	var log strings.Builder
	if _, err := ServerConfig(dir, Options{Logger: slog.New(slog.NewTextHandler(&log, nil))}); err != nil {
		t.Fatalf("ServerConfig: %v", err)
	}
	if !strings.Contains(log.String(), RootKeyFile) {
		t.Errorf("no warning names %s: %s", RootKeyFile, log.String())
	}
}

// TestCTIRole: quickstart --role cti writes CtiosClient.pem with roles
// client and cti and the client usage; a capture server's listener
// (client, admin or cti) lets it in and sees the cti role on it; a
// listener for the cti role alone refuses a plain client's certificate;
// "cti" parses and is listed in the messages.
func TestCTIRole(t *testing.T) {
	base := quickDir(t, QuickstartOptions{})
	ctiDir, cliDir := roleSet(t, base, RoleCTI), roleSet(t, base, RoleClient)
	capDir := roleSet(t, base, RoleCapture)
	pair, err := tls.LoadX509KeyPair(filepath.Join(ctiDir, ClientFile), filepath.Join(ctiDir, ClientFile))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := RolesOf(leaf); RoleNames(got) != "client, cti" {
		t.Errorf("roles of the cti set's CtiosClient.pem: %s, want client, cti", RoleNames(got))
	}
	if r, err := CheckRole(leaf, "the cti certificate", RoleCTI); err != nil || r != RoleCTI {
		t.Errorf("CheckRole(cti) = %v, %v", r, err)
	}
	client := func(dir string) *tls.Config {
		c, err := ClientConfig(dir, Options{PeerRoles: []Role{RoleCapture}})
		if err != nil {
			t.Fatal(err)
		}
		c.ServerName = "localhost"
		return c
	}
	server := func(peers ...Role) *tls.Config {
		c, err := ServerConfig(capDir, Options{Roles: []Role{RoleCapture}, PeerRoles: peers})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var seen *tls.ConnectionState
	scfg := server(RoleClient, RoleAdmin, RoleCTI)
	verify := scfg.VerifyConnection
	scfg.VerifyConnection = func(cs tls.ConnectionState) error {
		seen = &cs
		return verify(cs)
	}
	if cerr, serr := handshake(t, scfg, client(ctiDir)); cerr != nil || serr != nil {
		t.Fatalf("cti set to a capture server: client %v, server %v", cerr, serr)
	}
	if !PeerHasRole(seen, RoleCTI) || PeerHasRole(seen, RoleAdmin) {
		t.Errorf("the capture server sees roles %s on the cti certificate, want client, cti", RoleNames(PeerRoles(seen)))
	}
	if cerr, serr := handshake(t, server(RoleCTI), client(cliDir)); cerr == nil && serr == nil {
		t.Error("a plain client's certificate was let in by a listener for the cti role only")
	}
	if r, err := ParseRole(" CTI "); err != nil || r != RoleCTI {
		t.Errorf("ParseRole(CTI) = %v, %v", r, err)
	}
	if _, err := ParseRole("boss"); err == nil || !strings.Contains(err.Error(), "admin or cti") {
		t.Errorf("ParseRole(boss) = %v, want the list of roles with cti", err)
	}
	if BundleFile([]Role{RoleCTI}) != ClientFile {
		t.Errorf("a cti certificate belongs in %s, want %s", BundleFile([]Role{RoleCTI}), ClientFile)
	}
}
