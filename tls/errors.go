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
