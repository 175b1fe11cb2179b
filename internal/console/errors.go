package console

import "errors"

var (
	// ErrPlainOffLoopback: plain HTTP was asked for on an address that is
	// not loopback; the console must be HTTPS there.
	ErrPlainOffLoopback = errors.New("the console serves plain HTTP only on a loopback address")
	// ErrConfig: a Config lacks what the console needs.
	ErrConfig = errors.New("bad console configuration")
	// errNoCapture: no capture server is configured.
	errNoCapture = errors.New("no capture server configured")
)
