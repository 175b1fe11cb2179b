package capturetest

import (
	"encoding/binary"
	"net/netip"
)

// DNS describes a DNS message to build (RFC 1035): the header, one
// question of class IN and, when Answer is set, one A record answering
// it. Zero fields take defaults: the question is of type A.
//
// A transaction ID whose top two bits are 10 makes the message start like
// an RTP version 2 header, which is what a naive RTP heuristic falls for.
type DNS struct {
	ID     uint16
	Flags  uint16 // e.g. 0x0100 (RD) for a query, 0x8180 for its response
	Name   string // dotted, as "sip.example.com"
	Type   uint16 // the question's type; 0 means A (1)
	Answer netip.Addr
	TTL    uint32 // the answer's, in seconds
}

// Bytes returns the message. Answer, when set, must be an IPv4 address.
func (d DNS) Bytes() []byte {
	qtype := d.Type
	if qtype == 0 {
		qtype = 1
	}
	an := uint16(0)
	if d.Answer.IsValid() {
		an = 1
	}
	b := binary.BigEndian.AppendUint16(nil, d.ID)
	b = binary.BigEndian.AppendUint16(b, d.Flags)
	b = binary.BigEndian.AppendUint16(b, 1) // questions
	b = binary.BigEndian.AppendUint16(b, an)
	b = append(b, 0, 0, 0, 0) // no authority or additional records
	b = appendDNSName(b, d.Name)
	b = binary.BigEndian.AppendUint16(b, qtype)
	b = binary.BigEndian.AppendUint16(b, 1) // IN
	if an == 1 {
		b = append(b, 0xc0, 12) // pointer to the question's name
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint32(b, d.TTL)
		a := d.Answer.As4()
		b = binary.BigEndian.AppendUint16(b, uint16(len(a)))
		b = append(b, a[:]...)
	}
	return b
}

// appendDNSName appends name encoded as DNS labels.
func appendDNSName(b []byte, name string) []byte {
	start := 0
	for i := 0; i <= len(name); i++ {
		if i == len(name) || name[i] == '.' {
			b = append(b, byte(i-start))
			b = append(b, name[start:i]...)
			start = i + 1
		}
	}
	return append(b, 0)
}

// NBNSQuery returns a NetBIOS name service broadcast name query (RFC 1002,
// flags RD and B) for name, at most 15 characters, with transaction ID id.
func NBNSQuery(id uint16, name string) []byte {
	b := DNS{ID: id, Flags: 0x0110}.Bytes()[:12] // the header alone
	var n [16]byte
	for i := range 15 {
		n[i] = ' '
	}
	copy(n[:15], name)
	b = append(b, 32) // first-level encoding (RFC 1001): 16 bytes as 32 letters
	for _, c := range n {
		b = append(b, 'A'+c>>4, 'A'+c&0x0f)
	}
	b = append(b, 0)
	return append(b, 0, 0x20, 0, 1) // NB, IN
}
