package nic

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Frame layout of a test frame: Ethernet, one 802.1Q tag, IPv4, UDP, RTP
// (PCMU, 20 ms of µ-law silence) whose payload starts with the marker.
const (
	ethLen     = 14
	vlanLen    = 4
	ipv4Len    = 20
	udpLen     = 8
	rtpLen     = 12
	PayloadLen = 160 // one 20 ms G.711 packet
	// FrameLen is the length of a test frame on the wire, without FCS.
	FrameLen = ethLen + vlanLen + ipv4Len + udpLen + rtpLen + PayloadLen

	etherTypeIPv4 = 0x0800
	etherTypeVLAN = 0x8100
)

// Marker fields: the first bytes of the RTP payload of every test frame.
const (
	markerMagic = "SMNIC1"
	markerLen   = len(markerMagic) + 4 + 2 + 2 // magic, run, index, total
)

// Defaults of a test frame, after the sample frame of the original
// procedure (UDP source port 21562, RTP, VLAN 85, priority 5).
const (
	DefaultVLAN     = 85
	DefaultPriority = 5
	DefaultSrcPort  = 21562
	DefaultDstPort  = 16384
	testSSRC        = 0x534d4e43 // "SMNC"
)

// Broadcast is the Ethernet broadcast address.
var Broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// FrameSpec describes one test frame. The zero value of an address or port
// field takes the default named in its comment.
type FrameSpec struct {
	Dst      [6]byte // destination MAC; all zero: broadcast
	Src      [6]byte // source MAC
	VLAN     uint16  // VLAN ID, 0 to 4095 (0: priority-tagged frame)
	Priority uint8   // 802.1p priority code point, 0 to 7
	RunID    uint32  // identifies one run of the test
	Index    uint16  // index of the frame in the run, from 0
	Total    uint16  // frames in the run
	SrcIP    netip.Addr
	DstIP    netip.Addr // IPv4; defaults 10.85.0.1 and 10.85.0.2
	SrcPort  uint16     // default DefaultSrcPort
	DstPort  uint16     // default DefaultDstPort
}

var (
	defaultSrcIP = netip.AddrFrom4([4]byte{10, 85, 0, 1})
	defaultDstIP = netip.AddrFrom4([4]byte{10, 85, 0, 2})
)

// BuildFrame writes the test frame described by s into b and returns its
// length, FrameLen. It does not allocate. b must hold FrameLen bytes; the
// VLAN ID must fit in 12 bits and the priority in 3.
func BuildFrame(b []byte, s *FrameSpec) (int, error) {
	if len(b) < FrameLen {
		return 0, fmt.Errorf("build test frame: buffer of %d bytes, need %d: %w", len(b), FrameLen, ErrFrameTooShort)
	}
	if s.VLAN > 4095 {
		return 0, fmt.Errorf("build test frame: VLAN ID %d is above 4095", s.VLAN)
	}
	if s.Priority > 7 {
		return 0, fmt.Errorf("build test frame: priority %d is above 7", s.Priority)
	}
	srcIP, dstIP := s.SrcIP, s.DstIP
	if !srcIP.Is4() {
		srcIP = defaultSrcIP
	}
	if !dstIP.Is4() {
		dstIP = defaultDstIP
	}
	sport, dport := s.SrcPort, s.DstPort
	if sport == 0 {
		sport = DefaultSrcPort
	}
	if dport == 0 {
		dport = DefaultDstPort
	}
	b = b[:FrameLen]
	dst := s.Dst
	if dst == ([6]byte{}) {
		dst = Broadcast
	}
	copy(b[0:6], dst[:])
	copy(b[6:12], s.Src[:])
	be := binary.BigEndian
	be.PutUint16(b[12:14], etherTypeVLAN)
	be.PutUint16(b[14:16], uint16(s.Priority)<<13|s.VLAN)
	be.PutUint16(b[16:18], etherTypeIPv4)

	ip := b[18 : 18+ipv4Len]
	ip[0] = 0x45
	ip[1] = 0xb8 // DSCP EF, as voice is marked
	be.PutUint16(ip[2:4], ipv4Len+udpLen+rtpLen+PayloadLen)
	be.PutUint16(ip[4:6], s.Index)
	be.PutUint16(ip[6:8], 0x4000) // don't fragment
	ip[8] = 64
	ip[9] = 17
	ip[10], ip[11] = 0, 0
	a4, d4 := srcIP.As4(), dstIP.As4()
	copy(ip[12:16], a4[:])
	copy(ip[16:20], d4[:])
	be.PutUint16(ip[10:12], ipChecksum(ip))

	udp := b[18+ipv4Len : 18+ipv4Len+udpLen]
	be.PutUint16(udp[0:2], sport)
	be.PutUint16(udp[2:4], dport)
	be.PutUint16(udp[4:6], udpLen+rtpLen+PayloadLen)
	be.PutUint16(udp[6:8], 0) // no checksum (allowed for IPv4)

	rtp := b[18+ipv4Len+udpLen:]
	rtp[0] = 0x80 // version 2
	rtp[1] = 0    // PCMU
	if s.Index == 0 {
		rtp[1] |= 0x80 // marker on the first packet of the talk spurt
	}
	be.PutUint16(rtp[2:4], s.Index)
	be.PutUint32(rtp[4:8], uint32(s.Index)*PayloadLen)
	be.PutUint32(rtp[8:12], testSSRC)
	pl := rtp[rtpLen:]
	n := copy(pl, markerMagic)
	be.PutUint32(pl[n:], s.RunID)
	be.PutUint16(pl[n+4:], s.Index)
	be.PutUint16(pl[n+6:], s.Total)
	copy(pl[markerLen:], silence[:])
	return FrameLen, nil
}

