package relay

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Roles announced in a hello.
const (
	RoleClient     = "client"     // smctl, a supervisor desktop, a CTI integration
	RoleCapture    = "capture"    // a capture server pushing media
	RoleServer     = "server"     // a capture server answering a client
	RoleSupervisor = "supervisor" // a supervisor service receiving media
)

// Hello opens every connection, in both directions. The dialer lists the
// versions it speaks; the listener answers with the one it chose.
type Hello struct {
	Versions []int  `json:"versions,omitempty"`
	Version  int    `json:"version,omitempty"`
	Role     string `json:"role"`
	Name     string `json:"name,omitempty"`
	// Features lists the optional messages the sender accepts within
	// the version: FeatureSessions. A sender must not send an optional
	// message its peer did not list.
	Features []string `json:"features,omitempty"`
}

// FeatureSessions, listed in a supervisor service's hello, says that it
// takes session notices (MsgSession).
const FeatureSessions = "sessions"

// FeatureAudit, listed in a capture server's hello, says that it answers
// audit queries (MsgAuditQuery).
const FeatureAudit = "audit"

// FeatureStatusParts, listed in a client's hello, says that it takes a
// status too large for one frame in parts (MsgStatusPart).
const FeatureStatusParts = "status-parts"

// HasFeature reports whether h lists feature.
func (h *Hello) HasFeature(feature string) bool {
	for _, f := range h.Features {
		if f == feature {
			return true
		}
	}
	return false
}

