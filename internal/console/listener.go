package console

import "context"

// Listener answers a browser's offer for a session's audio. The webrtcout
// package implements it. Implementations are safe for concurrent use.
type Listener interface {
	// Answer returns the SDP answer to offer; the peer connection sends
	// the session's audio (Opus at the session's rate when the offer has
	// Opus, else PCMU 8 kHz; 20 ms packets: two tracks, the
	// agent's and the customer's, to an offer with two audio
	// transceivers, else both directions mixed on one) until the browser
	// closes it, the session ends, or Close.
	Answer(ctx context.Context, session, offer string) (answer string, err error)
	// Levels returns the current level per direction of each session
	// being played, in dBFS (-120 for silence).
	Levels() map[string]Levels
	Close() error
}

// Levels is a session's level per direction, in dBFS (-120 for silence).
type Levels struct {
	Agent, Customer float64
}

// Silence is the level reported for a direction without sound.
const Silence = -120.0
