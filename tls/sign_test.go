package tls

import (
	"crypto/x509"
	"errors"
	"os"
	"slices"
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
		_, rp, err := CreateRequest(d, RequestOptions{Roles: []Role{role}, CommonName: cn, Hosts: hosts})
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
		wantRole Role
		wantEKU  []x509.ExtKeyUsage
		wantSANs []string
		wantErr  error
	}{
		{"capture role from the request", mk(t, RoleCapture, "sm1", "sm1.example", "10.0.0.1"), SignOptions{}, RoleCapture,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []string{"sm1.example", "10.0.0.1"}, nil},
		{"supervisor role from the request", mk(t, RoleSupervisor, "sup1.example"), SignOptions{}, RoleSupervisor,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, []string{"sup1.example"}, nil},
		{"client role from the request", mk(t, RoleClient, "sup"), SignOptions{}, RoleClient, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil},
		{"admin role from the request", mk(t, RoleAdmin, "boss"), SignOptions{}, RoleAdmin, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil, nil},
		{"peer role from the request", mk(t, RolePeer, "sm3.example"), SignOptions{}, RolePeer,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []string{"sm3.example"}, nil},
		{"explicit role wins", mk(t, RoleClient, "peer"), SignOptions{Roles: []Role{RolePeer}}, RolePeer,
			[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, []string{"peer"}, nil},
		{"bad days", mk(t, RoleCapture, "x"), SignOptions{Days: -1}, "", nil, nil, ErrBadArgument},
		{"unknown role", mk(t, RoleCapture, "x"), SignOptions{Roles: []Role{"server"}}, "", nil, nil, ErrBadArgument},
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
			if !slices.Equal(c.ExtKeyUsage, tc.wantEKU) {
				t.Errorf("usage %v, want %v", c.ExtKeyUsage, tc.wantEKU)
			}
			if got := RolesOf(c); !slices.Equal(got, []Role{tc.wantRole}) {
				t.Errorf("roles %v, want %s", got, tc.wantRole)
			}
			if err := CheckCert(c, ca.Cert, []Role{tc.wantRole}, time.Now(), "x"); err != nil {
				t.Error(err)
			}
			for _, r := range Roles {
				if _, err := CheckRole(c, "x", r); (err == nil) != (r == tc.wantRole) {
					t.Errorf("CheckRole(%s) = %v", r, err)
				}
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
			if err := CheckCert(c, ca.Cert, nil, time.Now(), "x"); err != nil {
				t.Error(err)
			}
		})
	}
	// A request that names no role (made by another tool) needs one.
	csr := mk(t, RoleCapture, "a")
	csr.URIs = nil
	if _, err := Sign(ca, csr, SignOptions{}); !errors.Is(err, ErrBadArgument) {
		t.Errorf("Sign without a role: %v, want ErrBadArgument", err)
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{{"1234567", false}, {"12345678", true}, {"123456789012345678901234567890", true}, {"1234567890123456789012345678901", false}, {"pässwörd", true}} {
		if err := CheckPasswordLength([]byte(tc.pw)); (err == nil) != tc.ok {
			t.Errorf("CheckPasswordLength(%q) = %v, want ok=%v", tc.pw, err, tc.ok)
		}
	}
}