// StartMonitor asks a capture server to monitor an agent.
//
// RequestID matches the reply to the request on one connection.
// IdempotencyKey, chosen once per logical request by the client (128
// random bits in hex, NewIdempotencyKey), makes the request safe to send
// again after a broken socket, on the same or another server: a start
// whose key is already the RequestID of a session the same requester made
// returns that session instead of making another. Retry is set when the
// client sent the same request before on a connection that broke.
//
// Session is empty for a new session: the server chooses the id. It is
// set only when a client re-asserts a session it started (after a
// failover); the server refuses an id that does not exist
// (CodeUnknown) or that another identity started (CodeUnauthorized).
//
// ForMS, when not zero, is the session's lifetime in milliseconds (at
// most MaxLifetime); the session ends by itself that long after the
// accepting server took it.
type StartMonitor struct {
	RequestID      uint64   `json:"request_id"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	Retry          bool     `json:"retry,omitempty"`
	Session        string   `json:"session,omitempty"`
	Agent          string   `json:"agent"`
	Endpoints      []string `json:"endpoints"`
	Supervisor     string   `json:"supervisor"`
	Record         bool     `json:"record,omitempty"`
	ForMS          int64    `json:"for_ms,omitempty"`
	// Extensions name the agent's telephone extensions (SIP user parts):
	// the capture servers find its calls from SIP. Wait accepts a start
	// for an agent nothing is known about yet (its next call is
	// captured).
	Extensions []string `json:"extensions,omitempty"`
	Wait       bool     `json:"wait,omitempty"`
	// InformAgent marks the session "agent informed": the agent may be
	// told it is monitored (agent events, status). A session without it
	// is silent and never disclosed to watchers.
	InformAgent bool `json:"inform_agent,omitempty"`
}

// MaxLifetime bounds StartMonitor.ForMS.
const MaxLifetime = 30 * 24 * time.Hour

// StopMonitor ends a session. Retry is set when the client sent the same
// request before on a connection that broke: the session may already be
// stopped, by that first attempt.
type StopMonitor struct {
	RequestID uint64 `json:"request_id"`
	Session   string `json:"session"`
	Retry     bool   `json:"retry,omitempty"`
}

// NewIdempotencyKey returns 128 random bits in hex (32 characters), for
// StartMonitor.IdempotencyKey.
func NewIdempotencyKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SessionStatus answers StartMonitor and StopMonitor.
type SessionStatus struct {
	RequestID  uint64   `json:"request_id"`
	Session    string   `json:"session"`
	State      string   `json:"state"` // "started" or "stopped"
	Agent      string   `json:"agent,omitempty"`
	Endpoints  []string `json:"endpoints,omitempty"`
	Supervisor string   `json:"supervisor,omitempty"`
	Server     string   `json:"server,omitempty"`
	// Until is the end of the session's lifetime (RFC 3339), when it has
	// one.
	Until string `json:"until,omitempty"`
	// AlreadyStopped is set by the server (or by Client.StopMonitor) when
	// a stop sent again after a broken connection found the session
	// stopped by its first attempt.
	AlreadyStopped bool `json:"already_stopped,omitempty"`
	// Informed is set when the session is marked "agent informed"
	// (StartMonitor.InformAgent).
	Informed bool `json:"informed,omitempty"`
}

// Session states, in SessionStatus and SessionNotice. SessionCodecs is
// only in a SessionNotice.
const (
	SessionStarted = "started"
	SessionStopped = "stopped"
	SessionCodecs  = "codecs"
)

// SessionNotice tells a supervisor service about a session a capture
// server pushes to it: State SessionStarted before the session's first
// media on a connection, SessionStopped when the session ended or left the
// capture server (after its last media), SessionCodecs before the media
// that follows a change of PayloadTypes. Only a peer whose hello role is
// RoleCapture sends it, and only to a supervisor that listed
// FeatureSessions. Server is the sending capture server's name.
//
// PayloadTypes, in a started or codecs notice, maps the RTP payload types
// of the session's current calls to their encodings as the calls' SDP
// gave them; a codecs notice replaces the map of the started notice or
// of the codecs notice before it.
type SessionNotice struct {
	Session      string         `json:"session"`
	Agent        string         `json:"agent,omitempty"`
	State        string         `json:"state"`
	Record       bool           `json:"record,omitempty"`
	Server       string         `json:"server,omitempty"`
	PayloadTypes PayloadTypeMap `json:"payload_types,omitzero"`
}

// Bounds of a PayloadTypeMap.
const (
	// MaxPayloadTypes bounds the entries of a PayloadTypeMap.
	MaxPayloadTypes = 32
	// MaxEncodingLen bounds an encoding name, in bytes.
	MaxEncodingLen = 64
)

// PayloadTypeMap maps RTP payload types (0 to 127) to encodings written
// as in an SDP rtpmap: "G729/8000", "telephone-event/8000",
// "opus/48000/2". On the wire it is a JSON object keyed by the payload
// type in decimal: {"96":"G729/8000","101":"telephone-event/8000"}.
//
// Decoding never fails on a bad entry: an entry whose key is not a
// payload type 0 to 127 in decimal, or whose value is not a string of 1
// to MaxEncodingLen characters of A-Z a-z 0-9 . _ + - /, is left out and
// counted in Dropped, and so are the entries beyond MaxPayloadTypes (the
// highest payload types go). Encoding drops bad entries the same way. A
// value that is not a JSON object (or null) is a malformed notice.
//
// The zero PayloadTypeMap (no Types) is left out of a notice. A
// PayloadTypeMap is not safe for concurrent modification.
type PayloadTypeMap struct {
	Types map[uint8]string
	// Dropped counts the entries left out when decoding.
	Dropped int
}

// IsZero reports whether m has no types (the field is then left out).
func (m PayloadTypeMap) IsZero() bool { return len(m.Types) == 0 }

// ValidEncoding reports whether name may be an encoding of a
// PayloadTypeMap.
func ValidEncoding(name string) bool {
	if name == "" || len(name) > MaxEncodingLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '+' || c == '-' || c == '/') {
			return false
		}
	}
	return true
}

// MarshalJSON writes the valid entries of m (see PayloadTypeMap), in
// payload type order.
func (m PayloadTypeMap) MarshalJSON() ([]byte, error) {
	clean := cleanPayloadTypes(m.Types, nil)
	b := []byte{'{'}
	for pt := 0; pt < 128; pt++ {
		name, ok := clean[uint8(pt)]
		if !ok {
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(pt), 10)
		b = append(b, '"', ':', '"')
		b = append(b, name...) // ValidEncoding: nothing to escape
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads a JSON object of payload types, leaving out and
// counting the bad entries (see PayloadTypeMap).
func (m *PayloadTypeMap) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("payload types are not a JSON object: %w", err)
	}
	m.Types, m.Dropped = nil, 0
	if len(raw) == 0 {
		return nil
	}
	types := make(map[uint8]string, min(len(raw), MaxPayloadTypes))
	for k, v := range raw {
		pt, err := strconv.ParseUint(k, 10, 8)
		var name string
		if err != nil || pt > 127 || k != strconv.FormatUint(pt, 10) ||
			json.Unmarshal(v, &name) != nil || !ValidEncoding(name) {
			m.Dropped++
			continue
		}
		types[uint8(pt)] = name
	}
	m.Types = cleanPayloadTypes(types, &m.Dropped)
	return nil
}

// cleanPayloadTypes returns types without bad entries and without those
// beyond MaxPayloadTypes (the highest types go), adding the count left
// out to dropped when it is not nil. It returns types itself when all is
// well.
func cleanPayloadTypes(types map[uint8]string, dropped *int) map[uint8]string {
	ok := len(types) <= MaxPayloadTypes
	for pt, name := range types {
		if pt > 127 || !ValidEncoding(name) {
			ok = false
			break
		}
	}
	if ok {
		return types
	}
	out := make(map[uint8]string, MaxPayloadTypes)
	n := 0
	for pt := 0; pt < 256; pt++ {
		name, found := types[uint8(pt)]
		if !found {
			continue
		}
		if pt > 127 || !ValidEncoding(name) || len(out) == MaxPayloadTypes {
			n++
			continue
		}
		out[uint8(pt)] = name
	}
	if dropped != nil {
		*dropped += n
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Heartbeat is sent every heartbeat interval by each side; a peer answers
// a heartbeat whose Reply is false with one whose Reply is true.
type Heartbeat struct {
	Seq   uint64 `json:"seq"`
	Reply bool   `json:"reply,omitempty"`
}

// Error reports a refused request or a protocol violation. After an error
// that is not tied to a request (RequestID 0), the sender closes the
// connection.
type Error struct {
	RequestID uint64 `json:"request_id,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

// Error codes.
const (
	CodeBadRequest   = "bad-request"
	CodeUnknown      = "unknown-session"
	CodeProtocol     = "protocol"
	CodeVersion      = "version"
	CodeTooLarge     = "frame-too-large"
	CodeUnauthorized = "unauthorized"
	CodeInternal     = "internal"
	// CodeLimit refuses a request that would exceed one of the server's
	// limits (sessions, endpoints per session); the message names the
	// limit, its value and its configuration key.
	CodeLimit = "limit"
)

func (e *Error) Error() string { return e.Message }

// StatusRequest asks a capture server for its status.
type StatusRequest struct {
	RequestID uint64 `json:"request_id"`
}

// StatusReply carries a server's status as a JSON object in Status.
type StatusReply struct {
	RequestID uint64          `json:"request_id"`
	Status    json.RawMessage `json:"status"`
}

// MsgStatusPart carries one part of a status reply too large for one
// frame, to a client that listed FeatureStatusParts. Its body is binary
// (see StatusPart).
const MsgStatusPart MsgType = 0x0c

// Status parts: the size of the data of each part the server sends, and
// the most a client takes for one status.
const (
	StatusPartSize = 128 << 10
	MaxStatusBytes = 64 << 20
)

// StatusPart is one part of a status reply sent in parts: the status
// object's JSON cut in pieces, in order, the last one flagged. On the
// wire (MsgStatusPart):
//
//	request id: uint64 | flags: uint8 (bit 0: last part) | data
//
// integers big endian; the data runs to the end of the body.
type StatusPart struct {
	RequestID uint64
	Last      bool
	Data      []byte
}

const statusPartHeader = 9

// AppendStatusPart appends p as a MsgStatusPart frame.
func AppendStatusPart(dst []byte, p *StatusPart) []byte {
	var flags byte
	if p.Last {
		flags = 1
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(1+statusPartHeader+len(p.Data)))
	dst = append(dst, byte(MsgStatusPart))
	dst = binary.BigEndian.AppendUint64(dst, p.RequestID)
	dst = append(dst, flags)
	return append(dst, p.Data...)
}

// ParseStatusPart decodes the body of a MsgStatusPart frame. Data aliases
// body. A body shorter than its header, or with flags other than bit 0,
// is malformed (ErrBadFrame).
func ParseStatusPart(body []byte) (StatusPart, error) {
	if len(body) < statusPartHeader {
		return StatusPart{}, fmt.Errorf("%w: status part of %d bytes, shorter than its %d-byte header", ErrBadFrame, len(body), statusPartHeader)
	}
	flags := body[8]
	if flags&^1 != 0 {
		return StatusPart{}, fmt.Errorf("%w: status part flags 0x%02x", ErrBadFrame, flags)
	}
	return StatusPart{RequestID: binary.BigEndian.Uint64(body), Last: flags&1 != 0, Data: body[statusPartHeader:]}, nil
}

// AuditQuery asks a capture server for the audit trail lines of its whole
// cluster (MsgAuditQuery, answered by MsgAuditReply). Only an
// administrator may ask (see AuditHandler).
//
// Agent and Session select an agent's or a session's lines (and the
// connections of the supervisors those lines name); empty selects every
// line. Since (inclusive) and Until (exclusive) are RFC 3339 times;
// empty is an open bound. Limit is the most records the client wants in
// one reply: 0 is DefaultAuditLimit, and the server caps it at
// MaxAuditLimit and at what fits in a frame (MaxAuditRecordBytes).
//
// Paging: a reply with Truncated set holds the first records from Since
// on; the client asks again with the same query and Since set to the time
// of the last record of the reply, and so on until a reply is not
// truncated. A reply never splits the records of one instant: it holds
// every record at exactly Since (which do not count against Limit, so
// each page makes progress), then whole runs of records of equal time.
// The next page therefore starts with the records of the last page's last
// instant again; they are exact duplicates, which the client drops
// (audit.Merge does).
type AuditQuery struct {
	RequestID uint64 `json:"request_id"`
	Agent     string `json:"agent,omitempty"`
	Session   string `json:"session,omitempty"`
	Since     string `json:"since,omitempty"`
	Until     string `json:"until,omitempty"`
	Limit     int    `json:"limit,omitempty"`
}

// Limits of an audit query's reply.
const (
	// DefaultAuditLimit is the records per reply when AuditQuery.Limit
	// is 0.
	DefaultAuditLimit = 1000
	// MaxAuditLimit caps AuditQuery.Limit.
	MaxAuditLimit = 10000
	// MaxAuditRecordBytes bounds the encoded records of one reply, so
	// that the reply, with its member list, fits in a frame a reader of
	// DefaultMaxFrame takes.
	MaxAuditRecordBytes = DefaultMaxFrame - 32<<10
)

// AuditReply answers an AuditQuery. Records are trail lines (JSON
// objects, audit.Record), sorted by time, from every member that answered.
// Members lists every member of the cluster the server knows, itself
// included: how many of the reply's records came from it, how many
// malformed lines it skipped reading its trail, and Error when its part
// is missing (it did not answer, or could not read its trail). Complete
// is false when any member has an Error: the answer lacks that member's
// lines. Truncated says that more records follow: ask again (see
// AuditQuery).
type AuditReply struct {
	RequestID uint64            `json:"request_id"`
	Records   []json.RawMessage `json:"records"`
	Members   []AuditMember     `json:"members"`
	Complete  bool              `json:"complete"`
	Truncated bool              `json:"truncated"`
}

// AuditMember is one member's part of an AuditReply.
type AuditMember struct {
	Name      string `json:"name"`
	Records   int    `json:"records"`
	Malformed int    `json:"malformed,omitempty"`
	Error     string `json:"error,omitempty"`
}

// ErrNotSupported: the server does not serve the request (it did not
// list the feature in its hello).
var ErrNotSupported = errors.New("not supported by the server")

// AppendJSON appends a control frame of type t carrying v as JSON.
func AppendJSON(dst []byte, t MsgType, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("encode %v: %w", t, err)
	}
	return AppendFrame(dst, t, b), nil
}

