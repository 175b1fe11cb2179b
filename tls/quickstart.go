package tls

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// QuickstartOptions configure Quickstart. The zero value is usable.
type QuickstartOptions struct {
	// Hosts are extra DNS names or IP addresses for the server
	// certificate, besides localhost, 127.0.0.1, ::1 and the host name.
	Hosts []string
	// Password encrypts the CA key (or decrypts it, with CADir). Empty
	// without CADir: Quickstart draws a random 24-character password and
	// writes it to ca/CtiosRoot.password (0600), next to the key, for a
	// local set-up only.
	Password []byte
	// KeyAlgorithm of every key; default ECDSA P-256.
	KeyAlgorithm KeyAlgorithm
	// Days of validity of the certificates; default 825. The CA gets
	// 3650.
	Days int
	// Force replaces existing files instead of refusing (ErrExists).
	Force bool
	// Role makes the set of one host of that role (see Quickstart);
	// empty: the set of a single host that runs every program.
	Role Role
	// Strength, if set, judges a given Password of a new CA (a drawn one
	// needs no judging); see CAOptions.Strength.
	Strength func([]byte) error
	// CADir signs with the CA in that directory (CtiosRootCert.pem,
	// CtiosRoot.pem) instead of creating one: how the sets of the hosts
	// of one site share their CA.
	CADir string
}

// QuickstartCADir is the subdirectory of a quickstart directory that
// holds the CA it created: the CA key must not sit in a security
// directory that a server reads.
const QuickstartCADir = "ca"

// quickstartSet is the bundles of a quickstart set: file and roles.
type quickstartSet []struct {
	file  string
	roles []Role
}

// setFor returns the bundles Quickstart writes for role (empty: every
// program on one host).
func setFor(role Role) (quickstartSet, error) {
	switch role {
	case "":
		return quickstartSet{
			{ServerFile, []Role{RoleCapture, RoleSupervisor}},
			{PeerFile, []Role{RolePeer}},
			{ClientFile, []Role{RoleClient, RoleAdmin}},
		}, nil
	case RoleCapture, RolePeer:
		return quickstartSet{{ServerFile, []Role{RoleCapture}}, {PeerFile, []Role{RolePeer}}}, nil
	case RoleSupervisor:
		return quickstartSet{{ServerFile, []Role{RoleSupervisor}}, {ClientFile, []Role{RoleClient}}}, nil
	case RoleClient:
		return quickstartSet{{ClientFile, []Role{RoleClient}}}, nil
	case RoleAdmin:
		return quickstartSet{{ClientFile, []Role{RoleClient, RoleAdmin}}}, nil
	case RoleCTI:
		return quickstartSet{{ClientFile, []Role{RoleClient, RoleCTI}}}, nil
	}
	return nil, newErr(ErrBadArgument, "role %q is not known; use %s", string(role), roleChoices)
}

