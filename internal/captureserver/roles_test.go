package captureserver

import (
	"context"
	"crypto/tls"
	"net"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

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
	var capDir, supDir, cliDir string
	r := newTLSRig(t, func(r *tlsRig, cfg *Config) {
		capDir, supDir, cliDir = r.roleSet(t, smtls.RoleCapture), r.roleSet(t, smtls.RoleSupervisor), r.roleSet(t, smtls.RoleClient)
		cfg.SecurityDir = capDir
		cfg.LockThreshold, cfg.LockDuration = 10, time.Minute
	})
	dial := func(dir, file string, own ...smtls.Role) error {
		c, err := smtls.ClientConfig(dir, smtls.Options{File: file, Roles: own})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", r.addr, c)
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
	if c, err := tls.Dial("tcp", r.addr, noCert); err == nil {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		c.Read(make([]byte, 1))
		c.Close()
	}
	if err := dial(cliDir, ""); err != nil {
		t.Errorf("a client certificate was refused: %v", err)
	}
	var lines []audit.Record
	waitUntil(t, "three auth-refused lines", func() bool {
		lines, _, _ = audit.ReadFile(r.audit, audit.Query{})
		n := 0
		for _, l := range lines {
			if l.Action == audit.ActionAuthRefused {
				n++
			}
		}
		return n == 3
	})
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
