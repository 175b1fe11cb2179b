package capture

import (
	"encoding/binary"
	"net/netip"
)

// LinkType is the link-layer header type of a source's frames, with the
// values of the pcap LINKTYPE_ registry.
type LinkType uint16

// Link types a Source may deliver.
const (
	LinkEthernet LinkType = 1   // LINKTYPE_ETHERNET
	LinkRaw      LinkType = 101 // LINKTYPE_RAW (IPv4 or IPv6, no link header)
	LinkSLL      LinkType = 113 // LINKTYPE_LINUX_SLL
	LinkSLL2     LinkType = 276 // LINKTYPE_LINUX_SLL2
)

// MaxVLANs is the number of stacked VLAN tags a Packet keeps.
const MaxVLANs = 4

// Kind says what a decoded UDP datagram carries.
type Kind uint8

// Kinds of decoded packets.
const (
	KindOther Kind = iota // not UDP over IP (ARP, TCP, ...)
	KindUDP               // UDP, neither RTP nor RTCP
	KindRTP               // RTP version 2
	KindRTCP              // RTCP: a second byte of 192 to 223 (SR, RR, SDES, BYE, APP, feedback, XR)
)

// VLANTag is one 802.1Q or 802.1ad tag.
type VLANTag struct {
	TPID uint16 // 0x8100 (802.1Q) or 0x88a8 (802.1ad)
	TCI  uint16 // priority (3 bits), DEI (1 bit), VLAN ID (12 bits)
}

// ID returns the tag's VLAN ID.
func (t VLANTag) ID() uint16 { return t.TCI & 0x0fff }

// Priority returns the tag's 802.1p priority code point.
func (t VLANTag) Priority() uint8 { return uint8(t.TCI >> 13) }

// RTPHeader is the fixed part of an RTP header and what follows it.
type RTPHeader struct {
	Marker         bool
	PayloadType    uint8
	SequenceNumber uint16
	Timestamp      uint32
	SSRC           uint32
	CSRCCount      uint8
	Extension      bool
	Padding        bool
	// Payload is the RTP payload without header, CSRCs, extension and
	// padding. It aliases the decoded frame.
	Payload []byte
}

// Packet is a frame decoded in place. Decode overwrites every field; slices
// alias the frame given to Decode and stay valid as long as that frame does.
// A Packet is not safe for concurrent use; reuse one per goroutine.
type Packet struct {
	Kind   Kind
	SrcMAC [6]byte
	DstMAC [6]byte
	HasMAC bool // false for raw IP and cooked captures without a MAC

	// VLANs holds the tags outermost first: a tag the kernel stripped and
	// reported out of band comes first, then the tags found in the frame.
	VLANs    [MaxVLANs]VLANTag
	NumVLANs int

	Src, Dst netip.AddrPort // IP addresses and UDP ports
	IPProto  uint8
	TOS      uint8 // IPv4 ToS or IPv6 traffic class

	// UDP is the UDP payload; it aliases the frame, and its capacity ends
	// with it (an append cannot overwrite the rest of the frame).
	UDP []byte
	// RTP is valid when Kind is KindRTP.
	RTP RTPHeader
	// RTCPType is the packet type of the first RTCP packet of a compound
	// packet (200 SR, 201 RR, ...) when Kind is KindRTCP.
	RTCPType uint8
	// RTPErr says why a UDP datagram that looked like RTP version 2 was not
	// decoded as RTP (Kind stays KindUDP); nil otherwise.
	RTPErr error

	// TCP is the payload of a TCP segment (IPProto 6; Kind stays
	// KindOther, and Src and Dst then carry the TCP ports), aliasing the
	// frame; TCPSeq and TCPFlags are the segment's sequence number and
	// flags. SIP over TCP is read from it; nothing on the RTP path is.
	TCP      []byte
	TCPSeq   uint32
	TCPFlags uint8

	// b is the stream table's view of the packet, filled in by Decode
	// for UDP: its key (flow is both IPv4 addresses as on the wire, or a
	// digest of both IPv6 addresses with keyV6; key2 the SSRC << 32 |
	// source port << 16 | destination port; key3 the outer VLAN ID,
	// NoVLAN when untagged, | keyValid when RTP) and the RTP fields (its
	// MACs only on Decode's straight pass).
	b Brief
}

