package gen

import (
	"encoding/binary"
	"net/netip"

	"github.com/pion/srtp/v3"
)

const (
	ethHeaderLen  = 14
	vlanTagLen    = 4
	ipv4HeaderLen = 20
	ipv6HeaderLen = 40
	udpHeaderLen  = 8
	rtpHeaderLen  = 12
	minFrameLen   = 60 // Ethernet minimum without FCS
)

// frameTemplate is the header stack of one stream, built once; per packet
// only lengths, IDs, checksums and RTP fields change.
type frameTemplate struct {
	buf    []byte // headers, then room for the payload
	ipOff  int
	udpOff int
	rtpOff int
	v6     bool
	pseudo uint32 // checksum of the pseudo-header's addresses and protocol
	pt     uint8
	// srtp, when set, encrypts every packet; err keeps the first
	// encryption error for the writer.
	srtp *srtp.Context
	enc  []byte
	err  error
}

func newFrameTemplate(c *Call, src, dst Endpoint, ssrc uint32) *frameTemplate {
	t := &frameTemplate{v6: !src.Addr.Addr().Unmap().Is4(), pt: c.rtpPayloadType()}
	b := make([]byte, 0, 128+maxPayload)
	b = append(b, dst.MAC[:]...)
	b = append(b, src.MAC[:]...)
	if c.OuterVLAN != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x88a8)
		b = binary.BigEndian.AppendUint16(b, uint16(c.OuterPriority)<<13|c.OuterVLAN)
	}
	if c.VLAN != 0 || c.Priority != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, uint16(c.Priority)<<13|c.VLAN)
	}
	sa, da := src.Addr.Addr().Unmap(), dst.Addr.Addr().Unmap()
	if t.v6 {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		t.ipOff = len(b)
		b = binary.BigEndian.AppendUint32(b, 6<<28|uint32(c.TOS)<<20)
		b = append(b, 0, 0, 17, 64) // payload length, next header UDP, hop limit
		s16, d16 := sa.As16(), da.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		t.ipOff = len(b)
		b = append(b, 0x45, c.TOS, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0) // DF, TTL 64, UDP
		s4, d4 := sa.As4(), da.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
	}
	t.udpOff = len(b)
	b = binary.BigEndian.AppendUint16(b, src.Addr.Port())
	b = binary.BigEndian.AppendUint16(b, dst.Addr.Port())
	b = append(b, 0, 0, 0, 0)
	t.rtpOff = len(b)
	b = append(b, 0x80, t.pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[t.rtpOff+8:], ssrc)
	t.buf = b
	t.pseudo = addrSum(sa) + addrSum(da) + 17
	return t
}

func addrSum(a netip.Addr) uint32 {
	var s uint32
	b := a.AsSlice()
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	return s
}

// build fills the template for one packet of payload type pt and returns
// the frame, which aliases t.buf until the next call.
func (t *frameTemplate) build(ipID uint16, pt uint8, seq uint16, ts uint32, marker bool, payload []byte) []byte {
	b := t.buf[:t.rtpOff+rtpHeaderLen]
	b = append(b, payload...)
	if t.srtp != nil {
		b = t.encrypt(b, pt, seq, ts, marker)
	}
	udpLen := len(b) - t.udpOff
	if t.v6 {
		binary.BigEndian.PutUint16(b[t.ipOff+4:], uint16(udpLen))
	} else {
		ip := b[t.ipOff : t.ipOff+ipv4HeaderLen]
		binary.BigEndian.PutUint16(ip[2:], uint16(ipv4HeaderLen+udpLen))
		binary.BigEndian.PutUint16(ip[4:], ipID)
		ip[10], ip[11] = 0, 0
		binary.BigEndian.PutUint16(ip[10:], ^fold(sum16(ip, 0)))
	}
	udp := b[t.udpOff:]
	binary.BigEndian.PutUint16(udp[4:], uint16(udpLen))
	udp[6], udp[7] = 0, 0
	rtp := udp[udpHeaderLen:]
	rtp[1] = pt
	if marker {
		rtp[1] |= 0x80
	}
	binary.BigEndian.PutUint16(rtp[2:], seq)
	binary.BigEndian.PutUint32(rtp[4:], ts)
	cs := ^fold(sum16(udp, t.pseudo+uint32(udpLen)))
	if cs == 0 {
		cs = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], cs)
	for len(b) < minFrameLen {
		b = append(b, 0)
	}
	return b
}

// sum16 adds b as big-endian 16-bit words to s (odd length padded with 0).
func sum16(b []byte, s uint32) uint32 {
	s64 := uint64(s)
	for len(b) >= 8 {
		s64 += uint64(binary.BigEndian.Uint16(b)) + uint64(binary.BigEndian.Uint16(b[2:])) +
			uint64(binary.BigEndian.Uint16(b[4:])) + uint64(binary.BigEndian.Uint16(b[6:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		s64 += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s64 += uint64(b[0]) << 8
	}
	for s64>>32 != 0 {
		s64 = s64&0xffffffff + s64>>32
	}
	return uint32(s64)
}

func fold(s uint32) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// encrypt replaces the RTP packet at the end of b (header fields not yet
// set) with its SRTP form.
func (t *frameTemplate) encrypt(b []byte, pt uint8, seq uint16, ts uint32, marker bool) []byte {
	rtp := b[t.rtpOff:]
	rtp[1] = pt
	if marker {
		rtp[1] |= 0x80
	}
	binary.BigEndian.PutUint16(rtp[2:], seq)
	binary.BigEndian.PutUint32(rtp[4:], ts)
	out, err := t.srtp.EncryptRTP(t.enc[:0], rtp, nil)
	if err != nil {
		if t.err == nil {
			t.err = err
		}
		return b
	}
	t.enc = out
	return append(b[:t.rtpOff], out...)
}

// newSRTPContext returns the SRTP context of a 30-byte SRTPKeys key.
func newSRTPContext(key []byte) (*srtp.Context, error) {
	return srtp.CreateContext(key[:16], key[16:], srtp.ProtectionProfileAes128CmHmacSha1_80)
}
