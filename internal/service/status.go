package service

// SupervisorStatus is the JSON a supervisor service returns to a status
// request (smctl status prints it). Role is "supervisor". Fields are only
// added, never renamed. Totals cover every session since the start;
// Streams lists the streams of the open sessions (each also under its
// session in Sessions).
type SupervisorStatus struct {
	Role           string          `json:"role"`
	Packets        uint64          `json:"packets"`
	Duplicates     uint64          `json:"duplicates"`
	Rejected       uint64          `json:"rejected"`
	SecondsWritten float64         `json:"seconds_written"`
	DeliveryMs     float64         `json:"max_delivery_ms"`
	Streams        []PlayoutStream `json:"streams"`

	// Output is the output spec: portaudio[:DEVICE], wav:PATH or null.
	Output string `json:"output"`
	// Playing is the session the device plays (portaudio only).
	Playing string `json:"playing,omitempty"`
	// MaxSessions bounds the open sessions; RefusedPackets counts the
	// packets of sessions refused at that bound, BadSessionIDs the media
	// frames and session notices dropped for an invalid session id,
	// Unauthorized the connections refused for sending media or notices
	// without the capture role.
	MaxSessions    int    `json:"max_sessions"`
	SessionsOpened uint64 `json:"sessions_opened"`
	RefusedPackets uint64 `json:"refused_packets"`
	BadSessionIDs  uint64 `json:"bad_session_ids"`
	Unauthorized   uint64 `json:"unauthorized"`
	// Sessions lists the open sessions, most recently started first,
	// then the most recently closed ones (a bounded history).
	Sessions []SupervisorSession `json:"sessions"`
}

// SupervisorSession is one monitored session of a supervisor service.
type SupervisorSession struct {
	ID    string `json:"id"`
	Agent string `json:"agent"`
	// State is "open" or "closed"; Closed says why it closed ("stopped",
	// "idle", "shutdown").
	State  string `json:"state"`
	Closed string `json:"closed_reason,omitempty"`
	// Output is the WAV file written, "null", or the device spec;
	// OutputError says why the file could not be created (the session
	// then plays to a null sink).
	Output      string `json:"output"`
	OutputError string `json:"output_error,omitempty"`
	// Playing is true for the session the device plays (portaudio).
	Playing        bool     `json:"playing"`
	Servers        []string `json:"capture_servers"`
	Started        string   `json:"started"` // RFC 3339
	IdleS          float64  `json:"idle_s"`
	SecondsWritten float64  `json:"seconds_written"`
	// SecondsPlayed is what reached the device (portaudio only).
	SecondsPlayed     float64         `json:"seconds_played,omitempty"`
	TargetMs          float64         `json:"target_ms"`
	AddedLatencyP50Ms float64         `json:"added_latency_p50_ms"`
	AddedLatencyP99Ms float64         `json:"added_latency_p99_ms"`
	DeliveryMs        float64         `json:"max_delivery_ms"`
	WorstMOS          float64         `json:"worst_mos"`
	Packets           uint64          `json:"packets"`
	Streams           []PlayoutStream `json:"streams"`
}

// PlayoutStream is one RTP stream being played (direction, flow, SSRC).
type PlayoutStream struct {
	Session   string `json:"session,omitempty"`
	Direction string `json:"direction"`
	Src       string `json:"src,omitempty"`
	Dst       string `json:"dst,omitempty"`
	VLAN      uint16 `json:"vlan,omitempty"`
	SSRC      string `json:"ssrc"`
	Codec     string `json:"codec"`
	Active    bool   `json:"active"`
	Packets   uint64 `json:"packets"`
	Lost      uint64 `json:"lost"`
	Late      uint64 `json:"late"`
	Concealed uint64 `json:"concealed"`
	// Slips and Stretches are the frames skipped or inserted to keep
	// the delay at target (clock drift, jitter).
	Slips     uint64  `json:"slips"`
	Stretches uint64  `json:"stretches"`
	JitterMs  float64 `json:"jitter_ms"`
	TargetMs  float64 `json:"target_ms"`
	MOS       float64 `json:"mos"`
}
