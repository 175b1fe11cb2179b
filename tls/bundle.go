package tls

import (
	"crypto/x509"
)

// Bundle writes outPath (0600) with the certificate of certPath first and
// then the private key of keyPath, the layout the original product
// requires for CtiosServer.pem and CtiosClient.pem (for example after a
// third-party CA signed the request). A key that does not belong to the
// certificate is refused with ErrKeyMismatch and nothing is written.
func Bundle(certPath, keyPath, outPath string, force bool) (*x509.Certificate, error) {
	certRaw, err := readFile(certPath)
	if err != nil {
		return nil, err
	}
	parsed, ders, err := parseCertificates(certRaw, certPath)
	if err != nil {
		return nil, err
	}
	leaf := parsed[0]
	var certs []byte
	for _, der := range ders {
		certs = append(certs, certPEM(der)...)
	}
	keyRaw, err := readFile(keyPath)
	if err != nil {
		return nil, err
	}
	keyBlock := firstKeyBlock(keyRaw)
	if keyBlock == nil {
		return nil, newErr(ErrBadPEM, "%s holds no PEM private key", keyPath)
	}
	key, err := parseKeyBlock(keyBlock, keyPath)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(leaf.PublicKey, key) {
		return nil, newErr(ErrKeyMismatch, "the private key in %s does not match the certificate in %s (%q)", keyPath, certPath, leaf.Subject.CommonName)
	}
	kp, err := keyPEM(key)
	if err != nil {
		return nil, err
	}
	if err := writeFile(outPath, append(certs, kp...), modeSecret, force); err != nil {
		return nil, err
	}
	return leaf, nil
}

// ReadCertificates returns every certificate in the PEM file at path.
func ReadCertificates(path string) ([]*x509.Certificate, error) {
	raw, err := readFile(path)
	if err != nil {
		return nil, err
	}
	out, _, err := parseCertificates(raw, path)
	if err != nil {
		return nil, err
	}
	return out, nil
}
