package relay

import "errors"

// Errors returned by the protocol readers and the peers.
var (
	ErrBadFrame       = errors.New("malformed frame")
	ErrFrameTooLarge  = errors.New("frame too large")
	ErrBadMedia       = errors.New("malformed media frame")
	ErrVersion        = errors.New("no common protocol version")
	ErrUnexpected     = errors.New("unexpected message")
	ErrRemote         = errors.New("error from peer")
	ErrHeartbeatLost  = errors.New("heartbeats lost")
	ErrNoServer       = errors.New("no server reachable")
	ErrClosed         = errors.New("closed")
	ErrSessionUnknown = errors.New("unknown session")
	// ErrTLSOnPlaintext: the first bytes are a TLS handshake record, on a
	// port that speaks the protocol in plaintext (--insecure). It comes
	// with ErrFrameTooLarge (the record header read as a length).
	ErrTLSOnPlaintext = errors.New("the peer began a TLS handshake on this plaintext port (--insecure here, not on the peer): give the peer --insecure too, or remove --insecure here")
)