const (
	keyValid = 1 << 16 // key3: Decode found RTP and set flow, key2 and mpt
	keyV6    = 1 << 17 // key3: flow is a digest of IPv6 addresses
)

// foldIPv6 digests a source and a destination IPv6 address for the stream
// table's key.
func foldIPv6(b *[32]byte) uint64 {
	le := binary.LittleEndian
	return le.Uint64(b[0:8]) ^ le.Uint64(b[8:16])<<1 ^ le.Uint64(b[16:24])<<2 ^ le.Uint64(b[24:32])<<3
}

// IPv4 returns the IPv4 source and destination addresses of a UDP
// datagram that Decode found over IPv4 (Kind KindUDP, KindRTP or
// KindRTCP), as numbers (a.b.c.d is a<<24 | b<<16 | c<<8 | d), and true.
// It is false for any other packet, for addresses 0.0.0.0 to 0.0.0.0, and
// for a Packet filled in by hand rather than by Decode: the caller then
// reads Src and Dst. It reads the copy of both addresses Decode keeps for
// the stream table, so it costs a few instructions where
// Src.Addr().As4() costs tens; it does not see a change made to Src or
// Dst after Decode.
func (p *Packet) IPv4() (src, dst uint32, ok bool) {
	if p.b.flow == 0 || p.b.key3&keyV6 != 0 || p.Kind == KindOther {
		return 0, 0, false
	}
	src, dst = flowIPv4(p.b.flow)
	return src, dst, true
}

// OuterVLAN returns the outermost VLAN tag and whether there is one.
func (p *Packet) OuterVLAN() (VLANTag, bool) {
	if p.NumVLANs == 0 {
		return VLANTag{}, false
	}
	return p.VLANs[0], true
}

const (
	etherTypeIPv4  = 0x0800
	etherTypeIPv6  = 0x86dd
	etherTypeVLAN  = 0x8100
	etherTypeQinQ  = 0x88a8
	etherTypeQinQ2 = 0x9100
)

// Decode decodes frame, of link type lt, into p without allocating. info may
// be nil; when it reports a VLAN tag stripped by the kernel, that tag is the
// outer one. A frame that is not UDP over IP decodes with Kind KindOther and
// a nil error; a truncated or malformed frame returns an error from
// errors.go.
//
// A UDP datagram whose ports belong to no well-known service (ServicePort:
// DNS, NBNS, mDNS, NTP, SNMP, syslog, DHCP, SIP, ...) and whose payload
// starts with version 2 is RTCP (KindRTCP) when its second byte is 192 to
// 223 (RFC 5761, section 4), and RTP (KindRTP) when that byte is neither
// that nor 72 to 76 and the header fits. Anything else over UDP is KindUDP.
//
// The frames that make up nearly all of a voice capture take one straight
// pass here: Ethernet, no tag or one 802.1Q tag (in the frame or from the
// kernel, not both), IPv4 without options or fragmentation, UDP, RTP
// without CSRCs, extension or padding. Anything else goes to the general
// path, which overwrites whatever the straight pass may have read; the
// fuzzer checks that both agree.
func (p *Packet) Decode(frame []byte, lt LinkType, info *Info) error {
	if lt != LinkEthernet {
		return p.decode(frame, lt, info)
	}
	off := p.b.decode(frame, info)
	if off == 0 {
		return p.decode(frame, lt, info)
	}
	p.fill(frame, off, info)
	return nil
}

// FromBrief makes p the Packet of frame, whose Brief b is (Brief.Decode
// took frame with info): the same Packet as Decode(frame, LinkEthernet,
// info), without reading and checking the headers again. A capture worker
// calls it for the frames a session wants, after the Brief went through
// the stream table and the filter.
// A Brief that Brief.Decode did not fill (no offset noted, or one the
// frame is too short for) makes p the frame decoded by Decode instead.
func (p *Packet) FromBrief(b *Brief, frame []byte, info *Info) {
	if off := int(b.off); off != 0 && len(frame) >= off+40+int(b.plen) {
		p.b = *b
		p.fill(frame, off, info)
		return
	}
	_ = p.Decode(frame, LinkEthernet, info)
}

