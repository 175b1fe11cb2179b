package capture

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
	"unsafe"
)

// Brief is what the packet path needs of an RTP packet, and no more: the
// stream table's key (outer VLAN, both IPv4 addresses and UDP ports,
// SSRC), the capture time, the RTP marker, payload type, sequence number,
// timestamp and payload length, both MAC addresses, and, once a
// StreamTable accounted it, its stream's id and mark. A capture worker
// decodes every frame into a Brief (64 bytes, one cache line, a handful
// of stores), updates the stream table and asks the filter with it, and
// decodes a whole Packet only for the few frames a session wants and
// those Brief.Decode leaves to Decode.
//
// The zero value is an empty Brief that no table or filter matches. A
// Brief holds no reference to the frame it was decoded from. It is a
// value: copy it freely; it is not safe for concurrent writes.
type Brief struct {
	flow uint64   // both IPv4 addresses as on the wire (in a Packet: a digest of IPv6 ones with keyV6)
	key2 uint64   // SSRC << 32 | source port << 16 | destination port
	ns   int64    // capture time, Unix ns (Info.Timestamp; 0 without an Info)
	key3 uint32   // outer VLAN ID (NoVLAN when untagged) | keyValid | keyV6; 0 when not RTP
	ts   uint32   // RTP timestamp
	plen uint32   // RTP payload length
	sid  uint32   // the stream's id in the StreamTable that accounted it, plus 1; 0 when none did
	mark uint32   // that stream's mark as UpdateBriefs found it
	seq  uint16   // RTP sequence number
	mpt  uint8    // RTP marker and payload type (the header's second byte)
	off  uint8    // where the IPv4 header starts in the frame (14 or 18), from Brief.Decode
	macs [12]byte // destination then source MAC, as in the frame
	_    [4]byte
}

// A Brief is one cache line.
var _ [64 - unsafe.Sizeof(Brief{})]byte

// Decode decodes frame, an Ethernet frame, into b when it is what nearly
// every frame of a voice capture is, and reports whether it was: no tag or
// one 802.1Q tag (in the frame or, from the kernel, in info, not both),
// IPv4 without options or fragmentation, UDP between ports of no
// well-known service (ServicePort), RTP version 2 without CSRCs, extension
// or padding whose second byte secondByteKind takes for RTP, and lengths
// that agree. For such a frame Packet.Decode gives the same packet (Kind
// KindRTP); for any other it returns false and leaves b's contents
// undefined: Packet.Decode then decides what the frame is. info may be nil
// (a capture time of 0). It does not allocate.
func (b *Brief) Decode(frame []byte, info *Info) bool {
	return b.decode(frame, info) != 0
}

// decode is Decode, returning the offset of the IPv4 header (14 or 18),
// or 0 when the frame is not for the fast path.
func (b *Brief) decode(frame []byte, info *Info) int {
	if info == nil {
		info = &noInfo
	}
	bs, frames := (*[1]Brief)(unsafe.Pointer(b))[:], (*[1][]byte)(unsafe.Pointer(&frame))[:]
	if DecodeBriefs(bs, frames, (*[1]Info)(unsafe.Pointer(info))[:]) == 0 {
		return 0
	}
	return int(b.off)
}

// noInfo is the Info of a frame decoded without one: untagged, captured
// at the Unix epoch (a Brief's time 0). Read only.
var noInfo = Info{Timestamp: time.Unix(0, 0)}

// DecodeBriefs decodes frames[i], captured as infos[i] says, into bs[i],
// for i from 0 for as long as Brief.Decode takes the frames, and returns
// how many it took: a capture worker takes the run of common RTP frames
// of a block at once, then decodes the frame that ends the run whole. It
// is Brief.Decode's only implementation, a loop without a call.
func DecodeBriefs(bs []Brief, frames [][]byte, infos []Info) int {
	n := min(len(bs), len(frames), len(infos))
	bs, frames, infos = bs[:n], frames[:n], infos[:n]
	for i := range bs {
		frame, info := frames[i], &infos[i]
		if len(frame) < 14+40 {
			return i
		}
		key3 := uint32(NoVLAN) | keyValid
		tagged := info.VLANValid
		if tagged {
			key3 = uint32(info.VLANTCI&0x0fff) | keyValid
		}
		off := 14
		et := binary.BigEndian.Uint16(frame[12:14])
		if et == etherTypeVLAN && !tagged {
			if len(frame) < 18+40 {
				return i
			}
			key3 = uint32(binary.BigEndian.Uint16(frame[14:16])&0x0fff) | keyValid
			et = binary.BigEndian.Uint16(frame[16:18])
			off = 18
		}
		// IPv4 header without options (20), UDP header (8), RTP header
		// (12): one length check, then constant offsets.
		h := (*[40]byte)(frame[off:])
		le := binary.LittleEndian
		// Version 4 and 20-byte header, not a fragment (flags other
		// than DF, offset), UDP, RTP version 2 without padding,
		// extension or CSRCs, and a second byte that secondByteKind
		// takes for RTP.
		mpt := h[29]
		if et != etherTypeIPv4 || le.Uint64(h[0:8])&0xff3f0000000000ff != 0x45 || h[9] != 17 || h[28] != 0x80 ||
			notRTPSecondByte[mpt>>6]>>(mpt&63)&1 != 0 {
			return i
		}
		total := int(binary.BigEndian.Uint16(h[2:4]))
		ulen := int(binary.BigEndian.Uint16(h[24:26]))
		ports := binary.BigEndian.Uint32(h[20:24]) // source << 16 | destination
		if total > len(frame)-off || ulen < 8+12 || ulen > total-20 || servicePorts2(ports) {
			return i
		}
		b := &bs[i]
		b.flow = le.Uint64(h[12:20])
		b.key2 = uint64(binary.BigEndian.Uint32(h[36:40]))<<32 | uint64(ports)
		b.ns = info.Timestamp.UnixNano()
		b.key3 = key3
		b.ts = binary.BigEndian.Uint32(h[32:36])
		b.plen = uint32(ulen - 8 - 12)
		b.sid, b.mark = 0, 0
		b.seq = binary.BigEndian.Uint16(h[30:32])
		b.mpt = mpt
		b.off = uint8(off)
		b.macs = [12]byte(frame[0:12])
	}
	return n
}

