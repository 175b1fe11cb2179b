// Package siptrack follows SIP signalling and its SDP offers and answers,
// as seen on the SPAN port, so that a monitor session can be given by
// agent or extension instead of by endpoint addresses.
//
// A Tracker reads SIP over UDP and over TCP (messages split across
// segments and several messages in one segment are reassembled with
// Content-Length). It learns registrations (extension to contact address:
// REGISTER and its 200 OK) and calls, matched by Call-ID: INVITE,
// provisional and final responses, ACK, BYE, CANCEL, re-INVITE (hold and
// resume), UPDATE, PRACK and REFER, with each party's media from its SDP
// (addresses and ports, payload types with their rtpmap names, direction,
// SDES crypto lines). MediaOf then gives the media addresses of a user's
// calls, both parties, which is what the capture server's filter matches.
//
// SIP messages are parsed with github.com/emiago/sipgo/sip and SDP with
// github.com/pion/sdp/v3; multipart bodies with the standard library.
// SIP over TLS cannot be read. Messages whose URIs carry IPv6 addresses
// without brackets (which RFC 3261 forbids but some phones send) are
// refused by the SIP parser and counted as malformed. pion/sdp refuses
// media types and transports it does not know; T.38 lines
// ("m=image 4002 udptl t38") are presented to it as "application ... UDP"
// and their type and transport put back.
//
// # Time
//
// The tracker has no clock of its own: Packet carries the capture time of
// each message and Expire the current time, so a replayed capture and a
// test advance time as they please.
//
// # Limits
//
// Every table is bounded (Config): calls (ended calls are dropped oldest
// first when full, then new calls are refused and counted), registrations
// and pending REGISTER transactions (new ones refused and counted), TCP
// flows (the least recently used flow is dropped when full) and each TCP
// flow's reassembly buffer (a flow over its bound is reset and counted).
// A malformed message is counted in Stats and ignored, never a panic.
//
// # Concurrency
//
// A Tracker is safe for concurrent use. Packet, TCPSegment and Expire
// serialise on the tracker's lock; the segments of one TCP flow must be
// given in order, so in practice one goroutine feeds a Tracker. Snapshot,
// MediaOf and Stats may be called from any goroutine: they return an
// immutable view published with an atomic pointer; the first call after a
// change builds that view, taking the lock only to collect the (immutable)
// records. OnChange runs on the goroutine that called Packet or Expire,
// after the lock is released.
package siptrack
