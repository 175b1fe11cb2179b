// Package capturetest holds test doubles for package capture: a frame
// builder that writes Ethernet, cooked (SLL, SLL2) and raw frames carrying
// UDP and RTP over IPv4 or IPv6 with any stack of VLAN tags, DNS and NBNS
// messages (the non-RTP datagrams a SPAN port carries, also written by
// bench/gen), a Source that replays frames from memory, and a pcap writer
// for golden captures.
//
// Nothing here is safe for concurrent use unless said otherwise.
package capturetest

import (
	"encoding/binary"
	"io"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/silentmon/silentmon/capture"
)

// RTP describes an RTP header to build.
type RTP struct {
	Marker      bool
	PayloadType uint8
	Seq         uint16
	Timestamp   uint32
	SSRC        uint32
	CSRCs       []uint32
	// Extension, if not nil, is the header extension's data (a multiple of
	// 4 bytes) after its 4-byte header with profile ExtProfile.
	Extension  []byte
	ExtProfile uint16
	// Padding is the number of padding bytes (0: none); the last one holds
	// the count.
	Padding int
}

// Frame describes a frame to build. Zero fields take defaults: Ethernet,
// IPv4 10.0.0.1:40000 → 10.0.0.2:40002, 160 bytes of payload 0xff.
type Frame struct {
	LinkType capture.LinkType
	SrcMAC   [6]byte
	DstMAC   [6]byte
	VLANs    []capture.VLANTag // in-frame tags, outermost first
	Src, Dst netip.AddrPort
	TOS      uint8
	// IPv4Options are appended to the IPv4 header (a multiple of 4 bytes).
	IPv4Options []byte
	// FragmentOffset and MoreFragments set the IPv4 fragment fields.
	FragmentOffset uint16
	MoreFragments  bool
	// RTP, if not nil, is written before Payload.
	RTP     *RTP
	Payload []byte
	// UDPRaw, if not nil, replaces the RTP header and Payload.
	UDPRaw []byte
}

// Build returns the frame's bytes.
func Build(f Frame) []byte {
	if !f.Src.IsValid() {
		f.Src = netip.MustParseAddrPort("10.0.0.1:40000")
	}
	if !f.Dst.IsValid() {
		f.Dst = netip.MustParseAddrPort("10.0.0.2:40002")
	}
	if f.LinkType == 0 {
		f.LinkType = capture.LinkEthernet
	}
	udp := f.UDPRaw
	if udp == nil {
		if f.RTP != nil {
			udp = RTPBytes(*f.RTP, f.Payload)
		} else {
			udp = append([]byte(nil), f.Payload...)
		}
	}
	udpHdr := make([]byte, 8, 8+len(udp))
	binary.BigEndian.PutUint16(udpHdr[0:], f.Src.Port())
	binary.BigEndian.PutUint16(udpHdr[2:], f.Dst.Port())
	binary.BigEndian.PutUint16(udpHdr[4:], uint16(8+len(udp)))
	l4 := append(udpHdr, udp...)

	var ip []byte
	var etherType uint16
	if f.Src.Addr().Is4() {
		etherType = 0x0800
		ihl := 20 + len(f.IPv4Options)
		ip = make([]byte, ihl, ihl+len(l4))
		ip[0] = 0x40 | byte(ihl/4)
		ip[1] = f.TOS
		binary.BigEndian.PutUint16(ip[2:], uint16(ihl+len(l4)))
		frag := f.FragmentOffset & 0x1fff
		if f.MoreFragments {
			frag |= 0x2000
		}
		binary.BigEndian.PutUint16(ip[6:], frag)
		ip[8] = 64
		ip[9] = 17
		s, d := f.Src.Addr().As4(), f.Dst.Addr().As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		copy(ip[20:], f.IPv4Options)
		var sum uint32
		for i := 0; i < ihl; i += 2 {
			sum += uint32(binary.BigEndian.Uint16(ip[i:]))
		}
		for sum > 0xffff {
			sum = sum&0xffff + sum>>16
		}
		binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	} else {
		etherType = 0x86dd
		ip = make([]byte, 40, 40+len(l4))
		ip[0] = 0x60 | f.TOS>>4
		ip[1] = f.TOS << 4
		binary.BigEndian.PutUint16(ip[4:], uint16(len(l4)))
		ip[6] = 17
		ip[7] = 64
		s, d := f.Src.Addr().As16(), f.Dst.Addr().As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
	}
	ip = append(ip, l4...)

	var link []byte
	tags := make([]byte, 0, 4*len(f.VLANs))
	next := etherType
	for i := len(f.VLANs) - 1; i >= 0; i-- {
		t := make([]byte, 4)
		binary.BigEndian.PutUint16(t[0:], f.VLANs[i].TCI)
		binary.BigEndian.PutUint16(t[2:], next)
		tags = append(t, tags...)
		next = f.VLANs[i].TPID
	}
	switch f.LinkType {
	case capture.LinkEthernet:
		link = make([]byte, 14)
		copy(link[0:], f.DstMAC[:])
		copy(link[6:], f.SrcMAC[:])
		binary.BigEndian.PutUint16(link[12:], next)
	case capture.LinkSLL:
		link = make([]byte, 16)
		binary.BigEndian.PutUint16(link[2:], 1) // ARPHRD_ETHER
		binary.BigEndian.PutUint16(link[4:], 6)
		copy(link[6:], f.SrcMAC[:])
		binary.BigEndian.PutUint16(link[14:], next)
	case capture.LinkSLL2:
		link = make([]byte, 20)
		binary.BigEndian.PutUint16(link[0:], next)
		binary.BigEndian.PutUint32(link[4:], 2) // interface index
		binary.BigEndian.PutUint16(link[8:], 1) // ARPHRD_ETHER
		link[11] = 6
		copy(link[12:], f.SrcMAC[:])
	case capture.LinkRaw:
		return ip
	}
	out := append(link, tags...)
	return append(out, ip...)
}