// fill fills in the rest of p from frame, whose Brief p.b.decode took with
// the IPv4 header at off.
func (p *Packet) fill(frame []byte, off int, info *Info) {
	b := &p.b
	var tag VLANTag
	n := 0
	if off == 18 {
		tag, n = VLANTag{TPID: etherTypeVLAN, TCI: binary.BigEndian.Uint16(frame[14:16])}, 1
	} else if info != nil && info.VLANValid {
		tag, n = VLANTag{TPID: info.VLANTPID, TCI: info.VLANTCI}, 1
		if tag.TPID == 0 {
			tag.TPID = etherTypeVLAN
		}
	}
	p.Kind = KindRTP
	p.DstMAC = [6]byte(b.macs[0:6])
	p.SrcMAC = [6]byte(b.macs[6:12])
	p.HasMAC = true
	p.VLANs[0] = tag
	p.NumVLANs = n
	p.Src, p.Dst = b.Src(), b.Dst()
	p.IPProto = 17
	p.TOS = frame[off+1]
	end := off + 40 + int(b.plen)
	rtp := frame[off+28 : end : end]
	payload := rtp[12:]
	// The four pointer stores one after the other share one check of
	// the garbage collector's write barrier.
	p.UDP = rtp
	p.RTP.Payload = payload
	p.RTPErr = nil
	p.TCP = nil
	p.RTCPType = 0
	r := &p.RTP
	r.Marker = b.mpt&0x80 != 0
	r.PayloadType = b.mpt & 0x7f
	r.SequenceNumber = b.seq
	r.Timestamp = b.ts
	r.SSRC = uint32(b.key2 >> 32)
	r.CSRCCount, r.Extension, r.Padding = 0, false, false
}

// decode is the general path of Decode.
func (p *Packet) decode(frame []byte, lt LinkType, info *Info) error {
	p.Kind = KindOther
	p.b = Brief{}
	p.HasMAC = false
	p.NumVLANs = 0
	p.Src, p.Dst = netip.AddrPort{}, netip.AddrPort{}
	p.IPProto, p.TOS = 0, 0
	p.UDP = nil
	p.RTP = RTPHeader{}
	p.RTCPType = 0
	p.RTPErr = nil
	p.TCP = nil
	if info != nil {
		p.b.ns = info.Timestamp.UnixNano()
	}
	if info != nil && info.VLANValid {
		tpid := info.VLANTPID
		if tpid == 0 {
			tpid = etherTypeVLAN
		}
		p.VLANs[0] = VLANTag{TPID: tpid, TCI: info.VLANTCI}
		p.NumVLANs = 1
	}
	var etherType uint16
	var b []byte
	switch lt {
	case LinkEthernet:
		if len(frame) < 14 {
			return ErrTruncatedEthernet
		}
		copy(p.DstMAC[:], frame[0:6])
		copy(p.SrcMAC[:], frame[6:12])
		p.HasMAC = true
		p.b.macs = [12]byte(frame[0:12])
		etherType = binary.BigEndian.Uint16(frame[12:14])
		b = frame[14:]
	case LinkSLL:
		if len(frame) < 16 {
			return ErrTruncatedLink
		}
		if binary.BigEndian.Uint16(frame[2:4]) == 1 && binary.BigEndian.Uint16(frame[4:6]) == 6 {
			copy(p.SrcMAC[:], frame[6:12])
		}
		etherType = binary.BigEndian.Uint16(frame[14:16])
		b = frame[16:]
	case LinkSLL2:
		if len(frame) < 20 {
			return ErrTruncatedLink
		}
		etherType = binary.BigEndian.Uint16(frame[0:2])
		if binary.BigEndian.Uint16(frame[8:10]) == 1 && frame[11] == 6 {
			copy(p.SrcMAC[:], frame[12:18])
		}
		b = frame[20:]
	case LinkRaw:
		if len(frame) < 1 {
			return ErrTruncatedIP
		}
		switch frame[0] >> 4 {
		case 4:
			etherType = etherTypeIPv4
		case 6:
			etherType = etherTypeIPv6
		default:
			return ErrBadIPVersion
		}
		b = frame
	default:
		return ErrUnknownLinkType
	}
	for etherType == etherTypeVLAN || etherType == etherTypeQinQ || etherType == etherTypeQinQ2 {
		if len(b) < 4 {
			return ErrTruncatedVLAN
		}
		if p.NumVLANs < MaxVLANs {
			p.VLANs[p.NumVLANs] = VLANTag{TPID: etherType, TCI: binary.BigEndian.Uint16(b[0:2])}
			p.NumVLANs++
		}
		etherType = binary.BigEndian.Uint16(b[2:4])
		b = b[4:]
	}
	switch etherType {
	case etherTypeIPv4:
		return p.decodeIPv4(b)
	case etherTypeIPv6:
		return p.decodeIPv6(b)
	}
	return nil
}

