// Package tls manages silentmon's certificates (CA, requests, signing,
// third-party bundles, loading, in the original product's file layout) and
// builds crypto/tls configurations with mutual authentication and a
// brute-force lockout.
//
// Files: a security directory holds CtiosRootCert.pem (the CA
// certificate), CtiosServer.pem and CtiosClient.pem (certificate, then
// key). CreateCA, CreateRequest, Sign, Bundle and Quickstart write them;
// ServerConfig, ClientConfig and PeerConfig read them and check each
// certificate at load (present, key matches, valid now, signed by the CA,
// right extended key usage), returning one sentence that wraps a sentinel
// of errors.go.
//
// Listening: Listen wraps a TCP listener so that Accept returns only
// connections whose TLS handshake completed with a verified client
// certificate. Handshakes run off the accept goroutine with a deadline;
// a Lockout refuses a source address after repeated failures.
//
// Concurrency: configurations are fresh values owned by the caller; CA,
// Pair and certificates are immutable once loaded; Lockout, Listener and
// Collector are safe for concurrent use. Time is injected through Clock.
//
// It imports no other package of the project.
package tls
