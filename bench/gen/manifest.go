package gen

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Leg directions in a Manifest, seen from the phone of the leg's agent.
const (
	FromAgent = "from-agent" // the agent's phone sends it
	ToAgent   = "to-agent"   // the agent's phone receives it
	// NoAgent is a stream that reaches no agent's phone (music on hold to
	// the customer's gateway, a conference bridge's mix to the customer).
	NoAgent = "other"
)

// Manifest says, for a scenario capture, who is monitored, which voice
// (tone) is on which RTP stream and when, and what the generator did to
// each stream. It is written as JSON next to the capture; see the package
// documentation for the format. A Manifest is not safe for concurrent
// modification; reading it concurrently is safe.
type Manifest struct {
	Scenario    string `json:"scenario"`
	Description string `json:"description"`
	// Epoch is the capture time of offset 0 (RFC 3339 with nanoseconds).
	Epoch time.Time `json:"epoch"`
	// DurationMS is the scenario's length from the epoch.
	DurationMS int64            `json:"duration_ms"`
	Monitored  []MonitoredAgent `json:"monitored"`
	Legs       []Leg            `json:"legs"`
	// Other lists the non-RTP UDP traffic in the capture.
	Other []OtherFlow `json:"other"`
	// Expected maps a leg's name to what the generator wrote for its
	// stream; legs that share a stream (a conference bridge's mix) have
	// equal counts.
	Expected map[string]StreamCounts `json:"expected"`
	// SIP is the signalling written into the capture, nil when the
	// capture has none.
	SIP *SIPInfo `json:"sip,omitempty"`
}

// MonitoredAgent is an agent whose session the scenario monitors, with the
// endpoints to give smctl monitor start (IP, IP:PORT-RANGE, MAC, each
// optionally prefixed with vlanN/). In a scenario where only SIP tells
// the agent's media apart (a mobile agent behind a shared gateway, a
// softphone whose address changes), Endpoints is empty: the agent's id
// alone must find its calls.
type MonitoredAgent struct {
	Agent     string   `json:"agent"`
	Endpoints []string `json:"endpoints"`
}

// Leg is one voice on one RTP stream: a tone of its own sent by Src to Dst
// during the Active spans. A stream normally carries one leg; a
// conference bridge's mix carries one leg per mixed voice, all with the
// same SSRC and addresses.
type Leg struct {
	// Agent is the agent whose phone sends or receives the stream, "" for
	// none.
	Agent string `json:"agent"`
	// Name is unique within the manifest.
	Name string `json:"name"`
	// Direction is FromAgent, ToAgent or NoAgent.
	Direction string  `json:"direction"`
	ToneHz    float64 `json:"tone_hz"`
	// Amplitude is the tone's peak in 16-bit sample units.
	Amplitude int     `json:"amplitude"`
	SSRC      string  `json:"ssrc"`
	Src       string  `json:"src"`
	Dst       string  `json:"dst"`
	VLAN      *uint16 `json:"vlan"`
	// Active spans, in milliseconds from the epoch, during which the
	// voice is sent; outside them the stream is held, not sent or silent.
	Active []Span `json:"active"`
	// Lost spans are the packet times of packets the generator dropped.
	Lost []Span `json:"lost,omitempty"`
	// Events are the packet times in which the phone sent a DTMF digit
	// as RFC 4733 telephone events instead of the voice, as phones do.
	// They are not in Active: the voice is not sent there, and a session
	// plays them as silence (not as concealment of lost voice).
	Events []Span `json:"events,omitempty"`
	// Monitored says whether the leg must be heard in its agent's
	// monitoring session (when that agent is monitored). False for legs
	// that do not belong to the agent's session, such as a call after it
	// was transferred away.
	Monitored bool   `json:"monitored"`
	Codec     string `json:"codec"`
	// CallID is the SIP Call-ID of the dialog whose SDP describes the
	// stream, when the capture has SIP and the stream is signalled.
	CallID string `json:"call_id,omitempty"`
	// SRTP is set when the stream is SRTP-encrypted.
	SRTP *LegSRTP `json:"srtp,omitempty"`

	stream int // index in Result.Streams
}

// Span is a time interval in milliseconds from the manifest's epoch, From
// inclusive, To exclusive.
type Span struct {
	FromMS int64 `json:"from_ms"`
	ToMS   int64 `json:"to_ms"`
}

func (s Span) from() time.Duration { return time.Duration(s.FromMS) * time.Millisecond }
func (s Span) to() time.Duration   { return time.Duration(s.ToMS) * time.Millisecond }

// StreamCounts is what the generator wrote for one stream. Packets counts
// frames written (duplicates included, as smctl analyze counts them);
// Sent counts sequence numbers used; Lost counts packets dropped, so the
// RFC 3550 cumulative loss a receiver computes is Lost − Duplicates.
type StreamCounts struct {
	Packets    int `json:"packets"`
	Sent       int `json:"sent"`
	Lost       int `json:"lost"`
	Reordered  int `json:"reordered"`
	Duplicates int `json:"duplicates"`
}

// OtherFlow is non-RTP UDP traffic in the capture, one entry per
// direction.
type OtherFlow struct {
	Protocol string  `json:"protocol"` // dns, nbns
	Src      string  `json:"src"`
	Dst      string  `json:"dst"`
	VLAN     *uint16 `json:"vlan"`
	Packets  int     `json:"packets"`
}

// WriteJSON writes m as indented JSON.
func (m *Manifest) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// ReadManifest reads a manifest written by WriteJSON.
func ReadManifest(r io.Reader) (*Manifest, error) {
	var m Manifest
	if err := json.NewDecoder(r).Decode(&m); err != nil {
		return nil, fmt.Errorf("reading scenario manifest: %w", err)
	}
	if m.Scenario == "" || len(m.Legs) == 0 {
		return nil, fmt.Errorf("reading scenario manifest: no scenario name or no legs")
	}
	return &m, nil
}

// IsMonitored reports whether agent is among the monitored agents.
func (m *Manifest) IsMonitored(agent string) bool {
	for _, a := range m.Monitored {
		if a.Agent == agent {
			return true
		}
	}
	return false
}