// DecodeJSON decodes a control body into v; unknown fields are ignored.
func DecodeJSON(t MsgType, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%w: %v body is not a JSON object: %v", ErrBadFrame, t, err)
	}
	return nil
}

// negotiate picks the highest version both sides speak.
func negotiate(offered []int) (int, bool) {
	best := 0
	for _, v := range offered {
		if v == Version && v > best {
			best = v
		}
	}
	return best, best != 0
}

// FeatureAgents, listed in a capture server's hello, says that it answers
// agent list queries (MsgAgentsQuery).
const FeatureAgents = "agents"

// AgentsQuery asks a capture server for the agents it knows (MsgAgentsQuery,
// answered by MsgAgentsReply): those of the agent directory and those SIP
// tracking found, with their devices and live calls.
//
// Team selects one team's agents; empty selects every agent. It is 0 to
// MaxTeamLen of A-Z a-z 0-9 . _ -. Agents come sorted by id (byte order);
// After is the id of the last agent of the previous page (0 to
// MaxAgentsAfterLen printable characters without a slash), empty for the
// first page; a page holds the agents whose id sorts after it. Limit is
// the most agents wanted in one reply: 0 is DefaultAgentsLimit, at most
// MaxAgentsLimit. The server refuses a query breaking these rules with
// CodeBadRequest before its handler sees it (ValidateAgentsQuery), and
// hands the handler a Limit of 0 as DefaultAgentsLimit.
//
// Paging: while a reply has More set, the client asks again with After
// set to the id of the reply's last agent.
type AgentsQuery struct {
	RequestID uint64 `json:"request_id"`
	Team      string `json:"team,omitempty"`
	After     string `json:"after,omitempty"`
	Limit     int    `json:"limit,omitempty"`
}

