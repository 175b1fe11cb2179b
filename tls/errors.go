package tls

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by this package that matches one of
// these wraps it, so callers test with errors.Is; the message itself is one
// sentence naming the file or value at fault.
var (
	// ErrFileMissing: a security file does not exist.
	ErrFileMissing = errors.New("security file missing")
	// ErrExpired: a certificate's NotAfter is in the past.
	ErrExpired = errors.New("certificate expired")
	// ErrNotYetValid: a certificate's NotBefore is in the future.
	ErrNotYetValid = errors.New("certificate not yet valid")
	// ErrUnknownCA: a certificate is not signed by the CA in CtiosRootCert.pem.
	ErrUnknownCA = errors.New("certificate signed by another CA")
	// ErrKeyUsage: a certificate lacks the extended key usage its role needs.
	ErrKeyUsage = errors.New("wrong key usage")
	// ErrKeyMismatch: a private key does not belong to the certificate.
	ErrKeyMismatch = errors.New("key does not match certificate")
	// ErrKeyPermissions: a private-key file is readable by group or others
	// (refused only with Options.Strict).
	ErrKeyPermissions = errors.New("key file readable by others")
	// ErrBadPEM: a file holds no usable PEM block of the expected kind.
	ErrBadPEM = errors.New("bad PEM content")
	// ErrPasswordLength: a CA password outside 8 to 30 characters.
	ErrPasswordLength = errors.New("password length out of range")
	// ErrWrongPassword: the CA key cannot be decrypted with the password.
	ErrWrongPassword = errors.New("wrong password")
	// ErrExists: a file that would be written already exists.
	ErrExists = errors.New("file exists")
	// ErrLockedOut: the source address is locked out after repeated failed
	// authentications.
	ErrLockedOut = errors.New("source locked out")
	// ErrBadArgument: an argument (role, key algorithm, host, days) is invalid.
	ErrBadArgument = errors.New("bad argument")
	// ErrWrongRole: a certificate does not carry the silentmon role the
	// link or the program needs (or carries none: made before roles).
	ErrWrongRole = errors.New("wrong certificate role")
	// ErrNotTLS: a TLS client reached a server that answered in
	// plaintext (one started with --insecure).
	ErrNotTLS = errors.New("the server does not speak TLS")
	// ErrExpectsTLS: a plaintext client reached a server that closed the
	// connection during the greeting, as a TLS server does.
	ErrExpectsTLS = errors.New("the server expects TLS")
)

// sentinelError is a message that matches a sentinel with errors.Is
// without repeating the sentinel's text.
type sentinelError struct {
	msg      string
	sentinel error
}

func (e *sentinelError) Error() string { return e.msg }
func (e *sentinelError) Unwrap() error { return e.sentinel }

// newErr formats a one-sentence message that wraps sentinel.
func newErr(sentinel error, format string, args ...any) error {
	return &sentinelError{msg: fmt.Sprintf(format, args...), sentinel: sentinel}
}

// Sentinels of the file checks and of the CA password's strength.
var (
	// ErrSymlink: a file to be written is a symbolic link; nothing is
	// written through it.
	ErrSymlink = errors.New("refusing to write through a symbolic link")
	// ErrPasswordWeak: a new CA password is too easy to guess.
	ErrPasswordWeak = errors.New("password too easy to guess")
	// ErrCAKeyOnServer: the CA key or its password file sits in a server's
	// security directory (refused only in strict mode).
	ErrCAKeyOnServer = errors.New("CA key in a server's security directory")
	// ErrWritableByOthers: the security directory or one of its
	// certificate files is writable by group or others (refused only in
	// strict mode).
	ErrWritableByOthers = errors.New("security file writable by others")
)

// Refusals of the Listener, before any TLS (unexported: nothing branches
// on them outside this package; they name the source in logs).
var (
	// errSourceBusy: the source already has as many handshakes in
	// progress as it may.
	errSourceBusy = errors.New("too many handshakes in progress from the source")
	// errTableFull: the lockout's table of sources is full.
	errTableFull = errors.New("lockout table full")
	// errNoClientCertificate: the client completed its part of the
	// handshake without a certificate.
	errNoClientCertificate = errors.New("the client presented no certificate")
)
