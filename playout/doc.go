// Package playout turns the RTP of a monitored session into sound: a
// jitter buffer per stream, G.711 and G.729 decoding with loss concealment,
// mixing of both directions, and sinks (PortAudio device, WAV file, null).
//
// It needs nothing of the capture side: it consumes RTP packets and their
// arrival times.
package playout
