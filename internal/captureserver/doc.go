// Package captureserver is the engine of smserver, the capture server: the
// capture pipeline (AF_PACKET rings or a replayed capture file, decoding,
// the per-agent filter, RTP stream statistics), the forwarding of each
// monitored session's packets to its supervisor service, the relay
// handler that answers clients on port 42228 (start and stop monitor,
// status, audit queries), the session keeper (lifetimes, supervisors gone,
// capture periods and their audit lines), recordings, and the cluster
// member. cmd/smserver only turns flags and configuration into a Config
// and calls Run.
//
// # Start-up and shutdown
//
// Run builds everything (sources, audit trail, metrics, workers,
// forwarder, cluster node, relay server) before either port serves, so
// nothing is read half set. It returns when its context is done, when the
// replay of a capture file ends (Config.ExitAfterReplay), when a capture
// worker failed for good (restarted up to three times in a row first;
// /healthz answers 503 meanwhile) or when the relay listener fails. Errors
// carry the exit code of internal/cli: 2 for bad configuration, 1 for a
// failure.
//
// # Concurrency
//
// Capture workers read and filter packets on their own goroutines and
// take no lock per packet: the filter is an immutable table swapped
// whole. Relay requests run on the relay server's goroutines; session
// changes are serialised by the server's locks and published to the
// filter. The keeper runs once a second on its own goroutine. Every
// goroutine Run starts ends before Run returns.
package captureserver
