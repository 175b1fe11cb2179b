package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	smtls "github.com/silentmon/silentmon/tls"
)

// TestStockServerWithoutPeerRoleGetsNoRoute: a stock NATS server holding
// a certificate of the site CA, but not a peer's (a supervisor's or a
// client's, which every desk holds), dials the route port of a member and
// offers its own: it gets no route, so it can neither learn nor announce
// sessions; the member logs and reports the refusal with the
// certificate's subject. The same server with a peer certificate is
// accepted, so the refusal is the role's doing.
func TestStockServerWithoutPeerRoleGetsNoRoute(t *testing.T) {
	ca := newTestCA(t, "site CA")
	srv, cli := ca.tlsPair(t, "member-A")
	type refusal struct{ remote, subject, err string }
	var (
		mu      sync.Mutex
		refused []refusal
	)
	var log syncBuffer
	port := freePort(t, "127.0.0.1")
	a, err := Start(Config{
		Name: "A", Listen: "127.0.0.1:" + strconv.Itoa(port), TLS: srv, ClientTLS: cli,
		Logger: testLogger(t, &log),
		OnRouteRefused: func(remote, subject string, err error) {
			mu.Lock()
			refused = append(refused, refusal{remote, subject, err.Error()})
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Announce(session("secret", "1001", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	both := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	for _, tc := range []struct {
		name   string
		cert   tls.Certificate
		wantOK bool
	}{
		{"client certificate", ca.issueRole(t, "desk-7", []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, smtls.RoleClient), false},
		{"client certificate with both usages", ca.issueRole(t, "desk-8", both, smtls.RoleClient, smtls.RoleAdmin), false},
		{"supervisor certificate", ca.issueRole(t, "supervisor-1", both, smtls.RoleSupervisor), false},
		{"capture server's own certificate", ca.issueRole(t, "sm9", both, smtls.RoleCapture), false},
		{"peer role without client usage", ca.issueRole(t, "half-peer", []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, smtls.RolePeer), false},
		{"no usage, no role", ca.issueRole(t, "bare", nil), false},
		{"peer certificate", ca.issueRole(t, "member-Z", both, smtls.RolePeer), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			refused = nil
			mu.Unlock()
			stock := startStockServer(t, ca, tc.cert, port)
			defer stock.Shutdown()
			if tc.wantOK {
				waitFor(t, 10*time.Second, "the peer's route", func() bool { return stock.NumRoutes() > 0 && a.srv.NumRoutes() > 0 })
				return
			}
			subject := tc.cert.Leaf.Subject.String()
			waitFor(t, 10*time.Second, "the refusal", func() bool {
				mu.Lock()
				defer mu.Unlock()
				for _, r := range refused {
					if r.subject == subject && r.remote != "" {
						return true
					}
				}
				return false
			})
			// A refused route may be retried: give it time to (not) happen.
			time.Sleep(500 * time.Millisecond)
			if n := a.srv.NumRoutes(); n != 0 {
				t.Fatalf("member has %d routes with the stock server", n)
			}
			if n := stock.NumRoutes(); n != 0 {
				t.Fatalf("stock server has %d routes", n)
			}
			mu.Lock()
			t.Logf("refused: %+v", refused[0])
			mu.Unlock()
			if cn := tc.cert.Leaf.Subject.CommonName; logLine(&log, "TLS route handshake error", cn) == "" {
				t.Errorf("no log line names %s:\n%s", cn, log.String())
			}
		})
	}
}

// startStockServer runs a plain NATS server, configured as an operator
// would configure one to join a cluster: cluster TLS with cert as its
// certificate for both ends of its routes, the site CA, and a route to
// the member on port.
func startStockServer(t *testing.T, ca *testCA, cert tls.Certificate, port int) *server.Server {
	t.Helper()
	route, _ := url.Parse("nats://127.0.0.1:" + strconv.Itoa(port))
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true,
		Cluster: server.ClusterOpts{
			Name: DefaultClusterName, Host: "127.0.0.1", Port: freePort(t, "127.0.0.1"),
			TLSConfig: &tls.Config{
				Certificates: []tls.Certificate{cert}, ClientCAs: ca.pool, RootCAs: ca.pool,
				ClientAuth: tls.RequireAndVerifyClientCert, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12,
			},
			TLSTimeout: 2,
		},
		Routes: []*url.URL{route},
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the stock server did not start")
	}
	return s
}
