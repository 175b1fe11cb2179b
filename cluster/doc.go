// Package cluster is the peer bus between the capture servers of one site
// on port 42029: an embedded NATS server (github.com/nats-io/nats-server/v2)
// with mutual-TLS routes that propagates monitor sessions, and a small
// replicated key-value store (the shared store), to every member.
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
// # Shared store
//
// Besides sessions, the members share a small replicated key-value store
// for state that must be the same on every member whichever one received
// it, such as the agent directory and the CTI bindings: Put, Delete,
// Entries and SubscribeShared. Values live in spaces (at most
// SharedMaxSpaces, each of at most SharedMaxKeys keys); space and key
// names are 1 to 64 characters of A-Z, a-z, 0-9 and . _ : @ + -, a value
// is at most SharedMaxValue (4 MiB) and all values together at most
// SharedMaxBytes. A write beyond these bounds is refused (ErrSharedLimit).
//
// Every member holds the whole store; no member owns an entry, so a value
// outlives the member that wrote it. A write is applied locally and
// published at once on the bus (kind "kv"). The last write wins: each
// write carries a version, the writer's clock in nanoseconds raised above
// any version the writer knew for the key (a hybrid clock, so a write made
// after another was seen wins even against a clock ahead), and between
// equal versions the larger member name wins; members that received the
// same writes in any order hold the same value. Delete leaves a tombstone
// ordered the same way, kept for SharedTombstoneTTL (24 hours; at most
// SharedMaxTombstones per space, the oldest forgotten first), so that an
// older Put arriving late does not bring the key back; a Put older than a
// tombstone already forgotten can. Entries are not refreshed: when a
// route comes up, after the session snapshot, the node fetches the peer's
// whole store, entries and tombstones with their age, in pages of about
// 5 MiB (one entry per page when it is larger), under the bus's 8 MiB
// payload limit. Entries from a peer that are malformed or beyond the
// bounds are dropped and counted (SharedStats, the
// silentmon_cluster_shared_* metrics), never the rest of their message.
//
// The store has its own lock, never held with the session lock; its
// subscribers run each on a goroutine of its own (see SubscribeShared).
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
// A Node is safe for concurrent use. Session subscribers are called on
// one goroutine owned by the node, never under its lock and never on a NATS
// callback; a slow subscriber delays later notifications but never the bus,
// and notifications coalesce, so a subscriber always sees the latest set.
// Shared store subscribers (SubscribeShared) have a goroutine each, owned
// by the node too: never concurrent with itself, never under a lock, with
// coalesced notifications. Close stops and waits for every goroutine of
// the node.
package cluster
