// Package opus wraps libopus (RFC 6716) through cgo: a mono decoder at a
// chosen output rate with loss concealment and in-band forward error
// correction, and an encoder for tests and the call generator.
//
// Opus on RTP (RFC 7587) always has a 48000 Hz RTP clock, whatever the
// audio bandwidth: a 20 ms packet advances the timestamp by 960. A decoder
// may run at 8000, 12000, 16000, 24000 or 48000 Hz and libopus gives that
// rate directly, so a narrowband mixer needs no resampler for Opus.
//
// PacketSamples reads the packet's table of contents (pure Go, also in
// builds without cgo).
//
// Without cgo (CGO_ENABLED=0) the package still compiles: Available reports
// false and the constructors return an error wrapping ErrNotBuilt.
//
// Encoders and decoders hold C state; they are not safe for concurrent use
// and must be closed. Encode and the Decode methods do not allocate.
package opus
