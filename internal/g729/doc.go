// Package g729 wraps the bcg729 library (G.729 annex A decoder and encoder,
// with annex B VAD/DTX and comfort noise) through cgo.
//
// A G.729 frame is 10 ms: 80 samples of 16-bit PCM at 8 kHz encode to 10
// bytes. With VAD enabled the encoder may instead return a 2-byte SID
// (silence insertion descriptor) frame or nothing at all (no transmission).
// An RTP payload of payload type 18 carries zero or more 10-byte frames
// optionally followed by one 2-byte SID frame (RFC 3551, section 4.5.6);
// DecodePayload splits it.
//
// Without cgo (CGO_ENABLED=0) the package still compiles: Available reports
// false and the constructors return an error wrapping ErrNotBuilt.
//
// Encoders and decoders hold C state; they are not safe for concurrent use
// and must be closed. Encode and Decode do not allocate.
package g729
