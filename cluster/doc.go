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
// A session belongs to the cluster, not to the member that accepted it.
// Its record is the filter.Session (immutable: ID, agent, endpoints,
// supervisor, request id, requester, Started, Until) plus an owner and a
// version. The owner is the member that refreshes it every
// Config.Refresh. When the owner has not refreshed it for
// Config.SessionTTL (it died, or a partition cut it off), the session is
// not dropped: a live member adopts it, announcing the same session at a
// higher version and refreshing it from then on. The adopter is the member
// with the smallest name among those heard from within the TTL (itself
// included), the silent owner excluded; every other member adopts after a
// second TTL, so a dead chosen adopter costs one TTL more. Concurrent
// adoptions resolve like any takeover: the higher version wins, between
// equal versions the larger name. Every announce carries a version (the
// larger of the wall clock in nanoseconds and one more than any version
// known for the ID), so a client that re-asserts its session on another
// member takes it over too.
//
// A session ends only by an explicit end (Withdraw, End with a reason such
// as ReasonSupervisorGone, decided by smserver), or by its lifetime: when
// the clock passes filter.Session.Until, every member removes it and the
// owner publishes the end (ReasonLifetimeOver). An end leaves a tombstone
// that is terminal: while it lasts (Config.TombstoneTTL, 7 days, at most
// Config.MaxTombstones of them) no announce or refresh of that ID is
// accepted, whatever its version, so a stop made during a partition wins
// when it heals. Session IDs are random and never reused. SubscribeEnds
// tells why each session ended.
//
// When a route to a member comes up (start, restart, a healed partition)
// the node asks that member for a snapshot of everything it knows,
// sessions and tombstones, and merges it, so a restarted member captures
// again without waiting for the next refresh.
//
// # Questions to every member
//
// Gather asks every other member a question of a kind (the audit query
// is one) on the subject "silentmon.<cluster>.gather.<kind>" and collects
// one reply per member, tagged with the member's name, until every member
// heard from within Config.SessionTTL (or with an open route) has answered
// or the timeout passes; HandleGather answers. The members that did not
// answer, and why, come back with the replies, so the caller can say its
// answer is incomplete. A reply is bounded by the bus's maximum payload
// (8 MiB): a larger one is not sent, and the asker learns that it was too
// large.
//
// # Concurrency
//
// A Node is safe for concurrent use. Subscribers are called on one
// goroutine owned by the node, never under its lock and never on a NATS
// callback; a slow subscriber delays later notifications but never the bus,
// and notifications coalesce, so a subscriber always sees the latest set.
package cluster