// RTPBytes returns an RTP packet with header h and payload.
func RTPBytes(h RTP, payload []byte) []byte {
	b := make([]byte, 12, 12+4*len(h.CSRCs)+4+len(h.Extension)+len(payload)+h.Padding)
	b[0] = 2<<6 | byte(len(h.CSRCs)&0x0f)
	if h.Padding > 0 {
		b[0] |= 0x20
	}
	if h.Extension != nil {
		b[0] |= 0x10
	}
	b[1] = h.PayloadType & 0x7f
	if h.Marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], h.Seq)
	binary.BigEndian.PutUint32(b[4:], h.Timestamp)
	binary.BigEndian.PutUint32(b[8:], h.SSRC)
	for _, c := range h.CSRCs {
		b = binary.BigEndian.AppendUint32(b, c)
	}
	if h.Extension != nil {
		b = binary.BigEndian.AppendUint16(b, h.ExtProfile)
		b = binary.BigEndian.AppendUint16(b, uint16(len(h.Extension)/4))
		b = append(b, h.Extension...)
	}
	b = append(b, payload...)
	if h.Padding > 0 {
		for i := 0; i < h.Padding-1; i++ {
			b = append(b, 0)
		}
		b = append(b, byte(h.Padding))
	}
	return b
}

// Source replays frames from memory. It implements capture.Source; after
// the last frame ReadBatch returns io.EOF.
type Source struct {
	Frames [][]byte
	Infos  []capture.Info // optional, parallel to Frames
	Link   capture.LinkType
	next   int
	closed bool
}

var _ capture.Source = (*Source)(nil)

