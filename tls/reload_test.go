package tls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// echoServer serves scfg through a Listener on loopback: each connection
// gets the serial of its client's certificate as one line, then an echo.
func echoServer(t *testing.T, scfg *tls.Config) (addr string, clientSerials <-chan *big.Int) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(inner, scfg, nil)
	t.Cleanup(func() { ln.Close() })
	serials := make(chan *big.Int, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := c.(*tls.Conn)
			serials <- tc.ConnectionState().PeerCertificates[0].SerialNumber
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return inner.Addr().String(), serials
}

// dialServer dials addr with cfg and returns the connection and the
// serial of the certificate the server presented.
func dialServer(t *testing.T, cfg *tls.Config, addr string) (*tls.Conn, *big.Int) {
	t.Helper()
	d := &tls.Dialer{Config: cfg}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	tc := c.(*tls.Conn)
	return tc, tc.ConnectionState().PeerCertificates[0].SerialNumber
}

// echo checks that c still carries data both ways.
func echo(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("write on the established connection: %v", err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("read on the established connection: %q, %v", b, err)
	}
}

func fileSerial(t *testing.T, path string) *big.Int {
	t.Helper()
	p, err := ReadPair(path)
	if err != nil {
		t.Fatal(err)
	}
	return p.Leaf.SerialNumber
}

// reissue writes a new set signed by the CA of dir (same CA, new serials).
func reissue(t *testing.T, dir string) {
	t.Helper()
	if err := Quickstart(dir, QuickstartOptions{CADir: filepath.Join(dir, QuickstartCADir), Password: testPW, Force: true}); err != nil {
		t.Fatalf("reissue: %v", err)
	}
}

