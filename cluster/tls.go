package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"

	smtls "github.com/silentmon/silentmon/tls"
)

// routeTLS builds the TLS configuration of the routes from the capture
// server's server-side and client-side configurations.
//
// The one configuration serves both ends, because the embedded server uses
// it for the routes it accepts and (cloned) for the ones it dials:
//   - accepting, it presents the server certificate and requires a client
//     certificate whose chain, with client-auth usage, leads to the CA;
//   - dialing, it presents the client certificate and requires a server
//     certificate whose chain, with server-auth usage, leads to the CA.
//
// Host names are not checked (InsecureSkipVerify only disables Go's
// built-in verification, which would compare them); VerifyConnection does
// the chain verification itself, so that a peer from another CA is refused
// with an error that says so.
//
// Both ends must carry the peer role (smtls.RolePeer, with server and
// client authentication usages): a client, supervisor or capture-server
// certificate of the same CA is refused, and refused is reported to
// refused (accepting side: with the remote address) when it is not nil.
func routeTLS(server, client *tls.Config, refused func(remote, subject string, err error)) (*tls.Config, error) {
	if server == nil {
		return nil, fmt.Errorf("%w: no TLS configuration for routes", ErrConfig)
	}
	pool := server.ClientCAs
	if pool == nil {
		pool = server.RootCAs
	}
	if pool == nil && client != nil {
		pool = client.RootCAs
	}
	if pool == nil {
		return nil, fmt.Errorf("%w: the route TLS configuration has no CA (ClientCAs or RootCAs)", ErrConfig)
	}
	if len(server.Certificates) == 0 && server.GetCertificate == nil {
		return nil, fmt.Errorf("%w: the route TLS configuration has no server certificate", ErrConfig)
	}
	var clientCert *tls.Certificate
	switch {
	case client != nil && len(client.Certificates) > 0:
		clientCert = &client.Certificates[0]
	case len(server.Certificates) > 0:
		clientCert = &server.Certificates[0]
	}
	var getClientCert func(*tls.CertificateRequestInfo) (*tls.Certificate, error)
	switch {
	case client != nil && client.GetClientCertificate != nil:
		getClientCert = client.GetClientCertificate
	case client == nil && server.GetClientCertificate != nil:
		// One configuration for both ends (the tls package's PeerConfig).
		getClientCert = server.GetClientCertificate
	case clientCert != nil:
		getClientCert = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return clientCert, nil }
	default:
		return nil, fmt.Errorf("%w: the route TLS configuration has no client certificate", ErrConfig)
	}
	minVer := server.MinVersion
	if minVer < tls.VersionTLS12 {
		minVer = tls.VersionTLS12
	}

	accept := &tls.Config{
		MinVersion:     minVer,
		Certificates:   server.Certificates,
		GetCertificate: server.GetCertificate,
		ClientAuth:     tls.RequireAnyClientCert,
	}
	return &tls.Config{
		MinVersion:           minVer,
		Certificates:         server.Certificates,
		GetCertificate:       server.GetCertificate,
		ClientAuth:           tls.RequireAnyClientCert,
		GetClientCertificate: getClientCert,
		InsecureSkipVerify:   true, // replaced by VerifyConnection: chain, not host name
		VerifyConnection:     verifyPeer(pool, x509.ExtKeyUsageServerAuth, "", refused),
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c := accept.Clone()
			remote := ""
			if hello.Conn != nil {
				remote = hello.Conn.RemoteAddr().String()
			}
			c.VerifyConnection = verifyPeer(pool, x509.ExtKeyUsageClientAuth, remote, refused)
			return c, nil
		},
	}, nil
}

// verifyPeer returns a VerifyConnection callback checking the peer's chain
// against pool for the given usage, and its peer role. remote is the
// peer's address when known.
func verifyPeer(pool *x509.CertPool, usage x509.ExtKeyUsage, remote string, refused func(remote, subject string, err error)) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		err := checkRoute(pool, usage, cs)
		if err != nil && refused != nil {
			subject := ""
			if len(cs.PeerCertificates) > 0 {
				subject = cs.PeerCertificates[0].Subject.String()
			}
			refused(remote, subject, err)
		}
		return err
	}
}

func checkRoute(pool *x509.CertPool, usage x509.ExtKeyUsage, cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("peer presented no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots:         pool,
		Intermediates: inter,
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			return fmt.Errorf("peer certificate %q (issuer %q) %w", leaf.Subject.String(), leaf.Issuer.String(), errForeignCA)
		}
		return fmt.Errorf("peer certificate %q refused: %v", leaf.Subject.String(), err)
	}
	if _, err := smtls.CheckRole(leaf, "the route's certificate", smtls.RolePeer); err != nil {
		return err // one sentence: the certificate, its roles, the role wanted
	}
	return nil
}
