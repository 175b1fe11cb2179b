package tls

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
)

// ExplainHandshake turns an error from dialing a TLS server at addr (or
// from the first read, where TLS 1.3 reports a refused client
// certificate) into one sentence saying what is wrong. The result wraps
// the matching sentinel (ErrUnknownCA, ErrExpired, ErrNotYetValid,
// ErrKeyUsage) when there is one, and always err. A nil err stays nil;
// an error that is not about TLS is returned unchanged.
func ExplainHandshake(err error, addr string) error {
	if err == nil {
		return nil
	}
	var (
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		he  x509.HostnameError
		ope *net.OpError
	)
	switch {
	case errors.As(err, &ua):
		issuer := ""
		if ua.Cert != nil {
			issuer = ua.Cert.Issuer.CommonName
		}
		return &explained{newErr(ErrUnknownCA, "the server at %s presents a certificate signed by %q, not by the CA in %s", addr, issuer, RootCertFile), err}
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.Expired:
			if ci.Cert != nil && len(ci.Detail) > 0 && strings.Contains(ci.Detail, "before") {
				return &explained{newErr(ErrNotYetValid, "the certificate of the server at %s is not valid yet (valid from %s)", addr, ci.Cert.NotBefore.UTC().Format("2006-01-02 15:04:05 MST")), err}
			}
			if ci.Cert != nil {
				return &explained{newErr(ErrExpired, "the certificate of the server at %s expired on %s", addr, ci.Cert.NotAfter.UTC().Format("2006-01-02 15:04:05 MST")), err}
			}
			return &explained{newErr(ErrExpired, "the certificate of the server at %s is expired or not yet valid", addr), err}
		case x509.IncompatibleUsage:
			return &explained{newErr(ErrKeyUsage, "the certificate of the server at %s is not for server authentication", addr), err}
		}
		return &explained{fmt.Errorf("the certificate of the server at %s is invalid: %v", addr, ci.Error()), err}
	case errors.As(err, &he):
		var names []string
		if he.Certificate != nil {
			names = append(names, he.Certificate.DNSNames...)
			for _, ip := range he.Certificate.IPAddresses {
				names = append(names, ip.String())
			}
		}
		covers := "no names"
		if len(names) > 0 {
			covers = strings.Join(names, ", ")
		}
		return &explained{fmt.Errorf("the certificate of the server at %s is not valid for %q; it covers %s", addr, he.Host, covers), err}
	case errors.As(err, &ope) && ope.Op == "remote error":
		alert := strings.TrimPrefix(ope.Err.Error(), "tls: ")
		switch alert {
		case "bad certificate", "unknown certificate authority", "certificate required",
			"expired certificate", "unsupported certificate", "certificate revoked", "certificate unknown":
			return &explained{fmt.Errorf("the server at %s refused our client certificate (%s); check %s and the CA in %s", addr, alert, ClientFile, RootCertFile), err}
		}
		return &explained{fmt.Errorf("the server at %s ended the TLS handshake (%s)", addr, alert), err}
	}
	return err
}

// explained carries a one-sentence message and wraps both the sentinel
// and the original error.
type explained struct {
	msg  error
	orig error
}

func (e *explained) Error() string   { return e.msg.Error() }
func (e *explained) Unwrap() []error { return []error{e.msg, e.orig} }