func (p *Packet) decodeIPv4(b []byte) error {
	if len(b) < 20 {
		return ErrTruncatedIP
	}
	if b[0]>>4 != 4 {
		return ErrBadIPVersion
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || len(b) < total {
		return ErrTruncatedIP
	}
	p.TOS = b[1]
	p.IPProto = b[9]
	src := netip.AddrFrom4([4]byte(b[12:16]))
	dst := netip.AddrFrom4([4]byte(b[16:20]))
	p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	p.b.flow = binary.LittleEndian.Uint64(b[12:20])
	if frag := binary.BigEndian.Uint16(b[6:8]); frag&0x3fff != 0 {
		return ErrFragment
	}
	if p.IPProto == 6 {
		return p.decodeTCP(b[ihl:total:total], src, dst)
	}
	if p.IPProto != 17 {
		return nil
	}
	return p.decodeUDP(b[ihl:total:total], src, dst)
}

func (p *Packet) decodeIPv6(b []byte) error {
	if len(b) < 40 {
		return ErrTruncatedIP
	}
	if b[0]>>4 != 6 {
		return ErrBadIPVersion
	}
	p.TOS = b[0]<<4 | b[1]>>4
	plen := int(binary.BigEndian.Uint16(b[4:6]))
	if len(b) < 40+plen {
		return ErrTruncatedIP
	}
	src := netip.AddrFrom16([16]byte(b[8:24]))
	dst := netip.AddrFrom16([16]byte(b[24:40]))
	p.Src, p.Dst = netip.AddrPortFrom(src, 0), netip.AddrPortFrom(dst, 0)
	p.b.flow = foldIPv6((*[32]byte)(b[8:40]))
	p.b.key3 = keyV6
	next := b[6]
	rest := b[40 : 40+plen : 40+plen]
	// Skip the common extension headers.
	for i := 0; i < 8; i++ {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(rest) < 8 {
				return ErrTruncatedIP
			}
			n := (int(rest[1]) + 1) * 8
			if len(rest) < n {
				return ErrTruncatedIP
			}
			next = rest[0]
			rest = rest[n:]
			continue
		case 44: // fragment
			return ErrFragment
		}
		break
	}
	p.IPProto = next
	if next == 6 {
		return p.decodeTCP(rest, src, dst)
	}
	if next != 17 {
		return nil
	}
	return p.decodeUDP(rest, src, dst)
}

// decodeTCP fills the ports, sequence number, flags and payload of a TCP
// segment; the Kind stays KindOther. A header that does not fit is
// ErrTruncatedTCP.
func (p *Packet) decodeTCP(b []byte, src, dst netip.Addr) error {
	if len(b) < 20 {
		return ErrTruncatedTCP
	}
	off := int(b[12]>>4) * 4
	if off < 20 || off > len(b) {
		return ErrTruncatedTCP
	}
	p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:2]))
	p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:4]))
	p.TCPSeq = binary.BigEndian.Uint32(b[4:8])
	p.TCPFlags = b[13]
	p.TCP = b[off:]
	return nil
}

