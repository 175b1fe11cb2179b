// Package filter decides which captured packets belong to which monitor
// session. A session names an agent and the endpoints that carry the agent's
// voice (phone IP or MAC, or a voice-gateway IP with an RTP port range); a
// packet to or from one of them is labelled with its direction. The table is
// immutable and published atomically, so the packet path takes no lock.
package filter
