package tls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/youmark/pkcs8"
)

// KeyAlgorithm names the kind of key to generate. The zero value means
// ECDSA P-256.
type KeyAlgorithm string

// Supported key algorithms.
const (
	ECDSAP256 KeyAlgorithm = "ecdsa-p256"
	RSA2048   KeyAlgorithm = "rsa-2048"
	RSA3072   KeyAlgorithm = "rsa-3072"
)

// ParseKeyAlgorithm accepts "ecdsa-p256" (also "ecdsa", "p256", ""),
// "rsa-2048" (also "rsa", "rsa2048") and "rsa-3072" (also "rsa3072").
func ParseKeyAlgorithm(s string) (KeyAlgorithm, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "ecdsa", "ecdsa-p256", "p256", "p-256", "ec":
		return ECDSAP256, nil
	case "rsa", "rsa-2048", "rsa2048":
		return RSA2048, nil
	case "rsa-3072", "rsa3072":
		return RSA3072, nil
	}
	return "", newErr(ErrBadArgument, "key algorithm %q is not supported; use ecdsa-p256, rsa-2048 or rsa-3072", s)
}

// generateKey makes a new private key of kind alg.
func generateKey(alg KeyAlgorithm) (crypto.Signer, error) {
	switch alg {
	case "", ECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case RSA3072:
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, newErr(ErrBadArgument, "key algorithm %q is not supported; use ecdsa-p256, rsa-2048 or rsa-3072", string(alg))
}

// Password limits of the CA key: the length rule of the original
// product. How hard a new password is to guess is checked by the function
// the caller gives (CAOptions.Strength, QuickstartOptions.Strength); smctl
// gives internal/password.Strength, so that the servers do not carry a
// password estimator.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 30
)

// CheckPasswordLength refuses a CA password shorter than 8 or longer than
// 30 characters (counted as Unicode code points), the original product's
// only rule. It is the check for the password of an existing CA key,
// which was set before any strength rule and must still open it.
func CheckPasswordLength(pw []byte) error {
	n := utf8.RuneCount(pw)
	if n < MinPasswordLen || n > MaxPasswordLen {
		return newErr(ErrPasswordLength, "the CA password has %d characters; it must have 8 to 30", n)
	}
	return nil
}

// CheckPassword is the check of a new CA password: its length
// (ErrPasswordLength), then, when strength is not nil, strength(pw), whose
// error is returned wrapping ErrPasswordWeak.
func CheckPassword(pw []byte, strength func([]byte) error) error {
	if err := CheckPasswordLength(pw); err != nil {
		return err
	}
	if strength != nil {
		if err := strength(pw); err != nil {
			return newErr(ErrPasswordWeak, "%s", err.Error())
		}
	}
	return nil
}

// caKeyOpts encrypts the CA key: PBES2 with PBKDF2-HMAC-SHA256 and
// AES-256-CBC, which OpenSSL 1.1 and 3 read (openssl pkey -passin ...).
var caKeyOpts = &pkcs8.Opts{
	Cipher: pkcs8.AES256CBC,
	KDFOpts: pkcs8.PBKDF2Opts{
		SaltSize:       16,
		IterationCount: 210000,
		HMACHash:       crypto.SHA256,
	},
}

// encryptKeyPEM returns key as an "ENCRYPTED PRIVATE KEY" PEM block.
func encryptKeyPEM(key crypto.Signer, password []byte) ([]byte, error) {
	der, err := pkcs8.MarshalPrivateKey(key, password, caKeyOpts)
	if err != nil {
		return nil, fmt.Errorf("cannot encrypt the CA key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: der}), nil
}

// keyPEM returns key as an unencrypted PKCS#8 "PRIVATE KEY" PEM block.
func keyPEM(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("cannot encode a private key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// certPEM returns der as a "CERTIFICATE" PEM block.
func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// parseKeyBlock decodes an unencrypted private key block (PKCS#8, SEC 1
// or PKCS#1).
func parseKeyBlock(b *pem.Block, file string) (crypto.Signer, error) {
	var (
		k   any
		err error
	)
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		if _, enc := b.Headers["Proc-Type"]; enc {
			return nil, newErr(ErrBadPEM, "the private key in %s is encrypted with a legacy scheme; decrypt it first (openssl pkey -in %s -out NEW)", file, file)
		}
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	case "ENCRYPTED PRIVATE KEY":
		return nil, newErr(ErrBadPEM, "the private key in %s is encrypted; a server or client key must be stored unencrypted with mode 0600", file)
	default:
		return nil, newErr(ErrBadPEM, "%s holds a %q block where a private key was expected", file, b.Type)
	}
	if err != nil {
		return nil, newErr(ErrBadPEM, "the private key in %s cannot be parsed: %v", file, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, newErr(ErrBadPEM, "the private key in %s is of an unsupported type %T", file, k)
	}
	return s, nil
}

func isKeyBlock(t string) bool {
	return t == "PRIVATE KEY" || t == "EC PRIVATE KEY" || t == "RSA PRIVATE KEY" || t == "ENCRYPTED PRIVATE KEY"
}

// publicKeyEqual reports whether pub is the public half of key.
func publicKeyEqual(pub crypto.PublicKey, key crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey, *rsa.PublicKey, ed25519.PublicKey:
		return k.(equaler).Equal(pub)
	}
	return false
}

// firstKeyBlock returns the first private-key PEM block of raw, or nil.
func firstKeyBlock(raw []byte) *pem.Block {
	for rest := raw; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil
		}
		if isKeyBlock(b.Type) {
			return b
		}
	}
}

// parseCertificates returns every PEM certificate of raw, parsed, and
// their DER encodings, in file order; path names the source in errors. A
// file without one is an error.
func parseCertificates(raw []byte, path string) ([]*x509.Certificate, [][]byte, error) {
	var certs []*x509.Certificate
	var ders [][]byte
	for rest := raw; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, newErr(ErrBadPEM, "a certificate in %s cannot be parsed: %v", path, err)
		}
		certs = append(certs, c)
		ders = append(ders, b.Bytes)
	}
	if len(certs) == 0 {
		return nil, nil, newErr(ErrBadPEM, "%s holds no PEM certificate", path)
	}
	return certs, ders, nil
}
