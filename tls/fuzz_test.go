package tls

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParsePair feeds arbitrary bytes to the bundle parser (certificate
// then key): it must return a pair or an error, never panic, and a
// returned pair's key must match its certificate.
func FuzzParsePair(f *testing.F) {
	dir := quickDir(f, QuickstartOptions{})
	for _, n := range []string{ServerFile, PeerFile, ClientFile, RootCertFile, filepath.Join(QuickstartCADir, RootKeyFile)} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := ParsePair(raw, "fuzz.pem")
		if err != nil {
			return
		}
		if !publicKeyEqual(p.Leaf.PublicKey, p.Key) {
			t.Fatal("ParsePair returned a key that does not match its certificate")
		}
	})
}

// FuzzParseRequest feeds arbitrary bytes to the certificate-request
// parser used by smctl certs sign.
func FuzzParseRequest(f *testing.F) {
	dir := f.TempDir()
	if _, _, err := CreateRequest(dir, RequestOptions{Roles: []Role{RoleCapture}, CommonName: "sm1", Hosts: []string{"localhost", "127.0.0.1"}}); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, ServerReqFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\nMAA=\n-----END CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		csr, err := ParseRequest(raw, "fuzz.pem")
		if err != nil {
			return
		}
		if csr.CheckSignature() != nil {
			t.Fatal("ParseRequest returned a request with a bad signature")
		}
		_ = requestedRoles(csr)
	})
}
