// Package tls manages silentmon's certificates (CA, requests, signing,
// third-party bundles, loading, in the original product's file layout) and
// builds crypto/tls configurations with mutual authentication and a
// brute-force lockout.
//
// It imports no other package of the project.
package tls
