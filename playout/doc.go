// Package playout turns the RTP of a monitored session into sound: a
// jitter buffer per stream; G.711, G.729/A/B, G.722 and Opus decoding with
// loss concealment (and Opus's forward error correction); telephone events
// (RFC 4733 digits) read to be shown, never played; mixing of both
// directions at the session's rate (8, 16 or 48 kHz); and sinks (PortAudio
// device, WAV file, null). docs/playout.md describes it.
//
// It needs nothing of the capture side: it consumes RTP packets and their
// arrival times.
package playout
