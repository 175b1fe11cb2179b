package tls

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSignRules(t *testing.T) {
	dir := t.TempDir()
	ca, err := CreateCA(dir, CAOptions{Password: testPW, Days: 10})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(t *testing.T, role Role, cn string, hosts ...string) *x509.CertificateRequest {
		t.Helper()
		d := t.TempDir()
		_, rp, err := CreateRequest(d, RequestOptions{Role: role, CommonName: cn, Hosts: hosts})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(rp)
		csr, err := ParseRequest(raw, rp)
		if err != nil {
			t.Fatal(err)
		}
		return csr
	}
	tests := []struct {
		name     string
		csr      *x509.CertificateRequest
		opts     SignOptions
		wantEKU  x509.ExtKeyUsage
		wantSANs []string
		wantErr  error
	}{
		{"server role from the request", mk(t, RoleServer, "sm1", "sm1.example", "10.0.0.1"), SignOptions{}, x509.ExtKeyUsageServerAuth, []string{"sm1.example", "10.0.0.1"}, nil},
		{"client role from the request", mk(t, RoleClient, "sup"), SignOptions{}, x509.ExtKeyUsageClientAuth, nil, nil},
		{"explicit role wins", mk(t, RoleClient, "peer"), SignOptions{Role: RoleServer}, x509.ExtKeyUsageServerAuth, []string{"peer"}, nil},
		{"server without SANs gets its name", mk(t, RoleServer, "sm2.example"), SignOptions{}, x509.ExtKeyUsageServerAuth, []string{"sm2.example"}, nil},
		{"bad days", mk(t, RoleServer, "x"), SignOptions{Days: -1}, 0, nil, ErrBadArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			der, err := Sign(ca, tc.csr, tc.opts)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Sign: %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			if len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != tc.wantEKU {
				t.Errorf("usage %v, want %v", c.ExtKeyUsage, tc.wantEKU)
			}
			for _, h := range tc.wantSANs {
				if err := c.VerifyHostname(h); err != nil {
					t.Errorf("SAN %s missing: %v", h, err)
				}
			}
			if c.IsCA {
				t.Error("signed certificate is a CA")
			}
			// The CA lives 10 days: the default 825 days are capped.
			if c.NotAfter.After(ca.Cert.NotAfter) {
				t.Errorf("certificate outlives its CA: %v > %v", c.NotAfter, ca.Cert.NotAfter)
			}
			if err := CheckCert(c, ca.Cert, "", time.Now(), "x"); err != nil {
				t.Error(err)
			}
		})
	}
	// A request without any usage and a name that says nothing needs a role.
	csr := mk(t, RoleServer, "a")
	csr.Extensions = nil
	if _, err := Sign(ca, csr, SignOptions{}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("Sign without a role: %v, want ErrBadArgument", err)
	}
	if RoleFromFileName(filepath.Join("x", ClientReqFile)) != RoleClient || RoleFromFileName(ServerReqFile) != RoleServer || RoleFromFileName("req.pem") != "" {
		t.Error("RoleFromFileName")
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{{"1234567", false}, {"12345678", true}, {"123456789012345678901234567890", true}, {"1234567890123456789012345678901", false}, {"pässwörd", true}} {
		if err := CheckPassword([]byte(tc.pw)); (err == nil) != tc.ok {
			t.Errorf("CheckPassword(%q) = %v, want ok=%v", tc.pw, err, tc.ok)
		}
	}
}
