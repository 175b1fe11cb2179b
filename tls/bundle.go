package tls

import (
	"crypto/x509"
	"encoding/pem"
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
	var certs []byte
	var leaf *x509.Certificate
	for rest := certRaw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, newErr(ErrBadPEM, "the certificate in %s cannot be parsed: %v", certPath, err)
		}
		if leaf == nil {
			leaf = c
		}
		certs = append(certs, certPEM(b.Bytes)...)
	}
	if leaf == nil {
		return nil, newErr(ErrBadPEM, "%s holds no PEM certificate", certPath)
	}
	keyRaw, err := readFile(keyPath)
	if err != nil {
		return nil, err
	}
	var keyBlock *pem.Block
	for rest := keyRaw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if isKeyBlock(b.Type) {
			keyBlock = b
			break
		}
	}
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
	var out []*x509.Certificate
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, newErr(ErrBadPEM, "a certificate in %s cannot be parsed: %v", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, newErr(ErrBadPEM, "%s holds no PEM certificate", path)
	}
	return out, nil
}
