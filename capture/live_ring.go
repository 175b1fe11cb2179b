package capture

import (
	"encoding/binary"
	"time"
)

// The layout of a TPACKET_V3 ring block (linux/if_packet.h), in the host's
// byte order: a block descriptor, then packets, each a struct
// tpacket3_hdr, the link-layer address and the frame at tp_mac.
const (
	// struct tpacket_block_desc: version, offset_to_priv, then
	// tpacket_hdr_v1: block_status, num_pkts, offset_to_first_pkt.
	blockStatusOff   = 8
	blockNumPktsOff  = 12
	blockFirstPktOff = 16
	blockDescLen     = 20

	// struct tpacket3_hdr.
	tp3NextOffset = 0
	tp3Sec        = 4
	tp3Nsec       = 8
	tp3Snaplen    = 12
	tp3Len        = 16
	tp3Status     = 20
	tp3Mac        = 24
	tp3VLANTCI    = 32 // hv1.tp_vlan_tci
	tp3VLANTPID   = 36 // hv1.tp_vlan_tpid
	tp3HdrLen     = 48

	tpStatusVLANValid     = 1 << 4 // TP_STATUS_VLAN_VALID
	tpStatusVLANTPIDValid = 1 << 6 // TP_STATUS_VLAN_TPID_VALID
)

// blockWalk is the position of a reader in one ring block: the offset of
// the next packet and how many packets are left. The zero value is a
// walk with nothing left.
type blockWalk struct {
	pkt  uint32
	left uint32
}

// prefetchAhead is how far ahead of the packet being read next asks the
// processor for the block's memory, in packets of the current one's size:
// the kernel wrote the block on another CPU, and each packet's header is
// found only from the one before, so without a hint ahead every header
// is a cache miss waited for in turn.
const prefetchAhead = 8

// startBlock returns the walk of a block the kernel handed over, read
// from its descriptor; a block too short for its descriptor has nothing to
// walk.
func startBlock(block []byte) blockWalk {
	if len(block) < blockDescLen {
		return blockWalk{}
	}
	return blockWalk{
		pkt:  binary.NativeEndian.Uint32(block[blockFirstPktOff:]),
		left: binary.NativeEndian.Uint32(block[blockNumPktsOff:]),
	}
}

// next fills frames[i] and infos[i] with the block's next packets, up to
// min(len(frames), len(infos)), and returns how many it filled. The frames
// alias block. A packet header or frame that does not fit in the block, or
// a zero offset to a next packet, ends the walk there (the kernel never
// writes one; the checks keep a bad block from reading outside it or
// returning a packet twice).
func (w *blockWalk) next(block []byte, frames [][]byte, infos []Info) int {
	max := min(len(frames), len(infos))
	n := 0
	for n < max && w.left > 0 {
		off := uint64(w.pkt)
		if off+tp3HdrLen > uint64(len(block)) {
			w.left = 0
			break
		}
		h := block[off : off+tp3HdrLen]
		snap := binary.NativeEndian.Uint32(h[tp3Snaplen:])
		start := off + uint64(binary.NativeEndian.Uint16(h[tp3Mac:]))
		end := start + uint64(snap)
		if end > uint64(len(block)) {
			w.left = 0
			break
		}
		step := binary.NativeEndian.Uint32(h[tp3NextOffset:])
		// The lines of a packet a few ahead, if the packets are of this
		// one's size: hints independent of the chain of headers, so the
		// misses overlap instead of following each other.
		if ahead := off + uint64(step)*prefetchAhead; ahead < uint64(len(block)) {
			prefetchLines(&block[ahead], uintptr(min(step, 512)+63)/64)
		}
		frames[n] = block[start:end:end]
		status := binary.NativeEndian.Uint32(h[tp3Status:])
		in := &infos[n]
		in.Timestamp = time.Unix(int64(binary.NativeEndian.Uint32(h[tp3Sec:])), int64(binary.NativeEndian.Uint32(h[tp3Nsec:])))
		in.CaptureLength = int(snap)
		in.Length = int(binary.NativeEndian.Uint32(h[tp3Len:]))
		in.InterfaceIndex = 0
		in.VLANValid = status&tpStatusVLANValid != 0
		in.VLANTCI = uint16(binary.NativeEndian.Uint32(h[tp3VLANTCI:]))
		in.VLANTPID = 0
		if status&tpStatusVLANTPIDValid != 0 {
			in.VLANTPID = binary.NativeEndian.Uint16(h[tp3VLANTPID:])
		}
		n++
		w.left--
		if step == 0 {
			// The kernel writes 0 after the last packet only: a count
			// that says more would walk this packet again.
			w.left = 0
		}
		w.pkt += step
	}
	return n
}
