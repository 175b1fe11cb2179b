package tls

import (
	"context"
	"crypto"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/youmark/pkcs8"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testPW = []byte("correct horse battery")

// quickDir returns a fresh quickstart directory.
func quickDir(t testing.TB, opts QuickstartOptions) string {
	t.Helper()
	dir := t.TempDir()
	if opts.Password == nil {
		opts.Password = testPW
	}
	if err := Quickstart(dir, opts); err != nil {
		t.Fatalf("Quickstart: %v", err)
	}
	return dir
}

// configs returns the server and client configurations of the quickstart
// directory dir, and the client configuration without its certificate.
func configs(t testing.TB, dir string) (scfg, ccfg, noCert *tls.Config) {
	t.Helper()
	scfg, err := ServerConfig(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ccfg, err = ClientConfig(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	noCert = ccfg.Clone()
	noCert.Certificates = nil
	return scfg, ccfg, noCert
}

func TestQuickstartFiles(t *testing.T) {
	dir := t.TempDir()
	if err := Quickstart(dir, QuickstartOptions{Hosts: []string{"sm.example.net", "10.1.2.3"}}); err != nil {
		t.Fatal(err)
	}
	modes := map[string]os.FileMode{
		RootCertFile: 0o644, ServerFile: 0o600, PeerFile: 0o600, ClientFile: 0o600,
		filepath.Join(QuickstartCADir, RootKeyFile): 0o600, filepath.Join(QuickstartCADir, QuickstartPasswordFile): 0o600,
		QuickstartCADir: 0o700,
	}
	for name, want := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode %04o, want %04o", name, got, want)
		}
	}
	// The CA key is not in the security directory the servers read.
	for _, name := range []string{RootKeyFile, QuickstartPasswordFile} {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			t.Errorf("%s is in the security directory", name)
		}
	}
	caDir := filepath.Join(dir, QuickstartCADir)
	pw, err := os.ReadFile(filepath.Join(caDir, QuickstartPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	pw = pw[:len(pw)-1]
	if err := CheckPasswordLength(pw); err != nil {
		t.Fatalf("generated password: %v", err)
	}
	ca, err := LoadCA(caDir, pw)
	if err != nil {
		t.Fatalf("LoadCA with the generated password: %v", err)
	}
	if _, err := LoadCA(caDir, []byte("wrong password")); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("LoadCA with a wrong password: %v, want ErrWrongPassword", err)
	}
	srv, err := ReadPair(filepath.Join(dir, ServerFile))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	for _, name := range []string{"localhost", "127.0.0.1", "::1", host, "sm.example.net", "10.1.2.3"} {
		if err := srv.Leaf.VerifyHostname(name); err != nil {
			t.Errorf("server certificate does not cover %s: %v", name, err)
		}
	}
	// The one-host set: each bundle carries exactly its roles.
	for file, want := range map[string][]Role{
		ServerFile: {RoleCapture, RoleSupervisor},
		PeerFile:   {RolePeer},
		ClientFile: {RoleClient, RoleAdmin},
	} {
		p, err := ReadPair(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if got := RolesOf(p.Leaf); !slices.Equal(got, want) {
			t.Errorf("%s has roles %v, want %v", file, got, want)
		}
		if err := CheckCert(p.Leaf, ca.Cert, want, time.Now(), file); err != nil {
			t.Error(err)
		}
	}
	cli, err := ReadPair(filepath.Join(dir, ClientFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckCert(cli.Leaf, ca.Cert, []Role{RoleCapture}, time.Now(), ClientFile); !errors.Is(err, ErrWrongRole) {
		t.Errorf("client certificate accepted as a capture server's: %v", err)
	}
	// A second run refuses to overwrite; Force replaces.
	if err := Quickstart(dir, QuickstartOptions{}); !errors.Is(err, ErrExists) {
		t.Fatalf("second Quickstart: %v, want ErrExists", err)
	}
	if err := Quickstart(dir, QuickstartOptions{Force: true, Password: testPW}); err != nil {
		t.Fatalf("Quickstart with Force: %v", err)
	}
	if _, err := LoadCA(caDir, testPW); err != nil {
		t.Fatalf("LoadCA after Force: %v", err)
	}
}

// handshake runs a server with scfg on loopback and dials it with ccfg;
// it returns the client's and the server's handshake errors.
func handshake(t *testing.T, scfg, ccfg *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		tc := tls.Server(c, scfg)
		c.SetDeadline(time.Now().Add(5 * time.Second))
		err = tc.Handshake()
		if err == nil {
			// TLS 1.3: the client learns of a refused certificate only
			// when it reads.
			_, err = tc.Write([]byte{1})
		}
		srvErr <- err
	}()
	_, err = dialRead(ccfg, ln.Addr().String(), nil)
	return err, <-srvErr
}

// dialRead dials the TLS server at addr with cfg from local (nil: any
// address) and reads the first byte the server sends: in TLS 1.3 the
// client learns of a refused certificate only when it reads. Both steps
// have a 5 s deadline.
func dialRead(cfg *tls.Config, addr string, local net.Addr) (byte, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: local}, Config: cfg}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	return b[0], err
}

func TestMutualTLS(t *testing.T) {
	dir := quickDir(t, QuickstartOptions{})
	scfg, ccfg, noCert := configs(t, dir)
	_, foreign, _ := configs(t, quickDir(t, QuickstartOptions{}))

	tests := []struct {
		name       string
		serverName string
		client     *tls.Config
		wantOK     bool
	}{
		{"good client by IP", "", ccfg, true},
		{"good client by name", "localhost", ccfg, true},
		{"no client certificate", "", noCert, false},
		{"client from another CA", "", foreign, false},
		{"server name not in SANs", "elsewhere.example", ccfg, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.client.Clone()
			c.ServerName = tc.serverName
			cerr, serr := handshake(t, scfg, c)
			if tc.wantOK && (cerr != nil || serr != nil) {
				t.Fatalf("handshake failed: client %v, server %v", cerr, serr)
			}
			if !tc.wantOK && cerr == nil && serr == nil {
				t.Fatal("handshake succeeded, want refusal")
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir := quickDir(t, QuickstartOptions{})
	other := quickDir(t, QuickstartOptions{})
	copyFile := func(t *testing.T, from, to string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(to, mode)
	}
	// appendRoot rewrites the root file of d as the CA certificate in
	// first, then d's own.
	appendRoot := func(t *testing.T, first, d string) {
		t.Helper()
		a, err := os.ReadFile(first)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(d, RootCertFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, RootCertFile), append(a, b...), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	clone := func(t *testing.T) string {
		d := t.TempDir()
		for _, n := range []string{RootCertFile, ServerFile, ClientFile} {
			copyFile(t, filepath.Join(dir, n), filepath.Join(d, n), 0o600)
		}
		return d
	}
	clk := newFakeClock()
	tests := []struct {
		name  string
		setup func(t *testing.T, d string)
		opts  Options
		want  error
	}{
		{"missing CA", func(t *testing.T, d string) { os.Remove(filepath.Join(d, RootCertFile)) }, Options{}, ErrFileMissing},
		{"missing server file", func(t *testing.T, d string) { os.Remove(filepath.Join(d, ServerFile)) }, Options{}, ErrFileMissing},
		{"other CA", func(t *testing.T, d string) {
			copyFile(t, filepath.Join(other, RootCertFile), filepath.Join(d, RootCertFile), 0o644)
		}, Options{}, ErrUnknownCA},
		{"client cert as server cert", func(t *testing.T, d string) {
			copyFile(t, filepath.Join(d, ClientFile), filepath.Join(d, ServerFile), 0o600)
		}, Options{}, ErrWrongRole},
		{"CA second in the root file", func(t *testing.T, d string) {
			appendRoot(t, filepath.Join(other, RootCertFile), d)
		}, Options{}, nil},
		{"client cert as server cert, CA second in the root file", func(t *testing.T, d string) {
			appendRoot(t, filepath.Join(other, RootCertFile), d)
			copyFile(t, filepath.Join(d, ClientFile), filepath.Join(d, ServerFile), 0o600)
		}, Options{}, ErrWrongRole},
		{"key of another certificate", func(t *testing.T, d string) {
			s, _ := ReadPair(filepath.Join(d, ServerFile))
			c, _ := ReadPair(filepath.Join(d, ClientFile))
			kp, _ := keyPEM(c.Key)
			os.WriteFile(filepath.Join(d, ServerFile), append(certPEM(s.Leaf.Raw), kp...), 0o600)
		}, Options{}, ErrKeyMismatch},
		{"readable by others, strict", func(t *testing.T, d string) {
			os.Chmod(filepath.Join(d, ServerFile), 0o644)
		}, Options{Strict: true}, ErrKeyPermissions},
		{"readable by others, lenient", func(t *testing.T, d string) {
			os.Chmod(filepath.Join(d, ServerFile), 0o644)
		}, Options{}, nil},
		{"expired", func(t *testing.T, d string) {}, Options{Clock: &fakeClock{t: clk.Now().AddDate(3, 0, 0)}}, ErrExpired},
		{"not yet valid", func(t *testing.T, d string) {}, Options{Clock: &fakeClock{t: clk.Now().Add(-time.Hour)}}, ErrNotYetValid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := clone(t)
			tc.setup(t, d)
			_, err := ServerConfig(d, tc.opts)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("ServerConfig: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("ServerConfig error %v, want %v", err, tc.want)
			}
			if msg := err.Error(); !strings.Contains(msg, d) {
				t.Errorf("error %q does not name the file", msg)
			}
		})
	}
}

// TestMain lowers the PBKDF2 cost of the CA key for this package's tests
// only (the race detector makes 210,000 iterations take seconds); the
// command tests in cmd/smctl keep the real cost and check it with OpenSSL.
func TestMain(m *testing.M) {
	caKeyOpts = &pkcs8.Opts{
		Cipher:  pkcs8.AES256CBC,
		KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 1000, HMACHash: crypto.SHA256},
	}
	os.Exit(m.Run())
}
