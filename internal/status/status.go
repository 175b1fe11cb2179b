// Package status holds the JSON a capture server returns to a status
// request, shared by smserver (which fills it) and smctl status (which
// prints it). Fields are only added, never renamed.
package status

import (
	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/relay"
)

// ServerStatus is a capture server's status.
type ServerStatus struct {
	Server      string              `json:"server"`
	Version     int                 `json:"protocol_version"`
	UptimeS     float64             `json:"uptime_s"`
	Source      string              `json:"source"`
	ReplayDone  bool                `json:"replay_done,omitempty"`
	Capture     CaptureStatus       `json:"capture"`
	Sessions    []SessionStatus     `json:"sessions"`
	Supervisors []relay.SenderStats `json:"supervisors"`
	// Kernel sums the capture rings' counters (live capture only).
	Kernel *KernelStatus `json:"kernel,omitempty"`
	// Cluster is the peer bus as this member sees it.
	Cluster *cluster.Status `json:"cluster,omitempty"`
}

type CaptureStatus struct {
	Frames       uint64 `json:"frames"`
	DecodeErrors uint64 `json:"decode_errors"`
	RTP          uint64 `json:"rtp"`
	RTCP         uint64 `json:"rtcp"`
	Matched      uint64 `json:"matched"`
	// Streams is the number of RTP streams tracked; StreamOverflow counts
	// packets of streams beyond the table's cap.
	Streams        int    `json:"streams"`
	StreamOverflow uint64 `json:"stream_overflow"`
}

type SessionStatus struct {
	ID              string         `json:"id"`
	Agent           string         `json:"agent"`
	Endpoints       []string       `json:"endpoints"`
	Supervisor      string         `json:"supervisor"`
	SupervisorState string         `json:"supervisor_state"`
	Packets         uint64         `json:"packets"`
	QueueDrops      uint64         `json:"queue_drops"`
	Streams         []StreamStatus `json:"streams"`
	Owner           string         `json:"owner,omitempty"`
	CapturedBy      []string       `json:"captured_by,omitempty"`
	// Recording is the file a session started with --record is written
	// to on this member, RecordingState "ok" or "failed: " and the reason
	// (the directory is unusable, a write failed): left out for a session
	// not recorded here.
	Recording      string `json:"recording,omitempty"`
	RecordingState string `json:"recording_state,omitempty"`
	// Requester is the subject of the certificate that started the
	// session; Until the end of its lifetime (RFC 3339), if it has one.
	Requester string `json:"requester,omitempty"`
	Until     string `json:"until,omitempty"`
	// WorstMOS is the lowest MOS of the session's streams (0, left out,
	// when none has one): the session's quality at a glance.
	WorstMOS float64 `json:"worst_mos,omitempty"`
	// SRTPUndecryptable counts the packets of the session's streams
	// whose SDP negotiated SRTP without keys this server can use: they
	// are not forwarded (never played as noise). Their streams are
	// listed with Encrypted set.
	SRTPUndecryptable uint64 `json:"srtp_undecryptable,omitempty"`
	// Informed: the session is marked "agent informed" (left out when
	// silent).
	Informed bool `json:"informed,omitempty"`
	// Started is when the session was accepted (RFC 3339, UTC).
	Started string `json:"started,omitempty"`
	// SupervisorError is why this server cannot reach the session's
	// supervisor service (one sentence: the address and the reason, such
	// as a refused connection or a certificate the handshake refused),
	// and SupervisorErrorSince when it became unreachable (RFC 3339,
	// UTC): both left out while the supervisor is connected, or not
	// dialed from this server. The error may be empty during the first
	// attempt.
	SupervisorError      string `json:"supervisor_error,omitempty"`
	SupervisorErrorSince string `json:"supervisor_error_since,omitempty"`
}

type StreamStatus struct {
	SSRC      string `json:"ssrc"`
	Direction string `json:"direction"`
	Src       string `json:"src"`
	Dst       string `json:"dst"`
	VLAN      *int   `json:"vlan"`
	Packets   uint64 `json:"packets"`
	// From the capture's stream table (RFC 3550): the stream as seen on
	// the wire, whether or not it was monitored all along. Lost is the
	// cumulative loss, expected - received (negative with duplicates);
	// LostNet + LostCap = max(Lost, 0), a reordered packet that arrived
	// being lost in neither; LostCap counts what sequence gaps that
	// overlap a kernel drop of the capture may owe to it (no more than
	// the kernel dropped), LostNet the rest.
	Codec      string  `json:"codec,omitempty"`
	Lost       int64   `json:"lost"`
	LostNet    uint64  `json:"lost_network"`
	LostCap    uint64  `json:"lost_in_capture"`
	JitterMs   float64 `json:"jitter_ms"`
	MaxDeltaMs float64 `json:"max_delta_ms"`
	// MOS is the E-model (ITU-T G.107) estimate of the stream's listening
	// quality, 1 to 4.5, from its codec, its network loss and its jitter
	// (internal/quality.StreamMOS: the delay a receiver's jitter buffer
	// adds; the network path's own delay is not visible at the capture
	// point). 0, left out, when the codec is not one the E-model table
	// holds (G.711, G.729) or nothing was expected yet.
	MOS float64 `json:"mos,omitempty"`
	// Encrypted is "srtp-no-keys" for a stream whose SDP negotiated SRTP
	// without keys this server can use (no a=crypto, an unsupported
	// suite, DTLS-SRTP): its packets are counted in Packets but not
	// forwarded. Left out for other streams (plain RTP, and SRTP
	// decrypted with the SDP's SDES keys).
	Encrypted string `json:"encrypted,omitempty"`
}

// KernelStatus sums the capture rings' counters.
type KernelStatus struct {
	Packets     uint64 `json:"packets"`
	Drops       uint64 `json:"drops"`
	FreezeQueue uint64 `json:"freeze_queue"`
}
