package gen

import "errors"

// Errors returned by Write and Build. They are wrapped with the offending
// value; test with errors.Is.
var (
	// ErrBadCall means a call description is invalid (addresses, VLAN,
	// packet time, duration, hold intervals).
	ErrBadCall = errors.New("invalid call")
	// ErrBadImpairment means an impairment rate is outside [0, 1] or a delay
	// is negative.
	ErrBadImpairment = errors.New("invalid impairment")
	// ErrCodecUnavailable means the codec cannot be encoded in this build
	// (G.729 without cgo and bcg729).
	ErrCodecUnavailable = errors.New("codec not available in this build")
	// ErrBadWAV means a WAV file is not 16-bit PCM mono at 8 kHz.
	ErrBadWAV = errors.New("unsupported WAV file")
	// ErrUnknownScenario means a scenario name is not one of
	// ScenarioNames.
	ErrUnknownScenario = errors.New("unknown scenario")
)
