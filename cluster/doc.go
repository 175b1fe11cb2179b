// Package cluster is the peer bus between the capture servers of one site
// on port 42029: an embedded NATS server with mutual-TLS routes that
// propagates monitor sessions to every member.
package cluster
