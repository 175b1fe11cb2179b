// Package g722 wraps the G.722 codec of libspandsp (the ITU-T G.722
// wideband codec at 64 kbit/s, bit exact with the ITU reference) through
// cgo.
//
// G.722 codes 16 kHz audio into 8 bits per 16 kHz sample pair: one byte per
// 1/8000 s. Its RTP clock is therefore 8000 Hz although the audio is 16 kHz
// (RFC 3551, section 4.5.2): a 20 ms packet is 160 bytes and advances the
// RTP timestamp by 160. A payload is any whole number of bytes.
//
// A Decoder gives its output at 16000 Hz (the full band) or 8000 Hz
// (spandsp's narrowband mode: the lower sub-band only, 0 to 4 kHz, with no
// resampling: one sample per byte). An Encoder takes 16000 or 8000 Hz
// input the same way.
//
// Without cgo (CGO_ENABLED=0) the package still compiles: Available reports
// false and the constructors return an error wrapping ErrNotBuilt.
//
// Encoders and decoders hold C state; they are not safe for concurrent use
// and must be closed. Encode and Decode do not allocate.
package g722
