package tls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
)

// ExplainHandshake turns an error from dialing a TLS server at addr (or
// from the first read, where TLS 1.3 reports a refused client
// certificate) into one sentence saying what is wrong. The result wraps
// the matching sentinel (ErrUnknownCA, ErrExpired, ErrNotYetValid,
// ErrKeyUsage, ErrNotTLS) when there is one, and always err. A server
// that answers in plaintext (started with --insecure) is ErrNotTLS. An
// error that holds an explained one (from ExplainHandshake or
// ExplainPlaintext, wrapped further) gives that one back. A nil err stays
// nil; an error that is not about TLS is returned unchanged.
func ExplainHandshake(err error, addr string) error {
	if err == nil {
		return nil
	}
	var (
		ex  *explained
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		he  x509.HostnameError
		rh  tls.RecordHeaderError
		ope *net.OpError
	)
	switch {
	case errors.As(err, &ex):
		return ex
	case errors.As(err, &rh):
		return &explained{newErr(ErrNotTLS, "the server at %s does not speak TLS (started with --insecure?): give --insecure to talk to it in plaintext", addr), err}
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

// ExplainPlaintext turns an error from the greeting of a plaintext
// connection to addr (a client given --insecure) into one sentence: a
// server that closed the connection (end of file, reset) before
// answering expects TLS, and the result wraps ErrExpectsTLS and err. Any
// other error, and nil, is returned unchanged.
func ExplainPlaintext(err error, addr string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return &explained{newErr(ErrExpectsTLS, "the server at %s closed the connection during the greeting: it expects TLS; leave out --insecure", addr), err}
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
