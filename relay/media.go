package relay

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/silentmon/silentmon/filter"
)

// MediaPacket is one captured RTP packet in a media frame.
type MediaPacket struct {
	Direction filter.Direction
	// Time is the capture time, Unix nanoseconds.
	Time     int64
	Src, Dst netip.AddrPort
	// VLAN is the outer 802.1Q TCI, 0 when untagged.
	VLAN uint16
	// Data is the UDP payload (the RTP packet) as captured. When parsed
	// from a frame, it aliases the frame body.
	Data []byte
}

const (
	mediaFlagIPv6   = 1 << 0
	maxMediaPackets = 0xffff
)

// AppendMediaHeader starts a media frame body for session with count
// packets; append the packets with AppendMediaPacket.
func AppendMediaHeader(dst []byte, session string, count int) []byte {
	if len(session) > 255 {
		session = session[:255]
	}
	dst = append(dst, byte(len(session)))
	dst = append(dst, session...)
	return binary.BigEndian.AppendUint16(dst, uint16(count))
}

// AppendMediaPacket appends one packet to a media frame body.
func AppendMediaPacket(dst []byte, p *MediaPacket) []byte {
	var flags byte
	v6 := p.Src.Addr().Is6() || p.Dst.Addr().Is6()
	if v6 {
		flags |= mediaFlagIPv6
	}
	dst = append(dst, byte(p.Direction), flags)
	dst = binary.BigEndian.AppendUint64(dst, uint64(p.Time))
	dst = appendAddrPort(dst, p.Src, v6)
	dst = appendAddrPort(dst, p.Dst, v6)
	dst = binary.BigEndian.AppendUint16(dst, p.VLAN)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.Data)))
	return append(dst, p.Data...)
}

// MediaPacketLen returns the encoded size of p.
func MediaPacketLen(p *MediaPacket) int {
	n := 2 + 8 + 2 + 2 + 2 + 2 + len(p.Data)
	if p.Src.Addr().Is6() || p.Dst.Addr().Is6() {
		return n + 32
	}
	return n + 8
}

func appendAddrPort(dst []byte, ap netip.AddrPort, v6 bool) []byte {
	a := ap.Addr()
	if v6 {
		b := a.As16()
		dst = append(dst, b[:]...)
	} else {
		b := a.As4()
		dst = append(dst, b[:]...)
	}
	return binary.BigEndian.AppendUint16(dst, ap.Port())
}

// MediaFrame iterates over the packets of a media frame body without
// allocating. It is not safe for concurrent use.
type MediaFrame struct {
	// Session aliases the frame body.
	Session []byte
	left    int
	rest    []byte
}

// ParseMedia parses the header of a media frame body.
func ParseMedia(body []byte) (MediaFrame, error) {
	if len(body) < 1 {
		return MediaFrame{}, fmt.Errorf("%w: empty body", ErrBadMedia)
	}
	n := int(body[0])
	if n == 0 || len(body) < 1+n+2 {
		return MediaFrame{}, fmt.Errorf("%w: session id", ErrBadMedia)
	}
	return MediaFrame{
		Session: body[1 : 1+n],
		left:    int(binary.BigEndian.Uint16(body[1+n:])),
		rest:    body[1+n+2:],
	}, nil
}

// Len returns the number of packets not yet read.
func (m *MediaFrame) Len() int { return m.left }

// Next decodes the next packet into p; p.Data aliases the body. It returns
// false with a nil error after the last packet.
func (m *MediaFrame) Next(p *MediaPacket) (bool, error) {
	if m.left == 0 {
		if len(m.rest) != 0 {
			return false, fmt.Errorf("%w: %d trailing bytes", ErrBadMedia, len(m.rest))
		}
		return false, nil
	}
	b := m.rest
	if len(b) < 2 {
		return false, fmt.Errorf("%w: truncated packet header", ErrBadMedia)
	}
	dir, flags := filter.Direction(b[0]), b[1]
	if dir != filter.FromAgent && dir != filter.ToAgent {
		return false, fmt.Errorf("%w: direction %d", ErrBadMedia, b[0])
	}
	alen := 4
	if flags&mediaFlagIPv6 != 0 {
		alen = 16
	}
	need := 2 + 8 + 2*(alen+2) + 2 + 2
	if len(b) < need {
		return false, fmt.Errorf("%w: truncated packet header", ErrBadMedia)
	}
	p.Direction = dir
	p.Time = int64(binary.BigEndian.Uint64(b[2:10]))
	off := 10
	p.Src, off = readAddrPort(b, off, alen)
	p.Dst, off = readAddrPort(b, off, alen)
	p.VLAN = binary.BigEndian.Uint16(b[off:])
	dlen := int(binary.BigEndian.Uint16(b[off+2:]))
	off += 4
	if len(b) < off+dlen {
		return false, fmt.Errorf("%w: packet of %d bytes in %d", ErrBadMedia, dlen, len(b)-off)
	}
	p.Data = b[off : off+dlen : off+dlen]
	m.rest = b[off+dlen:]
	m.left--
	return true, nil
}

func readAddrPort(b []byte, off, alen int) (netip.AddrPort, int) {
	var a netip.Addr
	if alen == 4 {
		a = netip.AddrFrom4([4]byte(b[off : off+4]))
	} else {
		a = netip.AddrFrom16([16]byte(b[off : off+16]))
	}
	port := binary.BigEndian.Uint16(b[off+alen:])
	return netip.AddrPortFrom(a, port), off + alen + 2
}
