package relay

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Version is the protocol version this package speaks.
const Version = 1

// MsgType is a frame's type byte.
type MsgType uint8

// Message types. Control messages carry a JSON object; Media is binary.
const (
	MsgHello         MsgType = 0x01
	MsgStartMonitor  MsgType = 0x02
	MsgStopMonitor   MsgType = 0x03
	MsgSessionStatus MsgType = 0x04
	MsgHeartbeat     MsgType = 0x05
	MsgError         MsgType = 0x06
	MsgStatus        MsgType = 0x07
	MsgStatusReply   MsgType = 0x08
	MsgSession       MsgType = 0x09
	MsgAuditQuery    MsgType = 0x0a
	MsgAuditReply    MsgType = 0x0b
	MsgAgentsQuery   MsgType = 0x0d
	MsgAgentsReply   MsgType = 0x0e
	MsgMedia         MsgType = 0x10
)

func (t MsgType) String() string {
	switch t {
	case MsgHello:
		return "hello"
	case MsgStartMonitor:
		return "start-monitor"
	case MsgStopMonitor:
		return "stop-monitor"
	case MsgSessionStatus:
		return "session-status"
	case MsgHeartbeat:
		return "heartbeat"
	case MsgError:
		return "error"
	case MsgStatus:
		return "status"
	case MsgStatusReply:
		return "status-reply"
	case MsgSession:
		return "session"
	case MsgAuditQuery:
		return "audit-query"
	case MsgAuditReply:
		return "audit-reply"
	case MsgStatusPart:
		return "status-part"
	case MsgAgentsQuery:
		return "agents-query"
	case MsgAgentsReply:
		return "agents-reply"
	case MsgAgentsBind:
		return "agents-bind"
	case MsgAgentsBindReply:
		return "agents-bind-reply"
	case MsgAgentWatch:
		return "agent-watch"
	case MsgAgentEvents:
		return "agent-events"
	case MsgMedia:
		return "media"
	}
	return fmt.Sprintf("type(0x%02x)", uint8(t))
}

const (
	headerLen = 5 // uint32 length, uint8 type
	// DefaultMaxFrame is the largest frame accepted unless configured.
	DefaultMaxFrame = 256 << 10
)

// Reader reads frames from a stream. It is not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewReader returns a Reader that refuses frames longer than max bytes
// (DefaultMaxFrame if max ≤ 0).
func NewReader(r io.Reader, max int) *Reader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &Reader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// tlsHandshakeRecord is the first byte of a TLS handshake record (a
// ClientHello, then the major version 3): read as a frame length, far
// beyond any maximum.
const tlsHandshakeRecord = 0x16

// Next reads one frame. The body aliases a buffer of the Reader, valid until
// the next call. A frame longer than the maximum returns ErrFrameTooLarge
// without reading its body; a frame cut short returns io.ErrUnexpectedEOF.
func (r *Reader) Next() (MsgType, []byte, error) {
	var h [headerLen]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[0:4])
	if n < 1 {
		return 0, nil, fmt.Errorf("%w: length %d", ErrBadFrame, n)
	}
	body := int(n) - 1
	if body > r.max {
		if h[0] == tlsHandshakeRecord && h[1] == 3 {
			return 0, nil, fmt.Errorf("%w: %w", ErrFrameTooLarge, ErrTLSOnPlaintext)
		}
		return 0, nil, fmt.Errorf("%w: %d bytes, maximum %d", ErrFrameTooLarge, body, r.max)
	}
	if cap(r.buf) < body {
		r.buf = make([]byte, body)
	}
	b := r.buf[:body]
	if _, err := io.ReadFull(r.r, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return MsgType(h[4]), b, nil
}

// AppendFrame appends a frame of type t with the given body to dst.
func AppendFrame(dst []byte, t MsgType, body []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)+1))
	dst = append(dst, byte(t))
	return append(dst, body...)
}
