package service

// SupervisorStatus is the JSON a supervisor service returns to a status
// request (smctl status prints it). Role is "supervisor". Fields are only
// added, never renamed.
type SupervisorStatus struct {
	Role           string          `json:"role"`
	Packets        uint64          `json:"packets"`
	Duplicates     uint64          `json:"duplicates"`
	Rejected       uint64          `json:"rejected"`
	SecondsWritten float64         `json:"seconds_written"`
	DeliveryMs     float64         `json:"max_delivery_ms"`
	Streams        []PlayoutStream `json:"streams"`
}

// PlayoutStream is one direction being played.
type PlayoutStream struct {
	Direction string  `json:"direction"`
	SSRC      string  `json:"ssrc"`
	Codec     string  `json:"codec"`
	Packets   uint64  `json:"packets"`
	Lost      uint64  `json:"lost"`
	Late      uint64  `json:"late"`
	Concealed uint64  `json:"concealed"`
	JitterMs  float64 `json:"jitter_ms"`
	TargetMs  float64 `json:"target_ms"`
	MOS       float64 `json:"mos"`
}