// TestStoreReloadNewCertificate checks that after Reload a new handshake
// sees the new server certificate and the server sees the new client
// certificate of a Store's ClientConfig, while a connection made before
// keeps working.
func TestStoreReloadNewCertificate(t *testing.T) {
	dir := quickDir(t, QuickstartOptions{})
	st, err := NewStore(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := st.ServerConfig(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := st.ClientConfig("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ccfg.ServerName = "127.0.0.1"
	addr, clientSerials := echoServer(t, scfg)
	oldServer, oldClient := fileSerial(t, filepath.Join(dir, ServerFile)), fileSerial(t, filepath.Join(dir, ClientFile))

	c1, s1 := dialServer(t, ccfg, addr)
	if s1.Cmp(oldServer) != 0 || (<-clientSerials).Cmp(oldClient) != 0 {
		t.Fatal("the first handshake did not use the certificates of the files")
	}
	echo(t, c1)

	reissue(t, dir)
	newServer, newClient := fileSerial(t, filepath.Join(dir, ServerFile)), fileSerial(t, filepath.Join(dir, ClientFile))
	if newServer.Cmp(oldServer) == 0 {
		t.Fatal("reissue kept the serial")
	}
	if _, s := dialServer(t, ccfg, addr); s.Cmp(oldServer) != 0 {
		t.Fatal("the new certificate was used before Reload")
	}
	<-clientSerials
	if err := st.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	_, s2 := dialServer(t, ccfg, addr)
	if s2.Cmp(newServer) != 0 {
		t.Errorf("after Reload the server presented serial %v, want the new file's %v", s2, newServer)
	}
	if got := <-clientSerials; got.Cmp(newClient) != 0 {
		t.Errorf("after Reload the client presented serial %v, want the new file's %v", got, newClient)
	}
	echo(t, c1)
	if st.ReloadFailures() != 0 {
		t.Errorf("ReloadFailures = %d after a good reload", st.ReloadFailures())
	}
}

// TestStoreReloadBadFileKeepsOld checks that a bad new CtiosServer.pem is
// refused by Reload with one sentence naming the file, counted, and that
// the old certificate stays in use.
func TestStoreReloadBadFileKeepsOld(t *testing.T) {
	other := quickDir(t, QuickstartOptions{})
	for _, tc := range []struct {
		name     string
		write    func(t *testing.T, dir, path string)
		sentinel error
		says     string
	}{
		{"key mismatch", func(t *testing.T, dir, path string) {
			srv, _ := os.ReadFile(path)
			cli, _ := os.ReadFile(filepath.Join(dir, ClientFile))
			certBlock, _ := pem.Decode(srv)
			writeTest(t, path, string(pem.EncodeToMemory(certBlock))+string(pem.EncodeToMemory(firstKeyBlock(cli))))
		}, ErrKeyMismatch, "does not match its certificate"},
		{"expired", func(t *testing.T, dir, path string) {
			signBundle(t, dir, path, SignOptions{Roles: []Role{RoleCapture, RoleSupervisor}, Days: 1, NotBefore: time.Now().Add(-72 * time.Hour)})
		}, ErrExpired, "expired on"},
		{"wrong role", func(t *testing.T, dir, path string) {
			signBundle(t, dir, path, SignOptions{Roles: []Role{RoleClient}})
		}, ErrWrongRole, "has role client"},
		{"garbage", func(t *testing.T, dir, path string) {
			writeTest(t, path, "garbage\n")
		}, ErrBadPEM, "holds no PEM certificate"},
		{"another CA", func(t *testing.T, dir, path string) {
			raw, _ := os.ReadFile(filepath.Join(other, ServerFile))
			writeTest(t, path, string(raw))
		}, ErrUnknownCA, "not by the CA in " + RootCertFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := quickDir(t, QuickstartOptions{})
			st, err := NewStore(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			scfg, err := st.ServerConfig(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, ccfg, _ := configs(t, dir)
			ccfg.ServerName = "127.0.0.1"
			addr, _ := echoServer(t, scfg)
			path := filepath.Join(dir, ServerFile)
			old := fileSerial(t, path)
			tc.write(t, dir, path)
			err = st.Reload()
			if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("Reload: %v; want %v naming %s and saying %q", err, tc.sentinel, path, tc.says)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("the error is not one line: %q", err)
			}
			if st.ReloadFailures() != 1 {
				t.Errorf("ReloadFailures = %d, want 1", st.ReloadFailures())
			}
			if _, s := dialServer(t, ccfg, addr); s.Cmp(old) != 0 {
				t.Errorf("after a refused reload the server presented serial %v, want the old %v", s, old)
			}
		})
	}
}

func writeTest(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// signBundle writes to path a bundle for a fresh key signed by the CA of
// the quickstart directory dir with opts.
func signBundle(t *testing.T, dir, path string, opts SignOptions) {
	t.Helper()
	ca, err := LoadCA(filepath.Join(dir, QuickstartCADir), testPW)
	if err != nil {
		t.Fatal(err)
	}
	key, err := generateKey(ECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	csr := &x509.CertificateRequest{DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, PublicKey: key.Public()}
	csr.Subject.CommonName = "reissued"
	der, err := Sign(ca, csr, opts)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	writeTest(t, path, string(append(certPEM(der), kp...)))
}

// TestStoreCARotation checks that the CA of a Store's server configuration
// can be rotated: a client of a new CA is refused, accepted once both CAs
// are in CtiosRootCert.pem and reloaded, and the old CA's client is
// refused once only the new CA is left.
func TestStoreCARotation(t *testing.T) {
	dir := quickDir(t, QuickstartOptions{})
	next := quickDir(t, QuickstartOptions{})
	st, err := NewStore(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	scfg, err := st.ServerConfig(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := echoServer(t, scfg)
	_, oldClient, _ := configs(t, dir)
	_, newClient, _ := configs(t, next)
	// Each client trusts both CAs: only the server's trust is tested.
	both := x509.NewCertPool()
	for _, d := range []string{dir, next} {
		raw, _ := os.ReadFile(filepath.Join(d, RootCertFile))
		both.AppendCertsFromPEM(raw)
	}
	for _, c := range []*tls.Config{oldClient, newClient} {
		c.RootCAs, c.ServerName = both, "127.0.0.1"
	}
	accepted := func(c *tls.Config) bool {
		conn, err := tls.Dial("tcp", addr, c)
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte{1}); err != nil {
			return false
		}
		_, err = io.ReadFull(conn, make([]byte, 1)) // TLS 1.3: a refusal arrives here
		return err == nil
	}
	if accepted(newClient) {
		t.Fatal("a client of another CA was accepted before the rotation")
	}
	oldCA, _ := os.ReadFile(filepath.Join(dir, RootCertFile))
	newCA, _ := os.ReadFile(filepath.Join(next, RootCertFile))
	writeTest(t, filepath.Join(dir, RootCertFile), string(oldCA)+string(newCA))
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	if !accepted(newClient) || !accepted(oldClient) {
		t.Fatal("with both CAs reloaded, a client of either should be accepted")
	}
	for _, f := range []string{RootCertFile, ServerFile, ClientFile, PeerFile} {
		raw, _ := os.ReadFile(filepath.Join(next, f))
		writeTest(t, filepath.Join(dir, f), string(raw))
	}
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	if !accepted(newClient) {
		t.Error("the new CA's client is refused after the rotation")
	}
	if accepted(oldClient) {
		t.Error("the old CA's client is accepted after its CA was removed")
	}
}

// TestStoreExpiries checks the expiry of each certificate in use, the
// gauge that exports it, and that both follow a reload.
func TestStoreExpiries(t *testing.T) {
	dir := quickDir(t, QuickstartOptions{})
	st, err := NewStore(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.ServerConfig([]Role{RoleCapture}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.PeerConfig(); err != nil {
		t.Fatal(err)
	}
	ca, _ := readCertFile(filepath.Join(dir, RootCertFile))
	srv, _ := ReadPair(filepath.Join(dir, ServerFile))
	peer, _ := ReadPair(filepath.Join(dir, PeerFile))
	want := []CertExpiry{
		{File: PeerFile, Role: RolePeer, Subject: peer.Leaf.Subject.CommonName, NotAfter: peer.Leaf.NotAfter},
		{File: RootCertFile, Role: RoleCA, Subject: ca.Subject.CommonName, NotAfter: ca.NotAfter},
		{File: ServerFile, Role: RoleCapture, Subject: srv.Leaf.Subject.CommonName, NotAfter: srv.Leaf.NotAfter},
	}
	got := st.Expiries()
	if len(got) != len(want) {
		t.Fatalf("Expiries = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].File != want[i].File || got[i].Role != want[i].Role || got[i].Subject != want[i].Subject || !got[i].NotAfter.Equal(want[i].NotAfter) {
			t.Errorf("Expiries[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	signBundle(t, dir, filepath.Join(dir, ServerFile), SignOptions{Roles: []Role{RoleCapture}, Days: 30})
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	srv, _ = ReadPair(filepath.Join(dir, ServerFile))
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewStoreCollector(st))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gauges := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += " " + l.GetName() + "=" + l.GetValue()
			}
			gauges[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	for name, v := range map[string]float64{
		"silentmon_certificate_expiry_timestamp_seconds file=CtiosPeer.pem role=peer":      float64(peer.Leaf.NotAfter.Unix()),
		"silentmon_certificate_expiry_timestamp_seconds file=CtiosRootCert.pem role=ca":    float64(ca.NotAfter.Unix()),
		"silentmon_certificate_expiry_timestamp_seconds file=CtiosServer.pem role=capture": float64(srv.Leaf.NotAfter.Unix()),
		"silentmon_tls_reload_failures_total":                                              0,
		"silentmon_tls_last_reload_success_timestamp_seconds":                              float64(st.LastReload().Unix()),
	} {
		if got, ok := gauges[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	if len(gauges) != 5 {
		t.Errorf("series: %v", gauges)
	}
}

// TestStoreClientCARemoved checks that a CA removed from
// CtiosRootCert.pem and reloaded is no longer trusted by a Store's
// ClientConfig: a server whose certificate it signed is refused by the
// next handshake.
func TestStoreClientCARemoved(t *testing.T) {
	a := quickDir(t, QuickstartOptions{})
	b := quickDir(t, QuickstartOptions{})
	caA, _ := os.ReadFile(filepath.Join(a, RootCertFile))
	caB, _ := os.ReadFile(filepath.Join(b, RootCertFile))
	dir := t.TempDir()
	writeTest(t, filepath.Join(dir, RootCertFile), string(caA)+string(caB))
	client, _ := os.ReadFile(filepath.Join(b, ClientFile))
	writeTest(t, filepath.Join(dir, ClientFile), string(client))

	st, err := NewStore(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err := st.ClientConfig("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ccfg.ServerName = "127.0.0.1"
	// A server of CA A that accepts clients of either CA.
	scfg, err := ServerConfig(a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	both := x509.NewCertPool()
	both.AppendCertsFromPEM(append(caA, caB...))
	scfg.ClientCAs = both
	addr, _ := echoServer(t, scfg)
	c, _ := dialServer(t, ccfg, addr)
	echo(t, c)

	writeTest(t, filepath.Join(dir, RootCertFile), string(caB))
	if err := st.Reload(); err != nil {
		t.Fatal(err)
	}
	_, err = tls.Dial("tcp", addr, ccfg)
	if !errors.Is(err, ErrUnknownCA) {
		t.Errorf("dialing a server of the removed CA: %v; want %v", err, ErrUnknownCA)
	}
	echo(t, c) // the link made before keeps going
}
