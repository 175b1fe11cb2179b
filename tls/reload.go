package tls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds a program's certificates, read from one security directory,
// and gives out TLS configurations that use whatever it holds now, so that
// Reload puts new certificates and a new CA to work without a restart:
// new handshakes use them, links already up keep going.
//
// Each link a program has takes its configuration from ServerConfig,
// ClientConfig or PeerConfig, which read and check the link's bundle at
// once, with every check of the free functions of the same names, and
// remember it: Reload reads and checks the CA and every bundle anew, and
// puts them to work only if all of them pass; otherwise the old ones stay
// in use and the error names the file at fault.
//
// What a configuration reads at each handshake:
//   - ServerConfig: the certificate presented and the CA that client
//     certificates are verified against.
//   - ClientConfig: the certificate presented; the server's certificate is
//     verified by crypto/tls against the CA read when the configuration was
//     made (with its host name) and again against the CA read last, so a
//     CA removed from CtiosRootCert.pem is refused at once while a CA added
//     is trusted by the links this program dials after a restart.
//   - PeerConfig: the certificate presented at both ends; the CA is the one
//     read when the configuration was made.
//
// Make one with NewStore (the zero value is not usable). A Store is safe
// for concurrent use and starts no goroutine. The configurations it gives out are
// fresh values that the caller may adjust before using them (a server
// configuration's handshakes start from the value as the caller left it);
// they must not be changed once in use.
type Store struct {
	dir  string
	opts Options

	mu    sync.Mutex // serialises Reload and the registration of links
	links []link

	cur      atomic.Pointer[material]
	failures atomic.Uint64
	lastOK   atomic.Int64 // Unix seconds of the last successful load
}

// link is a bundle a link presents and the roles it must carry. An empty
// file is the peer link's: CtiosPeer.pem, or CtiosClient.pem without it.
type link struct {
	file  string
	roles []Role
}

// material is one complete, checked reading of the security directory.
// It is never changed once published.
type material struct {
	pool  *x509.CertPool
	root  *x509.Certificate
	roots []*x509.Certificate // every certificate of CtiosRootCert.pem
	pairs map[string]*loaded  // by file name
	at    time.Time
}

// loaded is a bundle read from file, with the role it was accepted under.
type loaded struct {
	cert *tls.Certificate
	role Role
	file string
}

// NewStore reads the CA of dir (CtiosRootCert.pem) and checks the
// directory (CheckSecurityDir: a CA key in it, files writable by others).
// opts.Strict, opts.Logger and opts.Clock apply to every link; the roles
// and file are given per link.
func NewStore(dir string, opts Options) (*Store, error) {
	opts.Roles, opts.PeerRoles, opts.File = nil, nil, ""
	s := &Store{dir: dir, opts: opts}
	m, err := s.load(nil)
	if err != nil {
		return nil, err
	}
	s.publish(m)
	return s, nil
}

// Dir returns the security directory the Store reads.
func (s *Store) Dir() string { return s.dir }

// Reload reads and checks the CA and the bundle of every link anew, as
// they were checked at start. If all of them pass, new handshakes use
// them from now on; otherwise nothing changes, the failure is counted
// (silentmon_tls_reload_failures_total) and the error, one sentence,
// names the file at fault.
func (s *Store) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load(s.links)
	if err != nil {
		s.failures.Add(1)
		return fmt.Errorf("certificates not reloaded, the ones in use are kept: %w", err)
	}
	s.publish(m)
	return nil
}

func (s *Store) publish(m *material) {
	s.cur.Store(m)
	s.lastOK.Store(m.at.Unix())
}

