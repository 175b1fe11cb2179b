package tls

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Role is what a certificate is for: a server (server authentication) or
// a client (client authentication).
type Role string

// Roles.
const (
	RoleServer Role = "server"
	RoleClient Role = "client"
)

// ParseRole accepts "server" or "client".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "server":
		return RoleServer, nil
	case "client":
		return RoleClient, nil
	}
	return "", newErr(ErrBadArgument, "role %q is not known; use server or client", s)
}

func (r Role) extKeyUsage() x509.ExtKeyUsage {
	if r == RoleServer {
		return x509.ExtKeyUsageServerAuth
	}
	return x509.ExtKeyUsageClientAuth
}

// keyFile and reqFile are the original product's names (note the lower
// case "key" and "req" of the client files).
func (r Role) keyFile() string {
	if r == RoleServer {
		return ServerKeyFile
	}
	return ClientKeyFile
}

func (r Role) reqFile() string {
	if r == RoleServer {
		return ServerReqFile
	}
	return ClientReqFile
}

var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

var (
	oidServerAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

// RequestOptions configure CreateRequest.
type RequestOptions struct {
	Role       Role
	CommonName string
	// Hosts are DNS names or IP addresses put in the request's subject
	// alternative names.
	Hosts        []string
	KeyAlgorithm KeyAlgorithm
	Force        bool
}

// CreateRequest writes a new private key (0600) and a certificate request
// to dir under the original product's names (CtiosServerKey.pem and
// CtiosServerReq.pem, or CtiosClientkey.pem and CtiosClientreq.pem) and
// returns their paths. The request asks for the role's extended key usage,
// which Sign honours.
func CreateRequest(dir string, opts RequestOptions) (keyPath, reqPath string, err error) {
	if opts.Role != RoleServer && opts.Role != RoleClient {
		return "", "", newErr(ErrBadArgument, "role %q is not known; use server or client", string(opts.Role))
	}
	if strings.TrimSpace(opts.CommonName) == "" {
		return "", "", newErr(ErrBadArgument, "a certificate request needs a common name (--cn)")
	}
	dns, ips, err := splitHosts(opts.Hosts)
	if err != nil {
		return "", "", err
	}
	key, err := generateKey(opts.KeyAlgorithm)
	if err != nil {
		return "", "", err
	}
	ekuOID := oidClientAuth
	if opts.Role == RoleServer {
		ekuOID = oidServerAuth
	}
	eku, err := asn1.Marshal([]asn1.ObjectIdentifier{ekuOID})
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: opts.CommonName, Organization: []string{"silentmon"}},
		DNSNames:        dns,
		IPAddresses:     ips,
		ExtraExtensions: []pkix.Extension{{Id: oidExtKeyUsage, Value: eku}},
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return "", "", fmt.Errorf("cannot create the certificate request: %v", err)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return "", "", err
	}
	keyPath = filepath.Join(dir, opts.Role.keyFile())
	reqPath = filepath.Join(dir, opts.Role.reqFile())
	if err := writeFile(keyPath, kp, modeSecret, opts.Force); err != nil {
		return "", "", err
	}
	req := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	if err := writeFile(reqPath, req, modePublic, opts.Force); err != nil {
		return "", "", err
	}
	return keyPath, reqPath, nil
}

// splitHosts separates IP addresses from DNS names and refuses values that
// are neither.
func splitHosts(hosts []string) (dns []string, ips []net.IP, err error) {
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if h == "" || seen[strings.ToLower(h)] {
			continue
		}
		seen[strings.ToLower(h)] = true
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if !validHostname(h) {
			return nil, nil, newErr(ErrBadArgument, "host %q is neither an IP address nor a DNS name", h)
		}
		dns = append(dns, h)
	}
	return dns, ips, nil
}

func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	h = strings.TrimPrefix(h, "*.")
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// SignOptions configure Sign.
type SignOptions struct {
	// Role decides the extended key usage. Empty: the usage the request
	// asks for (requests made by CreateRequest carry it).
	Role Role
	// Days of validity; default 825.
	Days int
	// NotBefore is the start of validity; default now (minus five minutes
	// for clock skew).
	NotBefore time.Time
}