func (p *Packet) decodeUDP(b []byte, src, dst netip.Addr) error {
	if len(b) < 8 {
		return ErrTruncatedUDP
	}
	ulen := int(binary.BigEndian.Uint16(b[4:6]))
	if ulen < 8 || ulen > len(b) {
		return ErrTruncatedUDP
	}
	sport, dport := binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	p.Src = netip.AddrPortFrom(src, sport)
	p.Dst = netip.AddrPortFrom(dst, dport)
	vlan := uint16(NoVLAN)
	if p.NumVLANs != 0 {
		vlan = p.VLANs[0].TCI & 0x0fff
	}
	p.b.key2 = uint64(sport)<<16 | uint64(dport)
	p.b.key3 |= uint32(vlan)
	p.UDP = b[8:ulen:ulen]
	p.Kind = KindUDP
	if len(p.UDP) < 2 || p.UDP[0]>>6 != 2 || servicePorts2(uint32(sport)<<16|uint32(dport)) {
		return nil
	}
	// Version 2, then the second byte decides, as on the straight pass
	// (secondByteKind). A well-known service's port (heuristic.go) rules
	// out both RTP and RTCP first.
	switch secondByteKind(p.UDP[1]) {
	case KindRTCP:
		p.Kind = KindRTCP
		p.RTCPType = p.UDP[1]
		return nil
	case KindUDP:
		return nil
	}
	if err := p.RTP.Unmarshal(p.UDP); err != nil {
		p.RTPErr = err
		return nil
	}
	p.b.key2 |= uint64(p.RTP.SSRC) << 32
	p.b.key3 |= keyValid
	p.b.mpt = p.UDP[1]
	p.b.seq, p.b.ts, p.b.plen = p.RTP.SequenceNumber, p.RTP.Timestamp, uint32(len(p.RTP.Payload))
	p.Kind = KindRTP
	return nil
}

// RTCP packet types (RFC 3550) and the range RTCP packet types occupy
// when RTP and RTCP share a port (RFC 5761, section 4).
const (
	rtcpSR       = 200
	rtcpRR       = 201
	rtcpFirstMux = 192
	rtcpLastMux  = 223
)

// secondByteKind tells RTP from RTCP by the second byte of a UDP payload
// that starts with version 2; both paths of Decode ask it, so they cannot
// disagree. It returns:
//   - KindRTCP for 192 to 223: RFC 5761, section 4, reserves that range
//     for RTCP packet types when RTP and RTCP are told apart on one port,
//     which is what a SPAN capture must do. RTP with the marker bit set and
//     payload type 64 to 95 would collide with it, and RFC 5761 forbids
//     those payload types for that reason, so 0xCD and 0xCE are RTCP
//     (transport and payload-specific feedback), not marked RTP of payload
//     type 77 or 78.
//   - KindUDP for 72 to 76 (payload types that RFC 3551 leaves unassigned
//     to avoid RTCP's 200 to 204 when the marker bit is lost, as
//     Wireshark's RTP heuristic refuses them): neither RTP nor RTCP.
//   - KindRTP for anything else.
func secondByteKind(b byte) Kind {
	switch {
	case b >= rtcpFirstMux && b <= rtcpLastMux:
		return KindRTCP
	case b >= 72 && b <= 76:
		return KindUDP
	}
	return KindRTP
}

// Unmarshal decodes an RTP packet into h without allocating; h.Payload
// aliases b. Header extension and padding are validated against len(b).
func (h *RTPHeader) Unmarshal(b []byte) error {
	if len(b) < 12 {
		return ErrTruncatedRTP
	}
	if b[0]>>6 != 2 {
		return ErrBadRTPVersion
	}
	h.Padding = b[0]&0x20 != 0
	h.Extension = b[0]&0x10 != 0
	h.CSRCCount = b[0] & 0x0f
	h.Marker = b[1]&0x80 != 0
	h.PayloadType = b[1] & 0x7f
	h.SequenceNumber = binary.BigEndian.Uint16(b[2:4])
	h.Timestamp = binary.BigEndian.Uint32(b[4:8])
	h.SSRC = binary.BigEndian.Uint32(b[8:12])
	off := 12 + 4*int(h.CSRCCount)
	if len(b) < off {
		return ErrTruncatedRTP
	}
	if h.Extension {
		if len(b) < off+4 {
			return ErrTruncatedRTP
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:off+4]))
		if len(b) < off {
			return ErrTruncatedRTP
		}
	}
	end := len(b)
	if h.Padding {
		pad := int(b[end-1])
		if pad == 0 || end-pad < off {
			return ErrBadRTPPadding
		}
		end -= pad
	}
	h.Payload = b[off:end]
	return nil
}