// Quickstart writes a complete security directory in one step:
// CtiosRootCert.pem (the CA certificate, 0644) and the role bundles
// (certificate then key, 0600), dir created 0700 if missing:
//   - no Role: the set of one host running every program (demos, a lab):
//     CtiosServer.pem (roles capture and supervisor), CtiosPeer.pem (peer)
//     and CtiosClient.pem (client and admin);
//   - RoleCapture (or RolePeer): a capture server's set, CtiosServer.pem
//     (capture) and CtiosPeer.pem (peer);
//   - RoleSupervisor: CtiosServer.pem (supervisor) and CtiosClient.pem
//     (client, for the supervisor's own smctl);
//   - RoleClient: CtiosClient.pem (client); RoleAdmin: CtiosClient.pem
//     (client and admin); RoleCTI: CtiosClient.pem (client and cti), for
//     a CTI integration.
//
// Server certificates name localhost, 127.0.0.1, ::1, the host name and
// opts.Hosts. Without CADir a new CA is created in dir/ca (CtiosRoot.pem,
// encrypted, and CtiosRoot.password when no password was given), so that
// no CA key sits in the security directory itself. Unless opts.Force is
// set, nothing is written when any of the files exists; files are never
// written through a symbolic link.
func Quickstart(dir string, opts QuickstartOptions) error {
	set, err := setFor(opts.Role)
	if err != nil {
		return err
	}
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
	caDir := filepath.Join(dir, QuickstartCADir)
	strength := opts.Strength
	pw := opts.Password
	genPW := len(pw) == 0 && opts.CADir == ""
	if opts.CADir != "" {
		if len(pw) == 0 {
			return newErr(ErrBadArgument, "signing with the CA in %s needs its password", opts.CADir)
		}
	} else {
		if genPW {
			if pw, err = randomPassword(24); err != nil {
				return err
			}
		}
		if genPW {
			strength = nil
		}
		if err := CheckPassword(pw, strength); err != nil {
			return err
		}
	}
	// Every file is checked before any is written: none exists (unless
	// Force), none is a link or a directory.
	names := []string{RootCertFile}
	for _, b := range set {
		names = append(names, b.file)
	}
	if opts.CADir == "" {
		names = append(names, filepath.Join(QuickstartCADir, RootCertFile), filepath.Join(QuickstartCADir, RootKeyFile),
			filepath.Join(QuickstartCADir, QuickstartPasswordFile))
	}
	if err := checkTargets(dir, opts.Force, names...); err != nil {
		if errors.Is(err, ErrExists) && !opts.Force {
			return newErr(ErrExists, "%s; remove it or use --force to replace the set", strings.TrimSuffix(err.Error(), "; remove it or use --force to replace it"))
		}
		return err
	}
	var ca *CA
	if opts.CADir != "" {
		if ca, err = LoadCA(opts.CADir, pw); err != nil {
			return err
		}
	} else {
		if ca, err = newCA(CAOptions{CommonName: "silentmon CA " + host, KeyAlgorithm: opts.KeyAlgorithm, Password: pw, Strength: strength}); err != nil {
			return err
		}
		if err := os.MkdirAll(caDir, 0o700); err != nil {
			return fmt.Errorf("cannot create the CA directory %s: %v", caDir, errText(err))
		}
		if genPW {
			if err := writeFile(filepath.Join(caDir, QuickstartPasswordFile), append(append([]byte{}, pw...), '\n'), modeSecret, true); err != nil {
				return err
			}
		}
		if err := ca.write(caDir, pw, true); err != nil {
			return err
		}
	}
	if err := writeFile(filepath.Join(dir, RootCertFile), certPEM(ca.Cert.Raw), modePublic, true); err != nil {
		return err
	}
	// Files an earlier quickstart left that this set does not replace
	// would keep old or wider roles: the CA key of the old layout, and
	// bundles of other roles.
	if opts.Force {
		for _, name := range []string{RootKeyFile, QuickstartPasswordFile, ServerFile, PeerFile, ClientFile} {
			if !set.has(name) {
				if err := removeRegular(filepath.Join(dir, name)); err != nil {
					return err
				}
			}
		}
	}
	name := host
	if name == "" {
		name = "localhost"
	}
	for _, b := range set {
		cn := "silentmon " + RoleNames(b.roles) + " " + name
		cn = strings.ReplaceAll(cn, ", ", "+")
		var d []string
		var ip []net.IP
		if needsServerAuth(b.roles) {
			d, ip = dns, ips
		}
		if err := issueBundle(dir, b.file, ca, b.roles, cn, d, ip, opts); err != nil {
			return err
		}
	}
	return nil
}

func (s quickstartSet) has(file string) bool {
	for _, b := range s {
		if b.file == file {
			return true
		}
	}
	return false
}

// removeRegular removes path if it is a regular file or a symbolic link
// (the link itself); a missing file is fine.
func removeRegular(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("cannot read %s: %v", path, errText(err))
	}
	if fi.IsDir() {
		return fmt.Errorf("%s is a directory; remove it by hand", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("cannot remove %s: %v", path, errText(err))
	}
	return nil
}

func issueBundle(dir, name string, ca *CA, roles []Role, cn string, dns []string, ips []net.IP, opts QuickstartOptions) error {
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
	der, err := Sign(ca, csr, SignOptions{Roles: roles, Days: opts.Days})
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