// silence is µ-law digital silence, the rest of a test frame's payload.
var silence = func() (b [PayloadLen - markerLen]byte) {
	for i := range b {
		b[i] = 0xff
	}
	return b
}()

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// Marker is what a test frame's RTP payload says about itself.
type Marker struct {
	RunID uint32
	Index uint16
	Total uint16
}

// ParseMarker reads the marker of a test frame from a UDP payload (the RTP
// packet). It reports false for anything else. It does not allocate.
func ParseMarker(udpPayload []byte) (Marker, bool) {
	if len(udpPayload) < rtpLen+markerLen || udpPayload[0]>>6 != 2 {
		return Marker{}, false
	}
	cc := int(udpPayload[0] & 0x0f)
	off := rtpLen + 4*cc
	if len(udpPayload) < off+markerLen || string(udpPayload[off:off+len(markerMagic)]) != markerMagic {
		return Marker{}, false
	}
	p := udpPayload[off+len(markerMagic):]
	be := binary.BigEndian
	return Marker{RunID: be.Uint32(p[0:4]), Index: be.Uint16(p[4:6]), Total: be.Uint16(p[6:8])}, true
}

// ParseMAC parses a 6-byte MAC address in any of the forms people copy from
// tools: 00:d0:59:d8:f7:d9, 00-D0-59-D8-F7-D9 (Windows ipconfig),
// 00d0.59d8.f7d9 (Cisco) or 00D059d8f7d9 (twelve hex digits). The error
// wraps ErrBadMAC and names s.
func ParseMAC(s string) ([6]byte, error) {
	var mac [6]byte
	t := strings.TrimSpace(s)
	if len(t) == 12 {
		if b, err := hex.DecodeString(t); err == nil {
			copy(mac[:], b)
			return mac, nil
		}
	}
	hw, err := net.ParseMAC(t)
	if err != nil || len(hw) != 6 {
		return mac, fmt.Errorf("%q is %w such as 00:d0:59:d8:f7:d9", s, ErrBadMAC)
	}
	copy(mac[:], hw)
	return mac, nil
}

// FormatMAC formats mac as six colon-separated lower-case hex pairs.
func FormatMAC(mac [6]byte) string { return net.HardwareAddr(mac[:]).String() }

// RewriteDst sets the destination MAC of the Ethernet frame b, as the
// original procedure has the analyser retarget the sample frame.
func RewriteDst(b []byte, dst [6]byte) error {
	if len(b) < ethLen {
		return fmt.Errorf("rewrite destination of a %d-byte frame: %w", len(b), ErrFrameTooShort)
	}
	copy(b[0:6], dst[:])
	return nil
}

// RewriteSrc sets the source MAC of the Ethernet frame b.
func RewriteSrc(b []byte, src [6]byte) error {
	if len(b) < ethLen {
		return fmt.Errorf("rewrite source of a %d-byte frame: %w", len(b), ErrFrameTooShort)
	}
	copy(b[6:12], src[:])
	return nil
}
