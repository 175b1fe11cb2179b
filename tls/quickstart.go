package tls

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
)

// QuickstartOptions configure Quickstart. The zero value is usable.
type QuickstartOptions struct {
	// Hosts are extra DNS names or IP addresses for the server
	// certificate, besides localhost, 127.0.0.1, ::1 and the host name.
	Hosts []string
	// Password encrypts the CA key. Empty: Quickstart draws a random
	// 24-character password and writes it to CtiosRoot.password (0600) in
	// dir, next to the key, for a local set-up only.
	Password []byte
	// KeyAlgorithm of every key; default ECDSA P-256.
	KeyAlgorithm KeyAlgorithm
	// Days of validity of the server and client certificates; default
	// 825. The CA gets 3650.
	Days int
	// Force replaces existing files instead of refusing (ErrExists).
	Force bool
}

// Quickstart writes a complete security directory for a local set-up in
// one step: CtiosRootCert.pem (CA certificate, 0644), CtiosRoot.pem (CA key,
// encrypted PKCS#8, 0600), CtiosServer.pem (server certificate then key,
// 0600; SANs localhost, 127.0.0.1, ::1, the host name and opts.Hosts) and
// CtiosClient.pem (client certificate then key, 0600; also the certificate
// a capture server presents when it dials a supervisor service or a
// cluster peer), plus CtiosRoot.password when no password was given. dir
// is created (0700) if missing. Unless opts.Force is set, nothing is
// written when any of these files exists.
func Quickstart(dir string, opts QuickstartOptions) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cannot create the security directory %s: %v", dir, errText(err))
	}
	host, _ := os.Hostname()
	hosts := append([]string{"localhost", "127.0.0.1", "::1"}, host)
	hosts = append(hosts, opts.Hosts...)
	dns, ips, err := splitHosts(hosts)
	if err != nil {
		return err
	}
	pw := opts.Password
	genPW := len(pw) == 0
	if genPW {
		if pw, err = randomPassword(24); err != nil {
			return err
		}
	}
	if err := CheckPassword(pw); err != nil {
		return err
	}
	if !opts.Force {
		for _, name := range []string{RootCertFile, RootKeyFile, ServerFile, ClientFile, QuickstartPasswordFile} {
			p := filepath.Join(dir, name)
			if _, err := os.Lstat(p); err == nil {
				return newErr(ErrExists, "%s already exists; remove it or use --force to replace the set", p)
			}
		}
	}
	ca, err := newCA(CAOptions{CommonName: "silentmon CA " + host, KeyAlgorithm: opts.KeyAlgorithm, Password: pw})
	if err != nil {
		return err
	}
	if genPW {
		if err := writeFile(filepath.Join(dir, QuickstartPasswordFile), append(append([]byte{}, pw...), '\n'), modeSecret, true); err != nil {
			return err
		}
	}
	if err := ca.write(dir, pw, true); err != nil {
		return err
	}
	name := host
	if name == "" {
		name = "localhost"
	}
	if err := issueBundle(dir, ServerFile, ca, RoleServer, "silentmon server "+name, dns, ips, opts); err != nil {
		return err
	}
	return issueBundle(dir, ClientFile, ca, RoleClient, "silentmon client "+name, nil, nil, opts)
}

func issueBundle(dir, name string, ca *CA, role Role, cn string, dns []string, ips []net.IP, opts QuickstartOptions) error {
	key, err := generateKey(opts.KeyAlgorithm)
	if err != nil {
		return err
	}
	csr := &x509.CertificateRequest{DNSNames: dns, IPAddresses: ips, PublicKey: key.Public()}
	csr.Subject.CommonName = cn
	csr.Subject.Organization = []string{"silentmon"}
	if _, ok := key.Public().(*rsa.PublicKey); ok {
		csr.PublicKeyAlgorithm = x509.RSA
	}
	der, err := Sign(ca, csr, SignOptions{Role: role, Days: opts.Days})
	if err != nil {
		return err
	}
	kp, err := keyPEM(key)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name), append(certPEM(der), kp...), modeSecret, true)
}

const pwAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

func randomPassword(n int) ([]byte, error) {
	out := make([]byte, n)
	max := big.NewInt(int64(len(pwAlphabet)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			return nil, fmt.Errorf("cannot draw a random password: %v", err)
		}
		out[i] = pwAlphabet[v.Int64()]
	}
	return out, nil
}
