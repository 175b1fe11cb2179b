package captureserver

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"strings"

	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"github.com/silentmon/silentmon/internal/audit"
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

// TestAuthRefusedAudited: over real TLS to a running capture server, a
// supervisor service's certificate (no client usage), a capture server's
// (client usage, wrong role) and a connection without a certificate are
// refused and each leaves an auth-refused line in the audit trail, with
// the source, the reason and, for the wrong role, the certificate's
// subject; a client certificate gets in.
func TestAuthRefusedAudited(t *testing.T) {
	base := t.TempDir()
	pw := []byte("correct horse battery staple")
	if err := smtls.Quickstart(base, smtls.QuickstartOptions{Password: pw}); err != nil {
		t.Fatal(err)
	}
	roleDir := func(r smtls.Role) string {
		d := t.TempDir()
		if err := smtls.Quickstart(d, smtls.QuickstartOptions{Role: r, Password: pw, CADir: filepath.Join(base, smtls.QuickstartCADir)}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	capDir, supDir, cliDir := roleDir(smtls.RoleCapture), roleDir(smtls.RoleSupervisor), roleDir(smtls.RoleClient)
	cfg := runConfig(t, filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap"))
	cfg.Insecure, cfg.SecurityDir = false, capDir
	cfg.AuditFile = filepath.Join(t.TempDir(), "audit.log")
	cfg.LockThreshold, cfg.LockDuration = 10, time.Minute
	addr := make(chan net.Addr, 1)
	cfg.listening = func(r, m net.Addr) { addr <- r }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, io.Discard, io.Discard) }()
	var relayAddr net.Addr
	select {
	case relayAddr = <-addr:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	dial := func(dir, file string, own ...smtls.Role) error {
		c, err := smtls.ClientConfig(dir, smtls.Options{File: file, Roles: own})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", relayAddr.String(), c)
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3: the server's verdict on our certificate arrives with
		// the first read.
		conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			return nil
		}
		return err
	}
	if err := dial(supDir, smtls.ServerFile, smtls.RoleSupervisor); err == nil {
		t.Error("a supervisor's certificate was let in on a capture server's 42228")
	}
	if err := dial(capDir, smtls.ServerFile, smtls.RoleCapture); err == nil {
		t.Error("a capture server's certificate was let in as a client")
	}
	noCert, err := smtls.ClientConfig(cliDir, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	noCert.Certificates = nil
	if c, err := tls.Dial("tcp", relayAddr.String(), noCert); err == nil {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.Read(make([]byte, 1))
		c.Close()
	}
	if err := dial(cliDir, ""); err != nil {
		t.Errorf("a client certificate was refused: %v", err)
	}
	var lines []audit.Record
	waitUntil(t, "three auth-refused lines", func() bool {
		lines, _, _ = audit.ReadFile(cfg.AuditFile, audit.Query{})
		n := 0
		for _, l := range lines {
			if l.Action == audit.ActionAuthRefused {
				n++
			}
		}
		return n == 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	var reasons []string
	for _, l := range lines {
		if l.Action != audit.ActionAuthRefused {
			continue
		}
		reasons = append(reasons, l.Reason)
		if !strings.HasPrefix(l.Source, "127.0.0.1:") {
			t.Errorf("auth-refused line without the source: %+v", l)
		}
		if strings.HasPrefix(l.Reason, "wrong_role") && !strings.Contains(l.ClientSubject, "capture") {
			t.Errorf("wrong-role line without the certificate's subject: %+v", l)
		}
	}
	slices.Sort(reasons)
	// The supervisor's certificate lacks client usage (bad_certificate);
	// the capture server's has it but not a client's role (wrong_role).
	if len(reasons) != 3 || !strings.HasPrefix(reasons[0], "bad_certificate") || !strings.HasPrefix(reasons[1], "no_certificate") ||
		!strings.HasPrefix(reasons[2], "wrong_role") {
		t.Errorf("auth-refused reasons %q, want bad_certificate, no_certificate and wrong_role", reasons)
	}
}
