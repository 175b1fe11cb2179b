package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/youmark/pkcs8"

	smtls "github.com/silentmon/silentmon/tls"
)

// TestCertsWeakPassword: a new CA password that is easy to guess is a
// usage error (exit 2) naming the score, for certs ca and certs
// quickstart, and nothing is written; a passphrase is accepted. The old
// check took any 8 to 30 characters.
func TestCertsWeakPassword(t *testing.T) {
	t.Setenv("SILENTMON_CA_PASSWORD", "")
	for _, pw := range []string{"12345678", "password", "qwertyui"} {
		t.Run(pw, func(t *testing.T) {
			file := writePW(t, t.TempDir(), pw)
			for _, args := range [][]string{
				{"certs", "ca", "--dir", t.TempDir(), "--password-file", file},
				{"certs", "quickstart", "--dir", t.TempDir(), "--password-file", file},
			} {
				code, _, errs := smctl(t, args...)
				errs = strings.ToLower(errs) // the command line capitalises the sentence
				if code != 2 || !strings.Contains(errs, "the ca password is too easy to guess (score 0 of 4") ||
					!strings.Contains(errs, "use a longer passphrase of unrelated words") {
					t.Errorf("smctl %s: exit %d, stderr %q; want 2 and the strength message", strings.Join(args[:2], " "), code, errs)
				}
				if ents, _ := os.ReadDir(args[3]); len(ents) != 0 {
					t.Errorf("smctl %s wrote %d files", strings.Join(args[:2], " "), len(ents))
				}
			}
		})
	}
	dir := t.TempDir()
	mustSmctl(t, "certs", "ca", "--dir", dir, "--password-file", writePW(t, t.TempDir(), "plinth-gravel-otter"))
	if _, err := os.Stat(filepath.Join(dir, smtls.RootKeyFile)); err != nil {
		t.Errorf("certs ca with a passphrase: %v", err)
	}
}

// TestCertsSignWithOldPassword: the password of an existing CA key is
// checked for length only, so a CA made before the strength rule (here
// with 12345678) still signs.
func TestCertsSignWithOldPassword(t *testing.T) {
	t.Setenv("SILENTMON_CA_PASSWORD", "")
	caDir, secDir := t.TempDir(), t.TempDir()
	const pw = "12345678"
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "old CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := pkcs8.MarshalPrivateKey(key, []byte(pw), nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(caDir, smtls.RootCertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(caDir, smtls.RootKeyFile), pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc}), 0o600)
	mustSmctl(t, "certs", "request", "--dir", secDir, "--role", "client", "--cn", "desk-1")
	out := filepath.Join(secDir, smtls.ClientCertFile)
	mustSmctl(t, "certs", "sign", "--ca-dir", caDir, "--request", filepath.Join(secDir, smtls.ClientReqFile),
		"--out", out, "--password-file", writePW(t, t.TempDir(), pw))
	if _, err := os.Stat(out); err != nil {
		t.Errorf("no certificate signed with the old CA: %v", err)
	}
}
