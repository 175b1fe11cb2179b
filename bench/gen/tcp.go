package gen

import (
	"encoding/binary"
	"net/netip"
)

const tcpHeaderLen = 20

// appendTCP appends d's TCP header and payload to b, which holds the
// frame up to the IP header, and pads the frame to the Ethernet minimum.
func appendTCP(b []byte, d *Datagram, sa, da netip.Addr) []byte {
	h := d.TCP
	tcp := len(b)
	b = binary.BigEndian.AppendUint16(b, d.Src.Addr.Port())
	b = binary.BigEndian.AppendUint16(b, d.Dst.Addr.Port())
	b = binary.BigEndian.AppendUint32(b, h.Seq)
	b = binary.BigEndian.AppendUint32(b, h.Ack)
	b = append(b, tcpHeaderLen/4<<4, h.Flags)
	b = binary.BigEndian.AppendUint16(b, h.Window)
	b = append(b, 0, 0, 0, 0) // checksum, urgent pointer
	b = append(b, d.Payload...)
	n := len(b) - tcp
	binary.BigEndian.PutUint16(b[tcp+16:], ^fold(sum16(b[tcp:], addrSum(sa)+addrSum(da)+6+uint32(n))))
	for len(b) < minFrameLen {
		b = append(b, 0)
	}
	return b
}
