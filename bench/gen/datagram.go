package gen

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"
)

// Datagram is one non-RTP UDP datagram written into the capture among the
// calls (a DNS query, an NBNS broadcast, a SIP message), so that tests can
// check that RTP heuristics and filters ignore it. Write copies Payload
// into the frame as is. With TCP set, the frame is a TCP segment instead.
type Datagram struct {
	// At is the capture time offset from Config.Epoch. It may be negative
	// (signalling written before a call that starts at offset 0).
	At       time.Duration
	Src, Dst Endpoint
	// VLAN is the 802.1Q VLAN ID; 0 writes an untagged frame.
	VLAN    uint16
	Payload []byte
	// TCP, when non-nil, writes a TCP segment with these header fields
	// carrying Payload, instead of a UDP datagram.
	TCP *TCPHeader
}

// TCPHeader holds the fields of a TCP segment's header that a Datagram
// sets; the data offset is 5 (no options) and the checksum is computed.
type TCPHeader struct {
	Seq, Ack uint32
	Flags    uint8 // TCPFin, TCPSyn, TCPPsh, TCPAck, ...
	Window   uint16
}

// TCP flags of a TCPHeader.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
	TCPRst = 0x04
	TCPPsh = 0x08
	TCPAck = 0x10
)

func (d *Datagram) validate(i int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: datagram %d: %s", ErrBadCall, i, fmt.Sprintf(format, args...))
	}
	s, t := d.Src.Addr, d.Dst.Addr
	if !s.Addr().IsValid() || !t.Addr().IsValid() {
		return bad("source %v or destination %v is not set", s, t)
	}
	if s.Addr().Unmap().Is4() != t.Addr().Unmap().Is4() {
		return bad("source %v and destination %v are of different IP families", s, t)
	}
	if d.VLAN > 4094 || len(d.Payload) > maxPayload {
		return bad("time %v, VLAN %d or payload of %d bytes is out of range", d.At, d.VLAN, len(d.Payload))
	}
	return nil
}

// datagramQueue writes a Config's datagrams in time order, merged with the
// RTP packets by Write. A datagram is written before an RTP packet of the
// same capture time.
type datagramQueue struct {
	ds    []*Datagram // sorted by At, stable
	next  int
	buf   []byte
	ipID  uint16
	count int
}

func newDatagramQueue(ds []Datagram, seed uint64) *datagramQueue {
	q := &datagramQueue{ds: make([]*Datagram, len(ds)), buf: make([]byte, 0, 128+maxPayload)}
	for i := range ds {
		q.ds[i] = &ds[i]
	}
	sort.SliceStable(q.ds, func(i, j int) bool { return q.ds[i].At < q.ds[j].At })
	q.ipID = uint16(newRand(seed, 0xd6a3).Uint64())
	return q
}

// writeUntil writes every datagram due at or before at.
func (q *datagramQueue) writeUntil(pw *pcapWriter, epoch time.Time, at time.Duration) error {
	for q.next < len(q.ds) && q.ds[q.next].At <= at {
		d := q.ds[q.next]
		q.next++
		q.buf = buildUDPFrame(q.buf[:0], d, q.ipID)
		q.ipID++
		if err := pw.writePacket(epoch.Add(d.At).Truncate(pw.resolution()), q.buf); err != nil {
			return err
		}
		q.count++
	}
	return nil
}

// buildUDPFrame appends the Ethernet frame of d to b: UDP, or TCP when
// d.TCP is set.
func buildUDPFrame(b []byte, d *Datagram, ipID uint16) []byte {
	b = append(b, d.Dst.MAC[:]...)
	b = append(b, d.Src.MAC[:]...)
	if d.VLAN != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, d.VLAN)
	}
	sa, da := d.Src.Addr.Addr().Unmap(), d.Dst.Addr.Addr().Unmap()
	proto, hdrLen := byte(17), udpHeaderLen
	if d.TCP != nil {
		proto, hdrLen = 6, tcpHeaderLen
	}
	udpLen := hdrLen + len(d.Payload)
	if sa.Is4() {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		ip := len(b)
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(ipv4HeaderLen+udpLen))
		b = binary.BigEndian.AppendUint16(b, ipID)
		b = append(b, 0, 0, 64, proto, 0, 0)
		s4, d4 := sa.As4(), da.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
		binary.BigEndian.PutUint16(b[ip+10:], ^fold(sum16(b[ip:ip+ipv4HeaderLen], 0)))
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		b = binary.BigEndian.AppendUint32(b, 6<<28)
		b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
		b = append(b, proto, 64)
		s16, d16 := sa.As16(), da.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	}
	if d.TCP != nil {
		return appendTCP(b, d, sa, da)
	}
	udp := len(b)
	b = binary.BigEndian.AppendUint16(b, d.Src.Addr.Port())
	b = binary.BigEndian.AppendUint16(b, d.Dst.Addr.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, 0, 0)
	b = append(b, d.Payload...)
	cs := ^fold(sum16(b[udp:], addrSum(sa)+addrSum(da)+17+uint32(udpLen)))
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(b[udp+6:], cs)
	for len(b) < minFrameLen {
		b = append(b, 0)
	}
	return b
}

// rtpLikeID returns a transaction ID that begins like an RTP version 2
// header with payload type 0 or 8 (0x80 0x00 or 0x80 0x08) half of the
// time.
func rtpLikeID(rng *rand.Rand) uint16 {
	if rng.IntN(2) == 0 {
		return 0x8000 | uint16(rng.IntN(2))*8
	}
	return uint16(rng.Uint64())
}
