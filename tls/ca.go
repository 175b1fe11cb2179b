package tls

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"path/filepath"
	"time"

	"github.com/youmark/pkcs8"
)

// Validity defaults, in days.
const (
	DefaultCADays   = 3650
	DefaultCertDays = 825
	maxDays         = 36500
)

// CA is a certificate authority loaded into memory: its certificate and
// its decrypted private key. It is immutable after LoadCA and safe for
// concurrent use.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// CAOptions configure CreateCA. The zero value of each field is its
// default.
type CAOptions struct {
	// CommonName of the CA certificate; default "silentmon CA".
	CommonName string
	// KeyAlgorithm of the CA key; default ECDSA P-256.
	KeyAlgorithm KeyAlgorithm
	// Days of validity; default 3650.
	Days int
	// Password encrypts CtiosRoot.pem; required, 8 to 30 characters, and
	// accepted by Strength when that is set (CheckPassword).
	Password []byte
	// Strength, if set, judges whether Password is hard enough to guess
	// (smctl gives internal/password.Strength).
	Strength func([]byte) error
	// Force replaces existing files instead of refusing.
	Force bool
	// Now is the start of validity; default the current time.
	Now time.Time
}

func checkDays(days, def int) (int, error) {
	if days == 0 {
		return def, nil
	}
	if days < 1 || days > maxDays {
		return 0, newErr(ErrBadArgument, "validity of %d days is out of range; use 1 to %d", days, maxDays)
	}
	return days, nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("cannot draw a serial number: %v", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// newCA makes a self-signed CA in memory.
func newCA(opts CAOptions) (*CA, error) {
	if err := CheckPassword(opts.Password, opts.Strength); err != nil {
		return nil, err
	}
	days, err := checkDays(opts.Days, DefaultCADays)
	if err != nil {
		return nil, err
	}
	key, err := generateKey(opts.KeyAlgorithm)
	if err != nil {
		return nil, err
	}
	cn := opts.CommonName
	if cn == "" {
		cn = "silentmon CA"
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"silentmon"}},
		NotBefore:             now.Add(-5 * time.Minute).UTC(),
		NotAfter:              now.AddDate(0, 0, days).UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("cannot create the CA certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("cannot parse the new CA certificate: %v", err)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// write stores the CA in dir: CtiosRootCert.pem (0644) and CtiosRoot.pem,
// the key encrypted with password (0600). Both targets are checked before
// either is written.
func (ca *CA) write(dir string, password []byte, force bool) error {
	if err := checkTargets(dir, force, RootKeyFile, RootCertFile); err != nil {
		return err
	}
	enc, err := encryptKeyPEM(ca.Key, password)
	if err != nil {
		return err
	}
	if err := writeFile(filepath.Join(dir, RootKeyFile), enc, modeSecret, force); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, RootCertFile), certPEM(ca.Cert.Raw), modePublic, force)
}

// CreateCA creates a self-signed CA in dir: CtiosRootCert.pem (the
// certificate) and CtiosRoot.pem (its key, encrypted PKCS#8: PBES2,
// PBKDF2-HMAC-SHA256, AES-256-CBC, with opts.Password). It returns the CA.
// The password must pass CheckPassword (ErrPasswordLength,
// ErrPasswordWeak); the files are written as writeFile does: never through
// a symbolic link, and an existing file only with opts.Force
// (ErrSymlink, ErrExists).
func CreateCA(dir string, opts CAOptions) (*CA, error) {
	ca, err := newCA(opts)
	if err != nil {
		return nil, err
	}
	if err := ca.write(dir, opts.Password, opts.Force); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadCA reads CtiosRootCert.pem and CtiosRoot.pem from dir and decrypts
// the key with password. A wrong password wraps ErrWrongPassword; a key
// that does not belong to the certificate wraps ErrKeyMismatch.
func LoadCA(dir string, password []byte) (*CA, error) {
	certPath := filepath.Join(dir, RootCertFile)
	cert, err := readCertFile(certPath)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, newErr(ErrKeyUsage, "the certificate in %s is not a CA certificate", certPath)
	}
	keyPath := filepath.Join(dir, RootKeyFile)
	raw, err := readFile(keyPath)
	if err != nil {
		return nil, err
	}
	block := firstKeyBlock(raw)
	if block == nil {
		return nil, newErr(ErrBadPEM, "%s holds no private key", keyPath)
	}
	var key crypto.Signer
	if block.Type == "ENCRYPTED PRIVATE KEY" {
		if len(password) == 0 {
			return nil, newErr(ErrWrongPassword, "the CA key in %s is encrypted and no password was given", keyPath)
		}
		k, _, err := pkcs8.ParsePrivateKey(block.Bytes, password)
		if err != nil {
			return nil, newErr(ErrWrongPassword, "the CA key in %s cannot be decrypted with this password", keyPath)
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, newErr(ErrBadPEM, "the CA key in %s is of an unsupported type %T", keyPath, k)
		}
		key = s
	} else {
		key, err = parseKeyBlock(block, keyPath)
		if err != nil {
			return nil, err
		}
	}
	if !publicKeyEqual(cert.PublicKey, key) {
		return nil, newErr(ErrKeyMismatch, "the CA key in %s does not match the certificate in %s", keyPath, certPath)
	}
	return &CA{Cert: cert, Key: key}, nil
}

// readCertFile returns the first certificate in path.
func readCertFile(path string) (*x509.Certificate, error) {
	raw, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return firstCert(raw, path)
}

func firstCert(raw []byte, path string) (*x509.Certificate, error) {
	certs, _, err := parseCertificates(raw, path)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}