// ParseRequest decodes the first PEM "CERTIFICATE REQUEST" (or "NEW
// CERTIFICATE REQUEST") in raw and checks its signature; file names the
// source in errors.
func ParseRequest(raw []byte, file string) (*x509.CertificateRequest, error) {
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			continue
		}
		csr, err := x509.ParseCertificateRequest(b.Bytes)
		if err != nil {
			return nil, newErr(ErrBadPEM, "the certificate request in %s cannot be parsed: %v", file, err)
		}
		if err := csr.CheckSignature(); err != nil {
			return nil, newErr(ErrBadPEM, "the certificate request in %s has a bad signature: %v", file, err)
		}
		return csr, nil
	}
	return nil, newErr(ErrBadPEM, "%s holds no PEM certificate request", file)
}

// requestedRole returns the role named by the request's extended key
// usage extension, or "" when it asks for none or both.
func requestedRole(csr *x509.CertificateRequest) Role {
	for _, ext := range csr.Extensions {
		if !ext.Id.Equal(oidExtKeyUsage) {
			continue
		}
		var oids []asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(ext.Value, &oids); err != nil {
			return ""
		}
		var srv, cli bool
		for _, o := range oids {
			srv = srv || o.Equal(oidServerAuth)
			cli = cli || o.Equal(oidClientAuth)
		}
		switch {
		case srv && !cli:
			return RoleServer
		case cli && !srv:
			return RoleClient
		}
	}
	return ""
}

// RoleFromFileName guesses the role from the original product's request
// names (CtiosServerReq.pem, CtiosClientreq.pem); "" when it cannot tell.
func RoleFromFileName(path string) Role {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case strings.Contains(base, "server"):
		return RoleServer
	case strings.Contains(base, "client"):
		return RoleClient
	}
	return ""
}

// Sign issues a certificate for csr, signed by ca, and returns its DER.
// The subject and subject alternative names come from the request; a
// server request without any alternative name gets its common name as one
// when that is a host name or an IP address, since TLS clients match only
// alternative names. Key usage is digital signature (plus key encipherment
// for RSA keys); the extended key usage is server or client
// authentication.
func Sign(ca *CA, csr *x509.CertificateRequest, opts SignOptions) ([]byte, error) {
	role := opts.Role
	if role == "" {
		role = requestedRole(csr)
	}
	if role != RoleServer && role != RoleClient {
		return nil, newErr(ErrBadArgument, "the request for %q does not say whether it is for a server or a client; give --role server or --role client", csr.Subject.CommonName)
	}
	days, err := checkDays(opts.Days, DefaultCertDays)
	if err != nil {
		return nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	start := opts.NotBefore
	if start.IsZero() {
		start = time.Now().Add(-5 * time.Minute)
	}
	ku := x509.KeyUsageDigitalSignature
	if csr.PublicKeyAlgorithm == x509.RSA {
		ku |= x509.KeyUsageKeyEncipherment
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               csr.Subject,
		NotBefore:             start.UTC(),
		NotAfter:              start.Add(5*time.Minute).AddDate(0, 0, days).UTC(),
		KeyUsage:              ku,
		ExtKeyUsage:           []x509.ExtKeyUsage{role.extKeyUsage()},
		BasicConstraintsValid: true,
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		EmailAddresses:        csr.EmailAddresses,
		URIs:                  csr.URIs,
	}
	if now := time.Now(); now.After(ca.Cert.NotAfter) {
		return nil, newErr(ErrExpired, "the CA certificate %q expired on %s; create a new CA", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // a certificate cannot outlive its CA
	}
	if role == RoleServer && len(tmpl.DNSNames)+len(tmpl.IPAddresses) == 0 {
		cn := csr.Subject.CommonName
		if ip := net.ParseIP(cn); ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		} else if validHostname(cn) {
			tmpl.DNSNames = []string{cn}
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, csr.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("cannot sign the request for %q: %v", csr.Subject.CommonName, err)
	}
	return der, nil
}

// SignFile signs the request in reqPath with ca and writes the certificate
// to outPath (0644).
func SignFile(ca *CA, reqPath, outPath string, opts SignOptions, force bool) (*x509.Certificate, error) {
	raw, err := readFile(reqPath)
	if err != nil {
		return nil, err
	}
	csr, err := ParseRequest(raw, reqPath)
	if err != nil {
		return nil, err
	}
	if opts.Role == "" && requestedRole(csr) == "" {
		opts.Role = RoleFromFileName(reqPath)
	}
	der, err := Sign(ca, csr, opts)
	if err != nil {
		return nil, err
	}
	if err := writeFile(outPath, certPEM(der), modePublic, force); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
