package cluster

import "errors"

// Sentinel errors. Errors returned by this package that match one of these
// wrap it; test with errors.Is.
var (
	// ErrClosed: the node has been closed.
	ErrClosed = errors.New("cluster node closed")
	// ErrUnknownSession: Withdraw named a session this member does not know.
	ErrUnknownSession = errors.New("unknown session")
	// ErrEnded: Announce named a session that has ended (a stop, its
	// lifetime): session IDs are never reused.
	ErrEnded = errors.New("session has ended")
	// ErrConfig: a Config field is invalid.
	ErrConfig = errors.New("bad cluster configuration")
	// ErrSharedInvalid: a shared store space or key is not 1 to 64
	// characters of A-Z, a-z, 0-9 and . _ : @ + -.
	ErrSharedInvalid = errors.New("invalid shared store name")
	// ErrSharedLimit: a Put would exceed a bound of the shared store
	// (SharedMaxValue, SharedMaxSpaces, SharedMaxKeys, SharedMaxBytes).
	ErrSharedLimit = errors.New("shared store limit reached")

	// errForeignCA is wrapped by the TLS verification of a peer whose
	// certificate is not signed by the site CA.
	errForeignCA = errors.New("is not signed by this cluster's CA")
)
