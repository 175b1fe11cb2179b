// Package gen writes synthetic VoIP call captures: RTP over UDP over IPv4 or
// IPv6, optionally 802.1Q tagged (and 802.1ad QinQ), as a pcap file with
// Ethernet link type.
//
// A capture is described by a Config: explicit calls (both directions of
// each call, with addresses, VLAN, codec, packet time, start offset,
// duration, audio, SSRCs, start sequence numbers and timestamps, and hold
// intervals) plus impairments (random loss, burst loss, jitter, reordering,
// duplicates) driven by a seed, so that the same Config always produces the
// same bytes. Build produces N calls with distinct addresses for load tests
// and the demo.
//
// The payload is real audio, a tone or caller-supplied PCM samples, encoded
// with the call's codec (G.711 µ-law, A-law, or G.729 when built with cgo),
// so tests can compare what a decoder renders with what went in. Write
// returns, per stream, what it wrote and what it dropped.
//
// # Timing model
//
// Packet k of a direction is due at Call.Start + k×Ptime after Config.Epoch.
// Impairments only ever delay a packet (jitter is uniform in [0, Jitter],
// reordering adds ReorderDelay, a duplicate follows its original after
// DuplicateDelay), and the file is written in non-decreasing capture time
// order, so jitter larger than the packet time also reorders. Lost packets
// consume sequence numbers; hold intervals do not (the phone stops sending,
// then resumes with the next sequence number, a timestamp that reflects the
// elapsed time and the marker bit set).
//
// Frames are built into one reused buffer and streamed to the writer, so
// memory stays proportional to the number of streams, not of packets,
// unless Config.Record asks for the written packets.
package gen