// ReadBatch implements capture.Source.
func (s *Source) ReadBatch(frames [][]byte, infos []capture.Info) (int, error) {
	if s.closed {
		return 0, io.ErrClosedPipe
	}
	n := 0
	for n < len(frames) && s.next < len(s.Frames) {
		frames[n] = s.Frames[s.next]
		if s.next < len(s.Infos) {
			infos[n] = s.Infos[s.next]
		} else {
			infos[n] = capture.Info{CaptureLength: len(frames[n]), Length: len(frames[n])}
		}
		n++
		s.next++
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// LinkType implements capture.Source.
func (s *Source) LinkType() capture.LinkType {
	if s.Link == 0 {
		return capture.LinkEthernet
	}
	return s.Link
}

// Close implements capture.Source.
func (s *Source) Close() error { s.closed = true; return nil }

// WritePcap writes frames, with capture times times, as a pcap file of
// link type lt; nanos selects nanosecond timestamps.
func WritePcap(w io.Writer, lt capture.LinkType, nanos bool, frames [][]byte, times []time.Time) error {
	var pw *pcapgo.Writer
	if nanos {
		pw = pcapgo.NewWriterNanos(w)
	} else {
		pw = pcapgo.NewWriter(w)
	}
	if err := pw.WriteFileHeader(65535, layers.LinkType(lt)); err != nil {
		return err
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: times[i], CaptureLength: len(f), Length: len(f)}
		if err := pw.WritePacket(ci, f); err != nil {
			return err
		}
	}
	return nil
}

// WritePcapng writes frames as a pcapng file with one interface of link
// type lt.
func WritePcapng(w io.Writer, lt capture.LinkType, frames [][]byte, times []time.Time) error {
	pw, err := pcapgo.NewNgWriter(w, layers.LinkType(lt))
	if err != nil {
		return err
	}
	for i, f := range frames {
		ci := gopacket.CaptureInfo{Timestamp: times[i], CaptureLength: len(f), Length: len(f)}
		if err := pw.WritePacket(ci, f); err != nil {
			return err
		}
	}
	return pw.Flush()
}

// Service is one datagram of a well-known UDP service whose first byte
// falls in 0x80-0xbf, so that it passes a test for RTP version 2 (and
// mostly the whole RTP heuristic): what a SPAN port carries besides calls.
type Service struct {
	Name     string
	Src, Dst netip.AddrPort
	Payload  []byte
}

// Frame returns the service's datagram as an Ethernet frame.
func (s Service) Frame() Frame {
	return Frame{SrcMAC: [6]byte{2, 0, 0, 0, 0, 0x51}, DstMAC: [6]byte{2, 0, 0, 0, 0, 0x52}, Src: s.Src, Dst: s.Dst, UDPRaw: s.Payload}
}

// Services returns n datagrams (n ≥ 1) of each of these services, in turn:
// DNS query and response (53), NBNS name query broadcast (137), mDNS
// (5353), LLMNR (5355), NTP client and server (123, leap indicator 2), IKE
// SA_INIT (500, initiator SPI starting 0x9c), SNMP (161), SNMP trap (162),
// syslog (514), DHCP (67/68) and DHCPv6 (546/547). Transaction IDs, SPIs
// and sequence numbers count up from one datagram of a service to the
// next, so that read as RTP they would even look like a stream. The first
// five are well-formed messages of their protocols; the others carry a
// first byte that the protocol does not use there but a datagram on that
// port may still hold.
func Services(n int) []Service {
	n = max(n, 1)
	ap := netip.MustParseAddrPort
	var out []Service
	for i := 0; i < n; i++ {
		k := uint16(i)
		ntp := func(first byte) []byte {
			b := make([]byte, 48)
			b[0], b[1], b[2], b[3] = first, 2, 6, 0xec
			binary.BigEndian.PutUint32(b[40:], 0xe9000000+uint32(i))
			return b
		}
		ike := make([]byte, 28)
		binary.BigEndian.PutUint64(ike[0:], 0x9c5a3e01_00000000+uint64(i)) // initiator SPI
		ike[17], ike[18], ike[19] = 0x20, 34, 0x08                         // version 2.0, IKE_SA_INIT, initiator
		binary.BigEndian.PutUint32(ike[24:], 28)
		snmp := []byte{0xa0, 0x1c, 0x02, 0x04, 0x80, 0, byte(k >> 8), byte(k), 0x02, 0x01, 0, 0x02, 0x01, 0, 0x30, 0x0e, 0x30, 0x0c, 0x06, 0x08, 0x2b, 6, 1, 2, 1, 1, 1, 0, 0x05, 0}
		syslog := append([]byte{0x80, 0, byte(k >> 8), byte(k)}, "<134>1 2026-01-02T03:04:05Z pbx sip - - - registration refreshed"...)
		dhcp := make([]byte, 240)
		dhcp[0], dhcp[1], dhcp[2] = 0x81, 1, 6 // op (not BOOTREQUEST), htype Ethernet, hlen
		binary.BigEndian.PutUint32(dhcp[4:], 0x3903f326+uint32(i))
		copy(dhcp[236:], []byte{99, 130, 83, 99})
		dhcp6 := []byte{0x81, 0x10, byte(k >> 8), byte(k), 0, 1, 0, 10, 0, 3, 0, 1, 0x02, 0, 0, 0, 0, 0x51}
		out = append(out,
			Service{"DNS query", ap("10.0.0.1:40001"), ap("10.0.0.53:53"), DNS{ID: 0x8a00 + k, Flags: 0x0100, Name: "sip.example.com"}.Bytes()},
			Service{"DNS response", ap("10.0.0.53:53"), ap("10.0.0.1:40001"), DNS{ID: 0x8a00 + k, Flags: 0x8180, Name: "sip.example.com", Answer: netip.AddrFrom4([4]byte{192, 0, 2, 10}), TTL: 300}.Bytes()},
			Service{"NBNS name query", ap("10.0.0.1:137"), ap("10.0.0.255:137"), NBNSQuery(0x9b00+k, "PHONE1")},
			Service{"mDNS query", ap("10.0.0.1:5353"), ap("224.0.0.251:5353"), DNS{ID: 0xa000 + k, Name: "_sip._udp.local", Type: 12}.Bytes()},
			Service{"LLMNR query", ap("10.0.0.1:40003"), ap("224.0.0.252:5355"), DNS{ID: 0x8b00 + k, Name: "phone1"}.Bytes()},
			Service{"NTP client", ap("10.0.0.1:123"), ap("10.0.0.123:123"), ntp(0xa3)},
			Service{"NTP server", ap("10.0.0.123:123"), ap("10.0.0.1:123"), ntp(0xa4)},
			Service{"IKE SA_INIT", ap("10.0.0.1:500"), ap("10.0.0.5:500"), ike},
			Service{"SNMP get", ap("10.0.0.1:40005"), ap("10.0.0.161:161"), snmp},
			Service{"SNMP trap", ap("10.0.0.161:40007"), ap("10.0.0.1:162"), snmp},
			Service{"syslog", ap("10.0.0.1:514"), ap("10.0.0.9:514"), syslog},
			Service{"DHCP", ap("10.0.0.1:68"), ap("10.0.0.67:67"), dhcp},
			Service{"DHCPv6", ap("[fe80::1]:546"), ap("[ff02::1:2]:547"), dhcp6},
		)
	}
	return out
}