// load reads the directory's CA and the bundles of links.
func (s *Store) load(links []link) (*material, error) {
	if err := CheckSecurityDir(s.dir, s.opts.Strict, s.opts.logger()); err != nil {
		return nil, err
	}
	pool, root, err := loadRoot(s.dir)
	if err != nil {
		return nil, err
	}
	roots, err := ReadCertificates(filepath.Join(s.dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	m := &material{pool: pool, root: root, roots: roots, pairs: map[string]*loaded{}, at: s.opts.now()}
	for _, l := range links {
		if err := s.loadLink(m, l); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// loadLink reads and checks the bundle of l into m.
func (s *Store) loadLink(m *material, l link) error {
	file := l.file
	if file == "" {
		file = PeerFile
		if _, err := os.Lstat(filepath.Join(s.dir, PeerFile)); errors.Is(err, fs.ErrNotExist) {
			file = ClientFile
		}
	}
	opts := s.opts
	pair, err := loadPairChecked(s.dir, file, l.roles, m.pool, m.root, &opts)
	if err != nil {
		return err
	}
	role, _ := CheckRole(pair.Leaf, file, l.roles...)
	cert := pair.TLSCertificate()
	key := l.file
	if key == "" {
		key = peerKey
	}
	if prev, ok := m.pairs[key]; ok && prev.role != "" {
		role = prev.role // the same file for two links: named by the first
	}
	m.pairs[key] = &loaded{cert: &cert, role: role, file: file}
	return nil
}

// peerKey is the name material.pairs keeps the peer link's bundle under.
const peerKey = "\x00peer"

// register checks l's bundle against the material in use and remembers
// the link for Reload.
func (s *Store) register(l link) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cur.Load()
	next := &material{pool: cur.pool, root: cur.root, roots: cur.roots, pairs: make(map[string]*loaded, len(cur.pairs)+1), at: cur.at}
	for k, v := range cur.pairs {
		next.pairs[k] = v
	}
	if err := s.loadLink(next, l); err != nil {
		return err
	}
	if !slices.ContainsFunc(s.links, func(o link) bool { return o.file == l.file && slices.Equal(o.roles, l.roles) }) {
		s.links = append(s.links, l)
	}
	s.cur.Store(next)
	return nil
}

// certificate returns the bundle in use for the link that presents file
// ("" for the peer link).
func (s *Store) certificate(file string) *tls.Certificate {
	if file == "" {
		file = peerKey
	}
	if p := s.cur.Load().pairs[file]; p != nil {
		return p.cert
	}
	return nil
}

// ServerConfig returns the configuration of a 42228 listener, as the
// function ServerConfig does (CtiosServer.pem with one of roles, default
// capture or supervisor; client certificates signed by the CA with one
// of peerRoles, default client or admin), except that each handshake
// uses the certificate and the CA the Store holds then.
func (s *Store) ServerConfig(roles, peerRoles []Role) (*tls.Config, error) {
	l := link{file: ServerFile, roles: rolesOr(roles, RoleCapture, RoleSupervisor)}
	if err := s.register(l); err != nil {
		return nil, err
	}
	cur := s.cur.Load()
	c := baseConfig(&s.opts)
	c.Certificates = []tls.Certificate{*s.certificate(l.file)}
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = cur.pool
	c.VerifyConnection = verifyPeerRole(rolesOr(peerRoles, RoleClient, RoleAdmin), true)
	c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		h := c.Clone()
		h.GetConfigForClient = nil
		h.Certificates = []tls.Certificate{*s.certificate(l.file)}
		h.ClientCAs = s.cur.Load().pool
		return h, nil
	}
	return c, nil
}

// ClientConfig returns the configuration of a dialer, as the function
// ClientConfig does (file, default CtiosClient.pem, with one of roles,
// default client or admin; the server verified against the CA, its host
// name and one of peerRoles, default capture or supervisor), except that
// each handshake presents the certificate the Store holds then and
// verifies the server's chain against the CA held then too (see Store).
func (s *Store) ClientConfig(file string, roles, peerRoles []Role) (*tls.Config, error) {
	if file == "" {
		file = ClientFile
	}
	l := link{file: file, roles: rolesOr(roles, RoleClient, RoleAdmin)}
	if err := s.register(l); err != nil {
		return nil, err
	}
	c := baseConfig(&s.opts)
	c.RootCAs = s.cur.Load().pool
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		return s.certificate(l.file), nil
	}
	role := verifyPeerRole(rolesOr(peerRoles, RoleCapture, RoleSupervisor), false)
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if err := s.verifyChain(cs, x509.ExtKeyUsageServerAuth, "server"); err != nil {
			return err
		}
		return role(cs)
	}
	return c, nil
}

// PeerConfig returns the configuration of the cluster's routes, as the
// function PeerConfig does (CtiosPeer.pem, or CtiosClient.pem with the
// peer role, at both ends), except that each handshake presents the
// certificate the Store holds then. The CA is the one held now.
func (s *Store) PeerConfig() (*tls.Config, error) {
	l := link{roles: []Role{RolePeer}}
	if err := s.register(l); err != nil {
		return nil, err
	}
	pool := s.cur.Load().pool
	c := baseConfig(&s.opts)
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return s.certificate(""), nil }
	c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return s.certificate(""), nil }
	c.ClientAuth = tls.RequireAndVerifyClientCert
	c.ClientCAs = pool
	c.RootCAs = pool
	return c, nil
}

// verifyChain checks the peer's chain against the CA held now, for usage.
func (s *Store) verifyChain(cs tls.ConnectionState, usage x509.ExtKeyUsage, side string) error {
	if len(cs.PeerCertificates) == 0 {
		return newErr(ErrWrongRole, "the %s presented no certificate", side)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.cur.Load().pool, Intermediates: inter,
		CurrentTime: s.opts.now(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return newErr(ErrUnknownCA, "the %s certificate %q is not signed by a CA of %s as reloaded: %v", side, leaf.Subject.CommonName, RootCertFile, err)
	}
	return nil
}

// ReloadFailures returns how many Reloads failed since the Store was made.
func (s *Store) ReloadFailures() uint64 { return s.failures.Load() }

// LastReload returns when the certificates in use were read.
func (s *Store) LastReload() time.Time { return time.Unix(s.lastOK.Load(), 0) }