// notRTPSecondByte has bit b set for each RTP second byte b (marker and
// payload type) that secondByteKind does not take for RTP.
var notRTPSecondByte = func() (m [4]uint64) {
	for b := range 256 {
		if secondByteKind(byte(b)) != KindRTP {
			m[b>>6] |= 1 << (b & 63)
		}
	}
	return m
}()

// Time returns the capture time in nanoseconds since the Unix epoch
// (Info.Timestamp's), 0 for a Brief decoded without an Info.
func (b *Brief) Time() int64 { return b.ns }

// Stream returns the id of b's stream in the StreamTable whose
// UpdateBriefs accounted b last, and the stream's mark as it was then
// (see StreamTable.Mark); -1 and 0 when no table accounted it.
func (b *Brief) Stream() (id int32, mark uint32) { return int32(b.sid) - 1, b.mark }

// IPv4 returns the source and destination IPv4 addresses as numbers (a.b.c.d
// is a<<24 | b<<16 | c<<8 | d) and true; false for a Brief that holds no
// IPv4 RTP packet.
func (b *Brief) IPv4() (src, dst uint32, ok bool) {
	if b.key3&keyValid == 0 || b.key3&keyV6 != 0 {
		return 0, 0, false
	}
	src, dst = flowIPv4(b.flow)
	return src, dst, true
}

// flowIPv4 returns the two IPv4 addresses of a key's flow word as numbers.
func flowIPv4(flow uint64) (src, dst uint32) {
	return bits.ReverseBytes32(uint32(flow)), bits.ReverseBytes32(uint32(flow >> 32))
}

// Src and Dst return the source and destination address and port of a
// Brief that holds an IPv4 RTP packet.
func (b *Brief) Src() netip.AddrPort {
	return netip.AddrPortFrom(wireAddr4(uint32(b.flow)), b.SrcPort())
}
func (b *Brief) Dst() netip.AddrPort {
	return netip.AddrPortFrom(wireAddr4(uint32(b.flow>>32)), b.DstPort())
}

// wireAddr4 is the IPv4 address whose four bytes, as on the wire, read a
// as a little-endian number.
func wireAddr4(a uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(a), byte(a >> 8), byte(a >> 16), byte(a >> 24)})
}

// SrcPort and DstPort return the UDP ports.
func (b *Brief) SrcPort() uint16 { return uint16(b.key2 >> 16) }
func (b *Brief) DstPort() uint16 { return uint16(b.key2) }

// VLAN returns the outer VLAN ID and whether the packet was tagged.
func (b *Brief) VLAN() (uint16, bool) {
	id := uint16(b.key3)
	return id, id != NoVLAN
}

// SrcMAC and DstMAC return the frame's MAC addresses.
func (b *Brief) SrcMAC() [6]byte { return [6]byte(b.macs[6:12]) }
func (b *Brief) DstMAC() [6]byte { return [6]byte(b.macs[0:6]) }

// SSRC, SequenceNumber, Timestamp, PayloadType and Marker return the RTP
// header's fields; PayloadLen the length of its payload.
func (b *Brief) SSRC() uint32           { return uint32(b.key2 >> 32) }
func (b *Brief) SequenceNumber() uint16 { return b.seq }
func (b *Brief) Timestamp() uint32      { return b.ts }
func (b *Brief) PayloadType() uint8     { return b.mpt & 0x7f }
func (b *Brief) Marker() bool           { return b.mpt&0x80 != 0 }
func (b *Brief) PayloadLen() int        { return int(b.plen) }

// PrefetchFrames asks the processor for the bytes Brief.Decode reads of
// each frame (its first 58), without waiting for them: a capture worker
// calls it on the next frames of a block while it takes the current ones,
// so that their headers are on the way from memory meanwhile. A hint: it
// never faults, whatever the slices hold.
func PrefetchFrames(frames [][]byte) {
	if len(frames) > 0 {
		prefetchFrames(&frames[0], len(frames))
	}
}
