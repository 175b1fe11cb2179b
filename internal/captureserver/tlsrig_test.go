package captureserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"math/big"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// certPeer returns a peer presenting a self-signed certificate with
// subject name, client usage and the given silentmon roles.
func certPeer(t *testing.T, name pkix.Name, roles ...smtls.Role) *relay.Peer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: name,
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

// peerWithRoles returns a peer presenting a certificate with common name
// cn, client usage and the given silentmon roles.
func peerWithRoles(t *testing.T, cn string, roles ...smtls.Role) *relay.Peer {
	t.Helper()
	return certPeer(t, pkix.Name{CommonName: cn}, roles...)
}

// lockedBuffer is a bytes.Buffer safe for the logger's writes and the
// test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// tlsRig is a capture server running over mutual TLS on a pcap of
// testdata, with an audit file and its log in log. base holds the
// quickstart set (CA and every certificate, whose CtiosClient.pem has the
// admin role), protected by pw.
type tlsRig struct {
	addr, audit, base string
	pw                []byte
	log               *lockedBuffer
}

// newTLSRig writes a quickstart set and runs a capture server with it as
// its security directory; tune, when not nil, changes the configuration
// before the start (it may make role sets with r.roleSet). The server
// stops when the test ends.
func newTLSRig(t *testing.T, tune func(r *tlsRig, cfg *Config)) *tlsRig {
	t.Helper()
	r := &tlsRig{base: t.TempDir(), pw: []byte("correct horse battery staple"), log: &lockedBuffer{}}
	if err := smtls.Quickstart(r.base, smtls.QuickstartOptions{Password: r.pw}); err != nil {
		t.Fatal(err)
	}
	cfg := runConfig(t, filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap"))
	cfg.Insecure, cfg.SecurityDir = false, r.base
	cfg.AuditFile = filepath.Join(t.TempDir(), "audit.log")
	if tune != nil {
		tune(r, cfg)
	}
	r.audit = cfg.AuditFile
	addr := make(chan net.Addr, 1)
	cfg.listening = func(a, m net.Addr) { addr <- a }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, io.Discard, r.log) }()
	select {
	case a := <-addr:
		r.addr = a.String()
	case err := <-done:
		cancel()
		t.Fatalf("run: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return r
}

// roleSet writes a quickstart set for role, signed by the rig's CA, and
// returns its directory.
func (r *tlsRig) roleSet(t *testing.T, role smtls.Role) string {
	t.Helper()
	d := t.TempDir()
	if err := smtls.Quickstart(d, smtls.QuickstartOptions{Role: role, Password: r.pw, CADir: filepath.Join(r.base, smtls.QuickstartCADir)}); err != nil {
		t.Fatal(err)
	}
	return d
}

// client dials the rig with the security directory dir.
func (r *tlsRig) client(t *testing.T, dir string) *relay.Client {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	tc, err := service.DialTLS(dir, false, false, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := relay.Dial(ctx, relay.ClientConfig{Servers: []string{r.addr}, Dial: relay.DialConfig{TLS: tc}, Name: "test",
		Logger: quiet, RequestTimeout: 10 * time.Second, DialRetry: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}
