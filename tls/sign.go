package tls

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"
)

// keyFile and reqFile are the original product's names (note the lower
// case "key" and "req" of the client files); peer certificates get their
// own.
func keyFile(roles []Role) string {
	switch fileKind(roles) {
	case "server":
		return ServerKeyFile
	case "peer":
		return PeerKeyFile
	}
	return ClientKeyFile
}

func reqFile(roles []Role) string {
	switch fileKind(roles) {
	case "server":
		return ServerReqFile
	case "peer":
		return PeerReqFile
	}
	return ClientReqFile
}

var oidExtKeyUsage = asn1.ObjectIdentifier{2, 5, 29, 37}

var (
	oidServerAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	oidClientAuth = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
)

func usageOIDs(roles []Role) []asn1.ObjectIdentifier {
	var out []asn1.ObjectIdentifier
	for _, u := range usagesOf(roles) {
		if u == x509.ExtKeyUsageServerAuth {
			out = append(out, oidServerAuth)
		} else {
			out = append(out, oidClientAuth)
		}
	}
	return out
}

// RequestOptions configure CreateRequest.
type RequestOptions struct {
	// Roles the certificate is for (at least one); the request asks for
	// their URI SANs and extended key usages, which Sign honours.
	Roles      []Role
	CommonName string
	// Hosts are DNS names or IP addresses put in the request's subject
	// alternative names.
	Hosts        []string
	KeyAlgorithm KeyAlgorithm
	Force        bool
}

// CreateRequest writes a new private key (0600) and a certificate request
// to dir under the original product's names (CtiosServerKey.pem and
// CtiosServerReq.pem for a capture server or a supervisor service,
// CtiosClientkey.pem and CtiosClientreq.pem for a client or an
// administrator, CtiosPeerKey.pem and CtiosPeerReq.pem for a cluster
// peer) and returns their paths. The request asks for the roles' URI SANs
// and extended key usages, which Sign honours.
func CreateRequest(dir string, opts RequestOptions) (keyPath, reqPath string, err error) {
	if len(opts.Roles) == 0 {
		return "", "", newErr(ErrBadArgument, "a certificate request needs a role (--role capture, supervisor, peer, client or admin)")
	}
	for _, r := range opts.Roles {
		if !r.valid() {
			return "", "", newErr(ErrBadArgument, "role %q is not known; use capture, supervisor, peer, client or admin", string(r))
		}
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
	eku, err := asn1.Marshal(usageOIDs(opts.Roles))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.CertificateRequest{
		Subject:         pkix.Name{CommonName: opts.CommonName, Organization: []string{"silentmon"}},
		DNSNames:        dns,
		IPAddresses:     ips,
		URIs:            roleURIs(opts.Roles),
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
	keyPath = filepath.Join(dir, keyFile(opts.Roles))
	reqPath = filepath.Join(dir, reqFile(opts.Roles))
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
	// Roles decide the role URIs and extended key usages of the
	// certificate. Empty: the roles the request asks for (requests made
	// by CreateRequest carry them).
	Roles []Role
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

// requestedRoles returns the roles the request's URI SANs name.
func requestedRoles(csr *x509.CertificateRequest) []Role {
	return RolesOf(&x509.Certificate{URIs: csr.URIs})
}

func roleURIs(roles []Role) []*url.URL {
	out := make([]*url.URL, len(roles))
	for i, r := range roles {
		out[i] = RoleURI(r)
	}
	return out
}

// Sign issues a certificate for csr, signed by ca, and returns its DER.
// The subject and subject alternative names come from the request; a
// server request without any alternative name gets its common name as one
// when that is a host name or an IP address, since TLS clients match only
// alternative names. Key usage is digital signature (plus key encipherment
// for RSA keys); the roles are written as URI SANs ("silentmon:role/NAME",
// replacing any role URI the request asked for) with the extended key
// usages they need.
func Sign(ca *CA, csr *x509.CertificateRequest, opts SignOptions) ([]byte, error) {
	roles := opts.Roles
	if len(roles) == 0 {
		roles = requestedRoles(csr)
	}
	if len(roles) == 0 {
		return nil, newErr(ErrBadArgument, "the request for %q names no silentmon role; give --role capture, supervisor, peer, client or admin", csr.Subject.CommonName)
	}
	for _, r := range roles {
		if !r.valid() {
			return nil, newErr(ErrBadArgument, "role %q is not known; use capture, supervisor, peer, client or admin", string(r))
		}
	}
	uris := roleURIs(roles)
	for _, u := range csr.URIs {
		if !strings.HasPrefix(u.String(), roleURIPrefix) {
			uris = append(uris, u)
		}
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
		ExtKeyUsage:           usagesOf(roles),
		BasicConstraintsValid: true,
		DNSNames:              csr.DNSNames,
		IPAddresses:           csr.IPAddresses,
		EmailAddresses:        csr.EmailAddresses,
		URIs:                  uris,
	}
	if now := time.Now(); now.After(ca.Cert.NotAfter) {
		return nil, newErr(ErrExpired, "the CA certificate %q expired on %s; create a new CA", ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // a certificate cannot outlive its CA
	}
	if needsServerAuth(roles) && len(tmpl.DNSNames)+len(tmpl.IPAddresses) == 0 {
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
	der, err := Sign(ca, csr, opts)
	if err != nil {
		return nil, err
	}
	if err := writeFile(outPath, certPEM(der), modePublic, force); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