// Limits of an agents query.
const (
	// DefaultAgentsLimit is the agents per reply when AgentsQuery.Limit
	// is 0.
	DefaultAgentsLimit = 500
	// MaxAgentsLimit caps AgentsQuery.Limit.
	MaxAgentsLimit = 2000
	// MaxTeamLen bounds AgentsQuery.Team.
	MaxTeamLen = 64
	// MaxAgentsAfterLen bounds AgentsQuery.After, in bytes.
	MaxAgentsAfterLen = 64
)

// ValidateAgentsQuery reports the first problem with q as an *Error of
// CodeBadRequest naming the bad value, or nil.
func ValidateAgentsQuery(q *AgentsQuery) error {
	if !validTeam(q.Team) {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("team %q is not 0 to %d of A-Z a-z 0-9 . _ -", q.Team, MaxTeamLen)}
	}
	if !validAfter(q.After) {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("after %q is not 0 to %d bytes of printable characters without a slash", q.After, MaxAgentsAfterLen)}
	}
	if q.Limit < 0 || q.Limit > MaxAgentsLimit {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("limit %d is not 0 to %d", q.Limit, MaxAgentsLimit)}
	}
	return nil
}

func validTeam(team string) bool {
	if len(team) > MaxTeamLen {
		return false
	}
	for i := 0; i < len(team); i++ {
		c := team[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validAfter(after string) bool {
	if len(after) > MaxAgentsAfterLen || !utf8.ValidString(after) {
		return false
	}
	for _, r := range after {
		if r == '/' || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// AgentsReply answers an AgentsQuery: at most Limit agents sorted by id,
// and More when agents follow (see AgentsQuery for the next page). Agents
// is never null on the wire.
type AgentsReply struct {
	RequestID uint64        `json:"request_id"`
	Agents    []AgentStatus `json:"agents"`
	More      bool          `json:"more,omitempty"`
}

// AgentStatus is one agent as a capture server knows it: from the agent
// directory (ID, Name, Team, Extensions, Mobile, phones) and from SIP
// tracking and the CTI hook (devices learned, calls). State is the
// busiest of its calls' states (AgentTalking, then AgentHeld, then
// AgentRinging), AgentIdle without calls, AgentUnknown when nothing is
// known of its state. Monitored lists the sessions that monitor the
// agent.
type AgentStatus struct {
	ID         string        `json:"id"`
	Name       string        `json:"name,omitempty"`
	Team       string        `json:"team,omitempty"`
	Extensions []string      `json:"extensions,omitempty"`
	Mobile     bool          `json:"mobile,omitempty"`
	Devices    []AgentDevice `json:"devices"`
	State      string        `json:"state"`
	Calls      []AgentCall   `json:"calls,omitempty"`
	Monitored  []string      `json:"monitored_by_sessions,omitempty"`
}

// Agent and call states, in AgentStatus.State and AgentCall.State.
const (
	AgentIdle    = "idle"
	AgentRinging = "ringing"
	AgentTalking = "talking"
	AgentHeld    = "held"
	AgentUnknown = "unknown"
)

// AgentDevice is a device of an agent: Address is an IP, an IP:port or a
// MAC address; Learned says where it comes from (DeviceFromDirectory,
// DeviceFromRegister, DeviceFromCall, DeviceFromCTI); Since is when it was
// learned (RFC 3339), when known.
type AgentDevice struct {
	Address string `json:"address"`
	Learned string `json:"learned"`
	Since   string `json:"since,omitempty"`
}

// Where a device was learned, in AgentDevice.Learned.
const (
	DeviceFromDirectory = "directory"
	DeviceFromRegister  = "sip-register"
	DeviceFromCall      = "sip-call"
	DeviceFromCTI       = "cti"
)

// AgentCall is a live call of an agent: its SIP Call-ID, its state
// (AgentRinging, AgentTalking or AgentHeld), the other party (Peer, a SIP
// user part or number), the media addresses ("IP:port") of the agent's
// side (Local) and of the other side (Remote) from the SDP, the codecs
// negotiated, whether the media is SRTP, and when the call began (RFC
// 3339). Local and Remote are never null on the wire.
type AgentCall struct {
	CallID    string   `json:"call_id"`
	State     string   `json:"state"`
	Peer      string   `json:"peer,omitempty"`
	Local     []string `json:"local"`
	Remote    []string `json:"remote"`
	Codecs    []string `json:"codecs,omitempty"`
	Encrypted bool     `json:"encrypted,omitempty"`
	Started   string   `json:"started,omitempty"`
}
