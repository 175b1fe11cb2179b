package tls

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"time"
)

// Pair is a certificate with its private key, as read from a bundle file
// (CtiosServer.pem, CtiosClient.pem): certificate first, then key.
type Pair struct {
	Leaf  *x509.Certificate
	Chain [][]byte // DER of every certificate in the file, leaf first
	Key   crypto.Signer
}

// TLSCertificate returns p in crypto/tls form.
func (p *Pair) TLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: p.Chain, PrivateKey: p.Key, Leaf: p.Leaf}
}

// ReadPair reads a bundle file: one or more certificates, then a private
// key. It checks that the key belongs to the first certificate (wrapping
// ErrKeyMismatch otherwise). The key file's mode is checked by the caller.
func ReadPair(path string) (*Pair, error) {
	raw, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePair(raw, path)
}

// ParsePair parses the content of a bundle file as ReadPair does; path
// names the source in errors.
func ParsePair(raw []byte, path string) (*Pair, error) {
	var (
		chain    [][]byte
		keyBlock *pem.Block
	)
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			chain = append(chain, b.Bytes)
		case isKeyBlock(b.Type) && keyBlock == nil:
			keyBlock = b
		}
	}
	if len(chain) == 0 {
		return nil, newErr(ErrBadPEM, "%s holds no PEM certificate; it must hold the certificate first, then its key", path)
	}
	if keyBlock == nil {
		return nil, newErr(ErrBadPEM, "%s holds no private key; it must hold the certificate first, then its key", path)
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return nil, newErr(ErrBadPEM, "the certificate in %s cannot be parsed: %v", path, err)
	}
	key, err := parseKeyBlock(keyBlock, path)
	if err != nil {
		return nil, err
	}
	if !publicKeyEqual(leaf.PublicKey, key) {
		return nil, newErr(ErrKeyMismatch, "the private key in %s does not match its certificate %q", path, leaf.Subject.CommonName)
	}
	return &Pair{Leaf: leaf, Chain: chain, Key: key}, nil
}

// CheckCert checks that cert, read from file, is valid at now, is signed
// by root (unless root is nil), and carries one of roles with the extended
// key usages it needs (unless roles is empty). The error is one sentence
// wrapping ErrExpired, ErrNotYetValid, ErrUnknownCA, ErrWrongRole or
// ErrKeyUsage.
func CheckCert(cert, root *x509.Certificate, roles []Role, now time.Time, file string) error {
	const day = "2006-01-02 15:04:05 MST"
	if now.After(cert.NotAfter) {
		return newErr(ErrExpired, "the certificate in %s (%q) expired on %s", file, cert.Subject.CommonName, cert.NotAfter.UTC().Format(day))
	}
	if now.Before(cert.NotBefore) {
		return newErr(ErrNotYetValid, "the certificate in %s (%q) is not valid before %s", file, cert.Subject.CommonName, cert.NotBefore.UTC().Format(day))
	}
	if root != nil {
		if err := cert.CheckSignatureFrom(root); err != nil {
			return newErr(ErrUnknownCA, "the certificate in %s (%q) is signed by %q, not by the CA in %s", file, cert.Subject.CommonName, cert.Issuer.CommonName, RootCertFile)
		}
	}
	if len(roles) > 0 {
		if _, err := CheckRole(cert, "the certificate in "+file, roles...); err != nil {
			return err
		}
	}
	return nil
}

// loadRoot reads CtiosRootCert.pem: every certificate in it is trusted
// (the original product has a single CA, no chains).
func loadRoot(dir string) (*x509.CertPool, *x509.Certificate, error) {
	path := filepath.Join(dir, RootCertFile)
	raw, err := readFile(path)
	if err != nil {
		return nil, nil, err
	}
	first, err := firstCert(raw, path)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, nil, newErr(ErrBadPEM, "%s holds no usable CA certificate", path)
	}
	return pool, first, nil
}

// loadPairChecked reads the bundle at dir/name, checks its key file mode
// and its certificate for one of roles against the CAs of pool, of which
// root is the first. A key readable by others is logged as a warning, or
// refused with opts.Strict. A certificate without any role was made
// before roles existed: the error says how to reissue it.
func loadPairChecked(dir, name string, roles []Role, pool *x509.CertPool, root *x509.Certificate, opts *Options) (*Pair, error) {
	path := filepath.Join(dir, name)
	pair, err := ReadPair(path)
	if err != nil {
		return nil, err
	}
	if err := checkKeyMode(path); err != nil {
		if opts.Strict {
			return nil, err
		}
		opts.logger().Warn("security file is readable by others", "file", path, "err", err.Error())
	}
	// CtiosRootCert.pem may hold several CAs and the handshake trusts
	// them all: a certificate that verifies against the pool has its
	// issuer; otherwise the first CA names the one expected in the error.
	issuer := root
	if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: opts.now(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err == nil {
		issuer = nil
	}
	if err := CheckCert(pair.Leaf, issuer, roles, opts.now(), path); err != nil {
		if errors.Is(err, ErrWrongRole) && len(RolesOf(pair.Leaf)) == 0 {
			return nil, newErr(ErrWrongRole, "%s%s", err.Error(), errNoRoleHint(dir))
		}
		return nil, err
	}
	return pair, nil
}
