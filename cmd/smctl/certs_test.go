package main

import (
	"bytes"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/testutil"
	smtls "github.com/silentmon/silentmon/tls"
)

// smctl runs the command line in-process and returns exit code, stdout
// and stderr.
func smctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(newRootCmd(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func mustSmctl(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := smctl(t, args...)
	if code != 0 {
		t.Fatalf("smctl %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func openssl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

func writePW(t *testing.T, dir, pw string) string {
	t.Helper()
	p := filepath.Join(dir, "pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pki runs ca, request, sign and bundle for a server and a client and
// returns the CA directory, the security directory and the password file.
func pki(t *testing.T) (caDir, secDir, pwFile string) {
	t.Helper()
	caDir, secDir = t.TempDir(), t.TempDir()
	pwFile = writePW(t, t.TempDir(), "violet-harbor-lantern-42")
	mustSmctl(t, "certs", "ca", "--dir", caDir, "--password-file", pwFile)
	mustSmctl(t, "certs", "request", "--dir", secDir, "--role", "capture", "--cn", "sm1", "--host", "localhost", "--host", "127.0.0.1")
	mustSmctl(t, "certs", "request", "--dir", secDir, "--role", "client", "--cn", "supervisor-7")
	mustSmctl(t, "certs", "request", "--dir", secDir, "--role", "peer", "--cn", "sm1-peer")
	for _, f := range []struct{ req, key, cert, bundle string }{
		{"CtiosServerReq.pem", "CtiosServerKey.pem", "CtiosServerCert.pem", "CtiosServer.pem"},
		{"CtiosClientreq.pem", "CtiosClientkey.pem", "CtiosClientCert.pem", "CtiosClient.pem"},
		{"CtiosPeerReq.pem", "CtiosPeerKey.pem", "CtiosPeerCert.pem", "CtiosPeer.pem"},
	} {
		cert := filepath.Join(secDir, f.cert)
		mustSmctl(t, "certs", "sign", "--ca-dir", caDir, "--request", filepath.Join(secDir, f.req), "--out", cert, "--days", "30", "--password-file", pwFile)
		mustSmctl(t, "certs", "bundle", "--cert", cert, "--key", filepath.Join(secDir, f.key), "--out", filepath.Join(secDir, f.bundle))
	}
	b, err := os.ReadFile(filepath.Join(caDir, smtls.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secDir, smtls.RootCertFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return caDir, secDir, pwFile
}

func TestCertsWorkflowFiles(t *testing.T) {
	caDir, secDir, _ := pki(t)
	modes := map[string]os.FileMode{
		filepath.Join(caDir, "CtiosRootCert.pem"):   0o644,
		filepath.Join(caDir, "CtiosRoot.pem"):       0o600,
		filepath.Join(secDir, "CtiosServerKey.pem"): 0o600,
		filepath.Join(secDir, "CtiosServerReq.pem"): 0o644,
		filepath.Join(secDir, "CtiosClientkey.pem"): 0o600,
		filepath.Join(secDir, "CtiosClientreq.pem"): 0o644,
		filepath.Join(secDir, "CtiosServer.pem"):    0o600,
		filepath.Join(secDir, "CtiosClient.pem"):    0o600,
	}
	for p, want := range modes {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", filepath.Base(p), st.Mode().Perm(), want)
		}
	}
	srv, err := smtls.ReadPair(filepath.Join(secDir, "CtiosServer.pem"))
	if err != nil {
		t.Fatal(err)
	}
	// A capture server serves clients and dials supervisors.
	if !slices.Equal(srv.Leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("capture server certificate usages %v", srv.Leaf.ExtKeyUsage)
	}
	if r := smtls.RolesOf(srv.Leaf); !slices.Equal(r, []smtls.Role{smtls.RoleCapture}) {
		t.Errorf("capture server certificate roles %v", r)
	}
	if err := srv.Leaf.VerifyHostname("127.0.0.1"); err != nil {
		t.Errorf("SANs not carried from the request: %v", err)
	}
	if d := srv.Leaf.NotAfter.Sub(srv.Leaf.NotBefore); d < 30*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("validity %v, want 30 days", d)
	}
	cli, err := smtls.ReadPair(filepath.Join(secDir, "CtiosClient.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cli.Leaf.ExtKeyUsage) != 1 || cli.Leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("client certificate usages %v", cli.Leaf.ExtKeyUsage)
	}
	if r := smtls.RolesOf(cli.Leaf); !slices.Equal(r, []smtls.Role{smtls.RoleClient}) {
		t.Errorf("client certificate roles %v", r)
	}
	if _, err := smtls.PeerConfig(secDir, smtls.Options{Strict: true}); err != nil {
		t.Errorf("PeerConfig on the signed set: %v", err)
	}
	if _, err := smtls.ServerConfig(secDir, smtls.Options{Strict: true}); err != nil {
		t.Errorf("ServerConfig on the signed set: %v", err)
	}
	if _, err := smtls.ClientConfig(secDir, smtls.Options{Strict: true}); err != nil {
		t.Errorf("ClientConfig on the signed set: %v", err)
	}
	out := mustSmctl(t, "certs", "show", filepath.Join(secDir, "CtiosServer.pem"))
	for _, want := range []string{"Subject:      CN=sm1,O=silentmon", "DNS:localhost", "IP:127.0.0.1", "server authentication", "Roles:        capture\n", "URI:silentmon:role/capture", "(valid)", smtls.Fingerprint(srv.Leaf.Raw)} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %q:\n%s", want, out)
		}
	}
}

func TestCertsOpenSSLInterop(t *testing.T) {
	testutil.NeedTool(t, "openssl")
	caDir, secDir, pwFile := pki(t)
	root := filepath.Join(caDir, "CtiosRootCert.pem")
	for _, f := range []string{"CtiosServerCert.pem", "CtiosClientCert.pem"} {
		if out, err := openssl(t, "verify", "-CAfile", root, filepath.Join(secDir, f)); err != nil || !strings.Contains(out, ": OK") {
			t.Errorf("openssl verify %s: %v\n%s", f, err, out)
		}
	}
	// purpose checks: the server certificate is for TLS servers only.
	if out, err := openssl(t, "verify", "-CAfile", root, "-purpose", "sslserver", filepath.Join(secDir, "CtiosServerCert.pem")); err != nil {
		t.Errorf("server certificate refused for sslserver: %v\n%s", err, out)
	}
	if _, err := openssl(t, "verify", "-CAfile", root, "-purpose", "sslserver", filepath.Join(secDir, "CtiosClientCert.pem")); err == nil {
		t.Error("client certificate accepted for sslserver")
	}
	key := filepath.Join(caDir, "CtiosRoot.pem")
	if out, err := openssl(t, "pkey", "-in", key, "-passin", "file:"+pwFile, "-noout"); err != nil {
		t.Errorf("openssl pkey with the right password: %v\n%s", err, out)
	}
	bad := writePW(t, t.TempDir(), "wrong-password")
	if _, err := openssl(t, "pkey", "-in", key, "-passin", "file:"+bad, "-noout"); err == nil {
		t.Error("openssl pkey opened the CA key with a wrong password")
	}
	raw, _ := os.ReadFile(key)
	if !bytes.Contains(raw, []byte("ENCRYPTED PRIVATE KEY")) {
		t.Errorf("CA key is not encrypted PKCS#8:\n%s", raw)
	}

	// A request made by openssl req is signed by smctl certs sign.
	dir := t.TempDir()
	okey, oreq := filepath.Join(dir, "k.pem"), filepath.Join(dir, "CtiosServerReq.pem")
	if out, err := openssl(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", okey, "-out", oreq, "-subj", "/CN=sm2.example.net", "-addext", "subjectAltName=DNS:sm2.example.net,IP:192.0.2.7"); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	ocert := filepath.Join(dir, "cert.pem")
	// It names no role: sign refuses until --role gives one.
	if code, _, errs := smctl(t, "certs", "sign", "--ca-dir", caDir, "--request", oreq, "--out", ocert, "--password-file", pwFile); code != 2 || !strings.Contains(errs, "names no silentmon role") {
		t.Errorf("sign of a request without a role: exit %d, %s", code, errs)
	}
	mustSmctl(t, "certs", "sign", "--ca-dir", caDir, "--request", oreq, "--out", ocert, "--password-file", pwFile, "--role", "capture")
	if out, err := openssl(t, "verify", "-CAfile", root, "-purpose", "sslserver", ocert); err != nil {
		t.Errorf("openssl verify of the signed openssl request: %v\n%s", err, out)
	}
	certs, err := smtls.ReadCertificates(ocert)
	if err != nil {
		t.Fatal(err)
	}
	if c := certs[0]; c.VerifyHostname("sm2.example.net") != nil || c.VerifyHostname("192.0.2.7") != nil {
		t.Errorf("SANs of the openssl request not carried: %v %v", c.DNSNames, c.IPAddresses)
	}
	mustSmctl(t, "certs", "bundle", "--cert", ocert, "--key", okey, "--out", filepath.Join(dir, "CtiosServer.pem"))

	// A request that asks for a role the way docs/security.md tells a
	// third-party CA's users to: the role URI and the usages.
	preq := filepath.Join(dir, "peer.csr")
	if out, err := openssl(t, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", filepath.Join(dir, "peer.key"), "-out", preq, "-subj", "/CN=sm2-peer",
		"-addext", "subjectAltName=DNS:sm2.example.net,URI:silentmon:role/peer", "-addext", "extendedKeyUsage=serverAuth,clientAuth"); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	pcert := filepath.Join(dir, "peer.crt")
	mustSmctl(t, "certs", "sign", "--ca-dir", caDir, "--request", preq, "--out", pcert, "--password-file", pwFile)
	if out := mustSmctl(t, "certs", "show", pcert); !strings.Contains(out, "Roles:        peer\n") {
		t.Errorf("the role asked for by an openssl request was not carried:\n%s", out)
	}
}

// TestSClient runs openssl s_client against the 42228 listener form
// (smtls.Listen with ServerConfig): with the client certificate the
// handshake completes and the server answers; without it, it is refused.
func TestSClient(t *testing.T) {
	testutil.NeedTool(t, "openssl")
	_, secDir, _ := pki(t)
	scfg, err := smtls.ServerConfig(secDir, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := smtls.Listen(inner, scfg, smtls.NewLockout(smtls.LockoutConfig{}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("silentmon-ready\n"))
			c.Close()
		}
	}()
	defer func() { ln.Close(); <-done }()
	addr := ln.Addr().String()
	root := filepath.Join(secDir, "CtiosRootCert.pem")
	client := filepath.Join(secDir, "CtiosClient.pem")
	tests := []struct {
		name   string
		args   []string
		wantOK bool
	}{
		{"TLS 1.3 with client certificate", []string{"-cert", client, "-key", client}, true},
		{"TLS 1.2 with client certificate", []string{"-cert", client, "-key", client, "-tls1_2"}, true},
		{"without client certificate", nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"s_client", "-connect", addr, "-CAfile", root, "-verify_return_error",
				"-verify_hostname", "localhost", "-servername", "localhost", "-ign_eof"}, tc.args...)
			cmd := exec.Command("openssl", args...)
			cmd.Stdin = strings.NewReader("")
			outb, _ := cmd.CombinedOutput()
			out := string(outb)
			got := strings.Contains(out, "silentmon-ready")
			if got != tc.wantOK {
				t.Fatalf("server answered = %v, want %v; s_client output:\n%s", got, tc.wantOK, out)
			}
			if tc.wantOK && !strings.Contains(out, "Verify return code: 0 (ok)") {
				t.Errorf("s_client did not verify the server:\n%s", out)
			}
		})
	}
	// The server may record the refused handshake just after s_client exits.
	deadline := time.Now().Add(5 * time.Second)
	for st := ln.Stats(); st.Accepted != 2 || st.Failed != 1; st = ln.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("listener stats %+v, want 2 accepted and 1 failed", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCertsUsageErrors(t *testing.T) {
	dir := t.TempDir()
	short := writePW(t, t.TempDir(), "short")
	long := writePW(t, t.TempDir(), strings.Repeat("x", 31))
	good := writePW(t, t.TempDir(), "good-password")
	mustSmctl(t, "certs", "quickstart", "--dir", filepath.Join(dir, "qs"))
	qs := filepath.Join(dir, "qs")
	t.Setenv("SILENTMON_CA_PASSWORD", "")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"password too short", []string{"certs", "ca", "--dir", dir, "--password-file", short}, 2, "5 characters; it must have 8 to 30"},
		{"password too long", []string{"certs", "ca", "--dir", dir, "--password-file", long}, 2, "31 characters"},
		{"password as a plain flag", []string{"certs", "ca", "--dir", dir, "--password", "good-password"}, 2, "unknown flag"},
		{"no password and no terminal", []string{"certs", "ca", "--dir", dir}, 2, "no CA password"},
		{"missing password file", []string{"certs", "ca", "--dir", dir, "--password-file", filepath.Join(dir, "nope")}, 2, "does not exist"},
		{"unset password variable", []string{"certs", "ca", "--dir", dir, "--password-env", "SM_TEST_UNSET_PW"}, 2, "SM_TEST_UNSET_PW is not set"},
		{"bad key algorithm", []string{"certs", "ca", "--dir", dir, "--password-file", good, "--key-algorithm", "dsa"}, 2, `"dsa" is not supported`},
		{"bad days", []string{"certs", "ca", "--dir", dir, "--password-file", good, "--days", "0"}, 2, "--days 0 is out of range"},
		{"bad role", []string{"certs", "request", "--dir", dir, "--role", "boss", "--cn", "x"}, 2, `role "boss"`},
		{"old server role", []string{"certs", "request", "--dir", dir, "--role", "server", "--cn", "x"}, 2, `role "server" is ambiguous`},
		{"bad quickstart role", []string{"certs", "quickstart", "--dir", dir, "--role", "root"}, 2, `role "root"`},
		{"bad host", []string{"certs", "request", "--dir", dir, "--role", "capture", "--cn", "x", "--host", "bad host!"}, 2, `host "bad host!"`},
		{"request without cn", []string{"certs", "request", "--dir", dir, "--role", "capture"}, 2, "needs --cn"},
		{"sign with wrong password", []string{"certs", "sign", "--ca-dir", filepath.Join(qs, "ca"), "--request", filepath.Join(qs, "CtiosRootCert.pem"), "--out", filepath.Join(dir, "o.pem"), "--password-file", good}, 1, "cannot be decrypted"},
		{"sign a missing request", []string{"certs", "sign", "--ca-dir", filepath.Join(qs, "ca"), "--request", filepath.Join(dir, "none.pem"), "--out", filepath.Join(dir, "o.pem"), "--password-file", good}, 2, "does not exist"},
		{"bundle with a foreign key", []string{"certs", "bundle", "--cert", filepath.Join(qs, "CtiosServer.pem"), "--key", filepath.Join(qs, "CtiosClient.pem"), "--out", filepath.Join(dir, "b.pem")}, 1, "does not match"},
		{"show a missing file", []string{"certs", "show", filepath.Join(dir, "none.pem")}, 1, "does not exist"},
		{"quickstart twice", []string{"certs", "quickstart", "--dir", qs}, 1, "already exists"},
		{"quickstart without dir", []string{"certs", "quickstart"}, 2, "needs --dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := smctl(t, tc.args...)
			if code != tc.code || !strings.Contains(strings.ToLower(errs), strings.ToLower(tc.want)) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tc.code, tc.want)
			}
			if n := strings.Count(strings.TrimSpace(errs), "\n"); n != 0 {
				t.Errorf("stderr has %d lines, want one sentence: %q", n+1, errs)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "b.pem")); err == nil {
		t.Error("bundle wrote a file despite the mismatched key")
	}
}

// TestCertsQuickstartCTI: quickstart --role cti writes a CtiosClient.pem
// that certs show lists with the roles client and cti, and an unknown
// role's sentence lists cti among the roles.
func TestCertsQuickstartCTI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cti")
	mustSmctl(t, "certs", "quickstart", "--dir", dir, "--role", "cti")
	if out := mustSmctl(t, "certs", "show", filepath.Join(dir, smtls.ClientFile)); !strings.Contains(out, "Roles:        client, cti\n") {
		t.Errorf("certs show of the cti set's client bundle:\n%s", out)
	}
	if code, _, errs := smctl(t, "certs", "quickstart", "--dir", t.TempDir(), "--role", "boss"); code != 2 || !strings.Contains(errs, "admin or cti") {
		t.Errorf("quickstart --role boss: exit %d, %s", code, errs)
	}
}
