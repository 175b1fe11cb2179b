package cluster

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/testutil"
	smtls "github.com/silentmon/silentmon/tls"
)

// testCA is a certificate authority made up for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

var serial struct {
	sync.Mutex
	n int64
}

// issue signs a cluster peer's certificate for name: the peer role with
// server and client usages, as smctl certs issues it. The certificate
// deliberately carries no IP address: routes must not depend on host
// names or addresses in certificates.
func (ca *testCA) issue(t testing.TB, name string) tls.Certificate {
	t.Helper()
	return ca.issueRole(t, name, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, smtls.RolePeer)
}

// issueRole signs a leaf certificate for name with the given usages and
// silentmon roles.
func (ca *testCA) issueRole(t testing.TB, name string, usages []x509.ExtKeyUsage, roles ...smtls.Role) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial.Lock()
	serial.n++
	sn := serial.n + 100
	serial.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(sn),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usages,
	}
	for _, r := range roles {
		tmpl.URIs = append(tmpl.URIs, smtls.RoleURI(r))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsPair returns the server-side and client-side configurations a capture
// server named name would build from its security directory.
func (ca *testCA) tlsPair(t testing.TB, name string) (srv, cli *tls.Config) {
	srv = &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, name)},
		ClientCAs:    ca.pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	}
	cli = &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, name+"-client")},
		RootCAs:      ca.pool,
		MinVersion:   tls.VersionTLS12,
	}
	return srv, cli
}

// freePort returns a TCP port on host that was free a moment ago and
// that no other call returned. Route URLs need real ports, so the test
// reserves them up front.
func freePort(t testing.TB, host string) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(testutil.FreeAddr(t, host))
	n, _ := strconv.Atoi(port)
	return n
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testLogger(t testing.TB, sink *syncBuffer) *slog.Logger {
	if sink == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(sink, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func session(id, agent string, ip string) *filter.Session {
	return &filter.Session{
		ID: id, Agent: agent,
		Endpoints:  []filter.Endpoint{{IP: netip.MustParseAddr(ip)}},
		Supervisor: "127.0.0.1:42228",
	}
}

func ids(ss []*filter.Session) string {
	var b strings.Builder
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.ID)
	}
	return b.String()
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func hasSession(n *Node, id string) bool {
	return slices.ContainsFunc(n.Sessions(), func(s *filter.Session) bool { return s.ID == id })
}
