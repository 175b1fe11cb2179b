// Package cluster is the peer bus between the capture servers of one site
// on port 42029: an embedded NATS server (github.com/nats-io/nats-server/v2)
// with mutual-TLS routes that propagates monitor sessions to every member.
//
// # Members and routes
//
// Every capture server runs one [Node]. Its NATS server listens for routes
// on Config.Listen (42029 by default) and dials the seeds in Config.Peers;
// route gossip completes the mesh, so a new member needs one seed. The
// node talks to its own server over an in-process connection. The NATS
// client listener cannot be switched off while routes are on, so it is
// bound to 127.0.0.1 on a random port and requires a random token that
// never leaves the process: nothing off the machine can reach it, and
// nothing on it can publish on the bus. Routes use mutual TLS: a member presents its server certificate
// when a peer dials it and its client certificate (CtiosClient.pem) when it
// dials a peer, and both sides verify the other's chain against the site
// CA. Host names are not compared with the certificate, because route
// gossip addresses members by IP; membership is proven by the CA alone.
//
// # Sessions
//
// A session belongs to the member it was announced on (its owner). The
// owner publishes it at once and then refreshes every owned session every
// Config.Refresh; a member drops a session it has not heard of from its
// owner for Config.SessionTTL. A withdraw may be issued on any member and
// removes the session everywhere at once; a tombstone keeps an old refresh
// from resurrecting it. Every announce carries a version (the larger of the
// owner's wall clock in nanoseconds and one more than any version already
// known for the ID), so a client that re-asserts its session on another
// member after a failover takes the session over, and the old owner, if it
// is still alive, stops refreshing it.
//
// When a route to a member comes up (start, restart, a healed partition)
// the node asks that member for a snapshot of everything it knows,
// sessions and tombstones, and merges it, so a restarted member captures
// again without waiting for the next refresh.
//
// # Concurrency
//
// A Node is safe for concurrent use. Subscribers are called on one
// goroutine owned by the node, never under its lock and never on a NATS
// callback; a slow subscriber delays later notifications but never the bus,
// and notifications coalesce, so a subscriber always sees the latest set.
package cluster
