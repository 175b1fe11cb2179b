package siptrack

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"time"

	"github.com/emiago/sipgo/sip"
)

// keepBufCap is the largest buffer capacity an idle flow keeps.
const keepBufCap = 4 << 10

type flowKey struct {
	vlan     uint16
	src, dst netip.AddrPort
}

// flow is the reassembly state of one direction of a TCP connection.
type flow struct {
	buf       []byte
	last      time.Time
	next      uint32 // next expected sequence number (TCPSegment)
	seqKnown  bool
	skip      int  // bytes still to drop: the rest of a message too large to read
	resyncing bool // looking for the next start line (new flow, unreadable bytes, gap)
	counted   bool // the bytes being skipped were counted as malformed
}

var crlf = []byte("\r\n")

// udpLocked reads one datagram.
func (t *Tracker) udpLocked(ts time.Time, vlan uint16, src, dst netip.AddrPort, payload []byte) {
	if keepalive(payload) {
		t.st.keepalives.Add(1)
		return
	}
	msg, _, err := parse(t.udpParser, payload, false)
	if err != nil {
		t.st.malformed.Add(1)
		return
	}
	t.handle(ts, vlan, src, dst, msg)
}

// keepalive reports whether a datagram is a keep-alive (CRLF, NULs,
// blanks) rather than a message.
func keepalive(b []byte) bool {
	for _, c := range b {
		switch c {
		case '\r', '\n', 0, ' ', '\t':
		default:
			return false
		}
	}
	return true
}

// parse runs the SIP parser, turning a panic of the parser into an error.
func parse(p *sip.Parser, b []byte, stream bool) (msg sip.Message, n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, n, err = nil, 0, errParserPanic
		}
	}()
	msg, n, err = p.Parse(b, stream)
	if err == nil && msg == nil {
		err = errNotSIP
	}
	return msg, n, err
}

// tcpLocked adds one segment to its flow and reads the messages it
// completes.
func (t *Tracker) tcpLocked(ts time.Time, vlan uint16, src, dst netip.AddrPort, payload []byte, seq uint32, hasSeq bool) {
	k := flowKey{vlan, src, dst}
	f := t.flows[k]
	if f == nil {
		if len(payload) == 0 {
			return
		}
		if len(t.flows) >= t.cfg.MaxTCPFlows {
			t.evictFlow()
		}
		// The capture may start in the middle of a message.
		f = &flow{resyncing: true}
		t.flows[k] = f
	}
	f.last = ts
	if hasSeq {
		end := seq + uint32(len(payload))
		switch {
		case !f.seqKnown:
			f.seqKnown = true
		case seq == f.next:
		case int32(end-f.next) <= 0:
			// Everything in it was seen already.
			if len(payload) > 0 {
				t.st.tcpRetransmits.Add(1)
			}
			return
		case int32(seq-f.next) < 0:
			// Overlap: keep the new tail.
			t.st.tcpRetransmits.Add(1)
			payload = payload[f.next-seq:]
		default:
			// A segment is missing: what is buffered cannot be completed.
			t.st.tcpGaps.Add(1)
			f.buf = f.buf[:0]
			f.skip = 0
			f.resyncing = true
		}
		f.next = end
	}
	if f.skip > 0 {
		n := min(f.skip, len(payload))
		f.skip -= n
		payload = payload[n:]
	}
	if len(payload) == 0 {
		return
	}
	if len(f.buf)+len(payload) > t.cfg.TCPBufferLimit {
		// The message being assembled is too large: drop it and look for
		// the next one from here.
		t.st.tcpDropped.Add(1)
		f.buf = f.buf[:0]
		f.resyncing = true
		if len(payload) > t.cfg.TCPBufferLimit {
			return
		}
	}
	f.buf = append(f.buf, payload...)
	t.drain(f, ts, vlan, src, dst)
	if len(f.buf) == 0 && cap(f.buf) > keepBufCap {
		f.buf = nil
	}
}

// drain reads every complete message at the front of the flow's buffer.
func (t *Tracker) drain(f *flow, ts time.Time, vlan uint16, src, dst netip.AddrPort) {
	b := f.buf
	defer func() {
		// Move what is left to the front of the buffer.
		f.buf = f.buf[:copy(f.buf, b)]
	}()
	for len(b) > 0 {
		if n := leadingBlank(b); n > 0 {
			// CRLF keep-alives between messages (RFC 5626).
			t.st.keepalives.Add(1)
			b = b[n:]
			continue
		}
		if f.resyncing {
			var dropped bool
			b, dropped = t.resync(b)
			if dropped && !f.counted {
				t.st.malformed.Add(1)
				f.counted = true
			}
			if f.resyncing = len(b) == 0 || !startsMessage(t.tcpParser, b); f.resyncing {
				// Keep the last unterminated line: it may be a start line
				// still arriving.
				return
			}
		}
		msg, n, err := parse(t.tcpParser, b, true)
		switch {
		case err == nil:
		case errors.Is(err, io.ErrUnexpectedEOF):
			return // wait for more
		case errors.Is(err, sip.ErrParseReadBodyIncomplete):
			if msg != nil && msg.ContentLength() != nil {
				return // wait for the rest of the body
			}
			// No Content-Length (RFC 3261 requires it over TCP): take the
			// headers as the whole message.
		case errors.Is(err, sip.ErrMessageTooLarge):
			t.st.tcpDropped.Add(1)
			if msg != nil && msg.ContentLength() != nil {
				total := n + int(*msg.ContentLength())
				if total > len(b) {
					f.skip = total - len(b)
					b = b[:0]
					return
				}
				b = b[total:]
				continue
			}
			b = b[:0]
			f.resyncing = true
			return
		default:
			// Unreadable bytes: count once, then look for the next start
			// line.
			t.st.malformed.Add(1)
			f.resyncing, f.counted = true, true
			b = b[min(max(n, 1), len(b)):]
			continue
		}
		f.counted = false
		t.handle(ts, vlan, src, dst, msg)
		b = b[n:]
	}
}

// leadingBlank returns the number of CR and LF bytes at the front of b.
func leadingBlank(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == '\r' || b[n] == '\n') {
		n++
	}
	return n
}

// resync drops lines from the front of b until one starts a SIP message
// (as the SIP parser judges it) or only an unterminated line is left; it
// reports whether it dropped any.
func (t *Tracker) resync(b []byte) ([]byte, bool) {
	dropped := false
	for len(b) > 0 && !startsMessage(t.tcpParser, b) {
		i := bytes.Index(b, crlf)
		if i < 0 {
			return b, dropped
		}
		b = b[i+2:]
		dropped = true
	}
	return b, dropped
}

// startsMessage reports whether b begins with a complete SIP start line.
func startsMessage(p *sip.Parser, b []byte) bool {
	i := bytes.Index(b, crlf)
	if i < 0 {
		return false
	}
	_, n, err := parse(p, b[:i+2], true)
	// A start line alone parses up to its headers, which are missing.
	return n == i+2 && (err == nil || errors.Is(err, io.ErrUnexpectedEOF))
}

// evictFlow drops the least recently used flow.
func (t *Tracker) evictFlow() {
	var oldK flowKey
	var old *flow
	for k, f := range t.flows {
		if old == nil || f.last.Before(old.last) {
			oldK, old = k, f
		}
	}
	if old != nil {
		delete(t.flows, oldK)
		t.st.tcpEvicted.Add(1)
	}
}
