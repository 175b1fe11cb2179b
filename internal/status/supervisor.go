package status

import "github.com/silentmon/silentmon/internal/service"

// SupervisorStatus is the JSON a supervisor service returns to a status
// request: service.SupervisorStatus with, per session, the digits its
// calls sent and, per stream, whether this build can play its codec.
// Fields are only added, never renamed: the fields below replace the
// embedded ones of the same JSON name with a superset of them.
type SupervisorStatus struct {
	service.SupervisorStatus
	Streams  []PlayoutStream     `json:"streams"`
	Sessions []SupervisorSession `json:"sessions"`
	// Unsupported counts, over every session since start, the streams
	// whose codec this build cannot play, by codec (the SDP name,
	// normalised as in the metrics); left out when none.
	Unsupported map[string]uint64 `json:"unsupported_streams,omitempty"`
}

// SupervisorSession is service.SupervisorSession with the session's
// digits.
type SupervisorSession struct {
	service.SupervisorSession
	Streams []PlayoutStream `json:"streams"`
	// Digits are the last telephone events (RFC 4733) the session's
	// calls sent, both directions in order of arrival, at most
	// MaxDigits of them: 0-9, *, #, A-D, and ! for a hook flash. Left
	// out when none.
	Digits string `json:"digits,omitempty"`
}

// MaxDigits bounds SupervisorSession.Digits.
const MaxDigits = 32

// PlayoutStream is service.PlayoutStream with whether it can be played.
type PlayoutStream struct {
	service.PlayoutStream
	// Supported is false for a stream whose codec this build cannot
	// play (iLBC, AMR, a codec whose library is left out, a dynamic
	// payload type that neither the SDP nor --codec maps): Codec then
	// names it ("iLBC", or "payload type 96" when unmapped) and its
	// packets are dropped. A supervisor service always sends it; nil
	// (an older service) means supported.
	Supported *bool `json:"supported,omitempty"`
}

// Playable reports whether the stream's codec can be played (Supported
// is nil or true).
func (p PlayoutStream) Playable() bool { return p.Supported == nil || *p.Supported }

// Digit is one telephone event of a monitored call, as the supervisor's
// event stream sends it.
type Digit struct {
	// Seq numbers the digits a supervisor service saw, from 1.
	Seq     uint64 `json:"seq"`
	Session string `json:"session"`
	Agent   string `json:"agent"`
	// Direction is "from-agent" or "to-agent" (as in streams).
	Direction string `json:"direction"`
	Digit     string `json:"digit"`
	// Time is the capture time of the event's first packet seen
	// (RFC 3339, UTC, with fractions).
	Time string `json:"time"`
}
