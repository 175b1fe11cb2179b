package playout

import (
	"encoding/binary"
	"fmt"
)

// Telephone events (RFC 4733): the digits a phone sends as named events
// rather than as tones in the voice. They are never rendered as audio;
// this file reads them so that they can be shown.

// eventLen is the size of one event in an RFC 4733 payload.
const eventLen = 4

// Event is one RFC 4733 named event: the event code (0-9, 10 for *, 11
// for #, 12-15 for A-D, 16 for flash), whether this packet ends the
// event, its volume (0 to 63, in -dBm0) and its duration so far in
// timestamp units.
type Event struct {
	Code     uint8
	End      bool
	Volume   uint8
	Duration uint16
}

// digits maps the DTMF event codes 0 to 16 to the characters shown.
const digits = "0123456789*#ABCD!"

// Digit returns the character shown for the event: '0'-'9', '*', '#',
// 'A'-'D', '!' for a hook flash, and 0 for any other event (tones,
// modem and fax events), which is not a digit.
func (e Event) Digit() byte {
	if int(e.Code) < len(digits) {
		return digits[e.Code]
	}
	return 0
}

// String returns the event as "digit 5 (end, volume 10, duration 160)".
func (e Event) String() string {
	name := fmt.Sprintf("event %d", e.Code)
	if d := e.Digit(); d != 0 {
		name = "digit " + string(d)
	}
	end := ""
	if e.End {
		end = "end, "
	}
	return fmt.Sprintf("%s (%svolume %d, duration %d)", name, end, e.Volume, e.Duration)
}

// ParseEvents appends to dst the events of an RFC 4733 payload: one or
// more 4-byte events (event code; end bit, reserved bit and volume;
// duration). An empty payload or one whose length is not a multiple of
// 4 returns dst unchanged and an error wrapping ErrBadEvent. It does not
// allocate when dst has room.
func ParseEvents(payload []byte, dst []Event) ([]Event, error) {
	if len(payload) == 0 || len(payload)%eventLen != 0 {
		return dst, fmt.Errorf("telephone-event payload of %d bytes is not a multiple of 4: %w", len(payload), ErrBadEvent)
	}
	for p := payload; len(p) >= eventLen; p = p[eventLen:] {
		dst = append(dst, Event{Code: p[0], End: p[1]&0x80 != 0, Volume: p[1] & 0x3f,
			Duration: binary.BigEndian.Uint16(p[2:4])})
	}
	return dst, nil
}

// RedBlock is one block of an RFC 2198 redundant payload: its payload
// type, how far its timestamp lies before the packet's (0 for the
// primary block) and its data, which aliases the payload parsed.
type RedBlock struct {
	PT       uint8
	TSOffset uint16
	Data     []byte
}

// ParseRedundant appends to dst the blocks of an RFC 2198 payload (as
// telephone events are sent with redundancy): 4-byte headers (F bit set,
// payload type, 14-bit timestamp offset, 10-bit length), a 1-byte header
// for the primary block, then the blocks' data in order; the primary
// block takes what the others leave. Blocks alias payload and stay valid
// while it does. A truncated payload returns dst unchanged and an error
// wrapping ErrBadEvent. It does not allocate when dst has room.
func ParseRedundant(payload []byte, dst []RedBlock) ([]RedBlock, error) {
	// First pass: the headers' end and the redundant blocks' total size.
	hdrs, total := 0, 0
	for {
		if hdrs >= len(payload) {
			return dst, fmt.Errorf("redundant payload of %d bytes ends inside its headers: %w", len(payload), ErrBadEvent)
		}
		if payload[hdrs]&0x80 == 0 {
			hdrs++
			break
		}
		if len(payload)-hdrs < 4 {
			return dst, fmt.Errorf("redundant payload of %d bytes ends inside its headers: %w", len(payload), ErrBadEvent)
		}
		total += int(binary.BigEndian.Uint32(payload[hdrs:]) & 0x3ff)
		hdrs += 4
	}
	data := payload[hdrs:]
	if total > len(data) {
		return dst, fmt.Errorf("redundant payload of %d bytes is shorter than its blocks' %d bytes: %w", len(payload), total, ErrBadEvent)
	}
	for h := payload[:hdrs]; ; h = h[4:] {
		if h[0]&0x80 == 0 {
			return append(dst, RedBlock{PT: h[0] & 0x7f, Data: data}), nil
		}
		v := binary.BigEndian.Uint32(h)
		n := int(v & 0x3ff)
		dst = append(dst, RedBlock{PT: h[0] & 0x7f, TSOffset: uint16(v >> 10 & 0x3fff), Data: data[:n:n]})
		data = data[n:]
	}
}

// maxEventHistory is how many recent events an EventCounter remembers to
// recognise their repeated packets.
const maxEventHistory = 8

// EventCounter counts each telephone event of one RTP stream once,
// although a sender repeats it: every packet of a long event carries the
// event again (same start timestamp, growing duration) and the end packet
// is sent three times. An event is identified by its SSRC, start
// timestamp and code. The zero value is ready to use; it is not safe for
// concurrent use.
type EventCounter struct {
	seen [maxEventHistory]eventKey
	n    int // entries used
	next int // where the next one goes
}

type eventKey struct {
	ssrc, ts uint32
	code     uint8
}

// New reports whether the event of stream ssrc that started at RTP
// timestamp ts is seen for the first time, and remembers it.
func (c *EventCounter) New(ssrc, ts uint32, e Event) bool {
	k := eventKey{ssrc: ssrc, ts: ts, code: e.Code}
	for i := range c.n {
		if c.seen[i] == k {
			return false
		}
	}
	c.seen[c.next] = k
	c.next = (c.next + 1) % maxEventHistory
	c.n = min(c.n+1, maxEventHistory)
	return true
}

// RTPPayload returns the payload type, SSRC and timestamp of an RTP
// version 2 packet and its payload (CSRCs, extension and padding
// removed), which aliases b. It does not allocate; a packet that is not
// RTP version 2 or is truncated returns an error wrapping ErrNotRTP or
// ErrShortRTP.
func RTPPayload(b []byte) (pt uint8, ssrc, ts uint32, payload []byte, err error) {
	h, payload, err := parseRTP(b)
	return h.pt, h.ssrc, h.ts, payload, err
}
