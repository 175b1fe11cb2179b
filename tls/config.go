package tls

import (
	"crypto/tls"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// Clock tells the time; tests inject a fake one so nothing sleeps.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the real clock.
var SystemClock Clock = systemClock{}

// Options configure ServerConfig, ClientConfig and PeerConfig. The zero
// value is usable: permissive key-file modes are only warned about, logs
// are discarded, the system clock is used.
type Options struct {
	// Strict refuses a key file readable by group or others
	// (ErrKeyPermissions) instead of logging a warning.
	Strict bool
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
	// Clock checks certificate validity at load and during handshakes;
	// nil means the system clock.
	Clock Clock
	// Roles are the roles this program may present: the certificate
	// loaded must carry one of them. Empty: the default of each
	// constructor.
	Roles []Role
	// PeerRoles are the roles accepted from the other side of the link:
	// its certificate must carry one of them with the usages it needs,
	// else the handshake fails. Empty: the default of each constructor.
	PeerRoles []Role
	// File is the bundle ClientConfig presents; default CtiosClient.pem
	// (a capture server dialing a supervisor presents CtiosServer.pem).
	File string
}

func rolesOr(r []Role, def ...Role) []Role {
	if len(r) == 0 {
		return def
	}
	return r
}

func (o *Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o *Options) now() time.Time {
	if o.Clock == nil {
		return time.Now()
	}
	return o.Clock.Now()
}

// cipherSuites are the TLS 1.2 suites allowed: forward secrecy and AEAD
// only. TLS 1.3 suites are not configurable and all modern.
var cipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

func baseConfig(opts *Options) *tls.Config {
	c := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   tls.VersionTLS13,
		CipherSuites: cipherSuites,
	}
	if opts.Clock != nil {
		c.Time = opts.Clock.Now
	}
	return c
}

// ServerConfig returns the configuration of a 42228 listener: it presents
// CtiosServer.pem from dir, which must carry one of opts.Roles (default
// capture or supervisor), and requires a client certificate signed by the
// CA in CtiosRootCert.pem with client-authentication usage and one of
// opts.PeerRoles (default client or admin); any other client fails the
// handshake. TLS 1.2 is the minimum, 1.3 preferred. The server
// certificate is checked at load (file present, key matches, valid now,
// signed by the CA, role and usages) so a bad set-up fails at start with
// one sentence; the directory itself is checked by CheckSecurityDir (a CA
// key in it, files writable by others: warnings, or refusals with
// opts.Strict).
//
// The returned config is a fresh value; the caller may adjust it.
func ServerConfig(dir string, opts Options) (*tls.Config, error) {
	if err := CheckSecurityDir(dir, opts.Strict, opts.logger()); err != nil {
		return nil, err
	}
	pool, root, err := loadRoot(dir)
	if err != nil {
		return nil, err
	}
	pair, err := loadPairChecked(dir, ServerFile, rolesOr(opts.Roles, RoleCapture, RoleSupervisor), pool, root, &opts)
	if err != nil {
		return nil, err
	}
	c := baseConfig(&opts)
	c.Certificates = []tls.Certificate{pair.TLSCertificate()}
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = pool
	c.VerifyConnection = verifyPeerRole(rolesOr(opts.PeerRoles, RoleClient, RoleAdmin), true)
	return c, nil
}

// ClientConfig returns the configuration of a dialer: it presents
// opts.File (default CtiosClient.pem) from dir, which must carry one of
// opts.Roles (default client or admin), and verifies the server against
// CtiosRootCert.pem, its subject alternative names, and one of
// opts.PeerRoles (default capture or supervisor). The caller sets
// ServerName, or crypto/tls uses the host of the dialed address (an IP
// address is matched against IP SANs).
//
// The returned config is a fresh value; the caller may adjust it.
func ClientConfig(dir string, opts Options) (*tls.Config, error) {
	pool, root, err := loadRoot(dir)
	if err != nil {
		return nil, err
	}
	file := opts.File
	if file == "" {
		file = ClientFile
	}
	pair, err := loadPairChecked(dir, file, rolesOr(opts.Roles, RoleClient, RoleAdmin), pool, root, &opts)
	if err != nil {
		return nil, err
	}
	c := baseConfig(&opts)
	c.Certificates = []tls.Certificate{pair.TLSCertificate()}
	c.RootCAs = pool
	c.VerifyConnection = verifyPeerRole(rolesOr(opts.PeerRoles, RoleCapture, RoleSupervisor), false)
	return c, nil
}

// PeerConfig returns one configuration for links that both accept and
// dial with the same *tls.Config, the cluster's routes on 42029. Both ends
// present the peer certificate, CtiosPeer.pem, or CtiosClient.pem when
// there is no CtiosPeer.pem and it carries the peer role; the other end
// must be a peer too (role and server or client usage), verified against
// CtiosRootCert.pem. The caller checks the chain without host names
// (members are named by address).
func PeerConfig(dir string, opts Options) (*tls.Config, error) {
	pool, root, err := loadRoot(dir)
	if err != nil {
		return nil, err
	}
	file := PeerFile
	if _, err := os.Lstat(filepath.Join(dir, PeerFile)); errors.Is(err, fs.ErrNotExist) {
		file = ClientFile
	}
	pair, err := loadPairChecked(dir, file, []Role{RolePeer}, pool, root, &opts)
	if err != nil {
		return nil, err
	}
	c := baseConfig(&opts)
	cert := pair.TLSCertificate()
	c.Certificates = []tls.Certificate{cert}
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = pool
	c.RootCAs = pool
	return c, nil
}
