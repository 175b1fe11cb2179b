package tls

import "crypto/tls"

// PeerIdentity returns the subject (RFC 2253 form) and SHA-256 fingerprint
// of the peer's certificate in cs, as written to the audit trail; empty
// strings when cs is nil or holds no peer certificate.
func PeerIdentity(cs *tls.ConnectionState) (subject, fingerprint string) {
	if cs == nil || len(cs.PeerCertificates) == 0 {
		return "", ""
	}
	c := cs.PeerCertificates[0]
	return c.Subject.String(), Fingerprint(c.Raw)
}
