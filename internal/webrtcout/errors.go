package webrtcout

import "errors"

// Errors of Answer, tested with errors.Is.
var (
	// ErrTooManyListeners: the Server plays to Config.MaxListeners
	// browsers already.
	ErrTooManyListeners = errors.New("too many listeners")
	// ErrSessionFull: the session plays to Config.MaxPerSession browsers
	// already.
	ErrSessionFull = errors.New("too many listeners of the session")
	// ErrBadOffer: the offer is not an SDP offer this Server can answer
	// (no audio, neither Opus nor PCMU).
	ErrBadOffer = errors.New("bad offer")
	// ErrNotPlaying: the session is not playing here (it never received
	// media within Config.SessionWait, or it ended).
	ErrNotPlaying = errors.New("session not playing")
)
