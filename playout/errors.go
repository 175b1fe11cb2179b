package playout

import "errors"

// Sentinel errors. Callers test them with errors.Is; the returned errors
// wrap them with the offending value.
var (
	// ErrBadSinkSpec is returned by OpenSink for a spec it does not know.
	ErrBadSinkSpec = errors.New("bad output spec")
	// ErrPortAudioNotBuilt is returned when PortAudio is asked for in a
	// build without cgo (or built with the noportaudio tag).
	ErrPortAudioNotBuilt = errors.New("PortAudio is not built into this binary (it needs cgo and portaudio19-dev)")
	// ErrG729NotBuilt is reported when a G.729 stream arrives in a build
	// without cgo (or without libbcg729-dev).
	ErrG729NotBuilt = errors.New("G.729 is not built into this binary (it needs cgo and libbcg729-dev)")
	// ErrClosed is returned by a Sink or Player used after Close.
	ErrClosed = errors.New("closed")
	// ErrNotRTP is returned for a packet that is not RTP version 2.
	ErrNotRTP = errors.New("not an RTP version 2 packet")
	// ErrShortRTP is returned for an RTP packet shorter than its header.
	ErrShortRTP = errors.New("RTP packet shorter than its header")
	// ErrBadDirection is returned for a direction other than FromAgent
	// and ToAgent.
	ErrBadDirection = errors.New("bad direction")
	// ErrSampleRate is returned for an output rate other than 8000,
	// 16000 and 48000 Hz.
	ErrSampleRate = errors.New("unsupported sample rate")
)
