package tls

import (
	"crypto/tls"
	"log/slog"
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

// ServerConfig returns the configuration of a listener (42228, 42029): it
// presents CtiosServer.pem from dir and requires a client certificate
// signed by the CA in CtiosRootCert.pem with client-authentication usage.
// TLS 1.2 is the minimum, 1.3 preferred. The server certificate is checked
// at load (file present, key matches, valid now, signed by the CA, server
// usage) so a bad set-up fails at start with one sentence.
//
// The returned config is a fresh value; the caller may adjust it.
func ServerConfig(dir string, opts Options) (*tls.Config, error) {
	pool, root, err := loadRoot(dir)
	if err != nil {
		return nil, err
	}
	pair, err := loadPairChecked(dir, ServerFile, RoleServer, pool, root, &opts)
	if err != nil {
		return nil, err
	}
	c := baseConfig(&opts)
	c.Certificates = []tls.Certificate{pair.TLSCertificate()}
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = pool
	return c, nil
}

// ClientConfig returns the configuration of a dialer: it presents
// CtiosClient.pem from dir and verifies the server against
// CtiosRootCert.pem and its subject alternative names. The caller sets
// ServerName, or crypto/tls uses the host of the dialed address (an IP
// address is matched against IP SANs).
//
// The returned config is a fresh value; the caller may adjust it.
func ClientConfig(dir string, opts Options) (*tls.Config, error) {
	pool, root, err := loadRoot(dir)
	if err != nil {
		return nil, err
	}
	pair, err := loadPairChecked(dir, ClientFile, RoleClient, pool, root, &opts)
	if err != nil {
		return nil, err
	}
	c := baseConfig(&opts)
	c.Certificates = []tls.Certificate{pair.TLSCertificate()}
	c.RootCAs = pool
	return c, nil
}

// PeerConfig returns one configuration for links that both accept and
// dial with the same *tls.Config, such as the cluster's routes on 42029:
// as a server it presents CtiosServer.pem and requires a client
// certificate; as a client it presents CtiosClient.pem (through
// GetClientCertificate) and verifies the peer against CtiosRootCert.pem.
func PeerConfig(dir string, opts Options) (*tls.Config, error) {
	pool, root, err := loadRoot(dir)
	if err != nil {
		return nil, err
	}
	srv, err := loadPairChecked(dir, ServerFile, RoleServer, pool, root, &opts)
	if err != nil {
		return nil, err
	}
	cli, err := loadPairChecked(dir, ClientFile, RoleClient, pool, root, &opts)
	if err != nil {
		return nil, err
	}
	c := baseConfig(&opts)
	c.Certificates = []tls.Certificate{srv.TLSCertificate()}
	cc := cli.TLSCertificate()
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cc, nil }
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = pool
	c.RootCAs = pool
	return c, nil
}
