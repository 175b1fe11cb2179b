package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
	"time"
	"unsafe"
)

// ringPacket is one packet as the kernel writes it into a TPACKET_V3 block.
type ringPacket struct {
	sec, nsec   uint32
	frame       []byte
	wireLen     uint32
	vlanValid   bool
	vlanTCI     uint16
	tpidValid   bool
	vlanTPID    uint16
	macOffset   uint16 // tp_mac; 0 means the kernel's usual 82
	extraOffset uint32 // bytes added to tp_next_offset after the aligned frame
}

// buildBlock lays packets out in a block of size bytes as the kernel does:
// the descriptor, then each packet's header at a 16-byte aligned offset,
// its frame at tp_mac.
func buildBlock(t testing.TB, size int, pkts []ringPacket) []byte {
	t.Helper()
	b := make([]byte, size)
	ne := binary.NativeEndian
	first := uint32(48) // the kernel's offset_to_first_pkt, past the descriptor
	ne.PutUint32(b[blockStatusOff:], 1)
	ne.PutUint32(b[blockNumPktsOff:], uint32(len(pkts)))
	ne.PutUint32(b[blockFirstPktOff:], first)
	off := first
	for i, p := range pkts {
		mac := p.macOffset
		if mac == 0 {
			mac = 82
		}
		h := b[off:]
		end := (uint32(mac) + uint32(len(p.frame)) + 15) &^ 15
		next := end + p.extraOffset
		if i == len(pkts)-1 {
			next = 0
		}
		ne.PutUint32(h[tp3NextOffset:], next)
		ne.PutUint32(h[tp3Sec:], p.sec)
		ne.PutUint32(h[tp3Nsec:], p.nsec)
		ne.PutUint32(h[tp3Snaplen:], uint32(len(p.frame)))
		wire := p.wireLen
		if wire == 0 {
			wire = uint32(len(p.frame))
		}
		ne.PutUint32(h[tp3Len:], wire)
		var status uint32 = 1 // TP_STATUS_USER
		if p.vlanValid {
			status |= tpStatusVLANValid
		}
		if p.tpidValid {
			status |= tpStatusVLANTPIDValid
		}
		ne.PutUint32(h[tp3Status:], status)
		ne.PutUint16(h[tp3Mac:], mac)
		ne.PutUint16(h[tp3Mac+2:], mac+14)
		ne.PutUint32(h[tp3VLANTCI:], uint32(p.vlanTCI))
		ne.PutUint16(h[tp3VLANTPID:], p.vlanTPID)
		if int(off)+int(mac)+len(p.frame) > size {
			t.Fatalf("packet %d does not fit in a block of %d bytes", i, size)
		}
		copy(h[mac:], p.frame)
		off += next
	}
	return b
}

// inside reports whether frame, up to its capacity, lies in block.
func inside(block, frame []byte) bool {
	if len(block) == 0 {
		return len(frame) == 0
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(block)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(frame)))
	return p >= lo && p+uintptr(cap(frame)) <= lo+uintptr(len(block))
}

// TestBlockWalk walks blocks built as the kernel writes them, in batches
// smaller and larger than the block, and checks every frame and its
// capture information: the timestamp, both lengths, and the VLAN tag the
// kernel stripped (with its TPID only when the kernel says it is valid).
func TestBlockWalk(t *testing.T) {
	frame := func(i int, n int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, n) }
	pkts := []ringPacket{
		{sec: 1700000000, nsec: 1, frame: frame(0, 60)},
		{sec: 1700000000, nsec: 999999999, frame: frame(1, 214), wireLen: 214, vlanValid: true, vlanTCI: 5<<13 | 85},
		{sec: 1700000001, nsec: 500, frame: frame(2, 1514), wireLen: 9000, vlanValid: true, vlanTCI: 300, tpidValid: true, vlanTPID: 0x88a8},
		{sec: 1700000002, frame: frame(3, 1), macOffset: 66, extraOffset: 64, tpidValid: true, vlanTPID: 0x8100},
		{sec: 4294967295, nsec: 7, frame: frame(4, 218), vlanValid: true, vlanTCI: 0xffff},
	}
	for _, batch := range []int{1, 2, 3, 5, 16} {
		t.Run(fmt.Sprintf("batch %d", batch), func(t *testing.T) {
			block := buildBlock(t, 1<<14, pkts)
			w := startBlock(block)
			if w.left != uint32(len(pkts)) {
				t.Fatalf("startBlock: %d packets, want %d", w.left, len(pkts))
			}
			frames := make([][]byte, batch)
			infos := make([]Info, batch)
			var got int
			for rounds := 0; w.left > 0; rounds++ {
				if rounds > len(pkts) {
					t.Fatal("the walk does not end")
				}
				n := w.next(block, frames, infos)
				if n == 0 || n > batch {
					t.Fatalf("next returned %d frames with %d left, batch %d", n, w.left, batch)
				}
				for i := 0; i < n; i++ {
					p, f, in := pkts[got], frames[i], infos[i]
					if !bytes.Equal(f, p.frame) {
						t.Errorf("packet %d: frame of %d bytes %x..., want %d bytes of %x", got, len(f), f[:min(4, len(f))], len(p.frame), p.frame[0])
					}
					if cap(f) != len(f) {
						t.Errorf("packet %d: frame capacity %d reaches past its %d bytes", got, cap(f), len(f))
					}
					if !inside(block, f) {
						t.Errorf("packet %d: frame does not alias the block", got)
					}
					want := Info{
						Timestamp:     time.Unix(int64(p.sec), int64(p.nsec)),
						CaptureLength: len(p.frame),
						Length:        len(p.frame),
						VLANValid:     p.vlanValid,
						VLANTCI:       p.vlanTCI,
					}
					if p.wireLen != 0 {
						want.Length = int(p.wireLen)
					}
					if p.tpidValid {
						want.VLANTPID = p.vlanTPID
					}
					if !in.Timestamp.Equal(want.Timestamp) {
						t.Errorf("packet %d: timestamp %v, want %v", got, in.Timestamp, want.Timestamp)
					}
					in.Timestamp, want.Timestamp = time.Time{}, time.Time{}
					if in != want {
						t.Errorf("packet %d: info %+v, want %+v", got, in, want)
					}
					got++
				}
			}
			if got != len(pkts) {
				t.Errorf("walked %d packets, want %d", got, len(pkts))
			}
			if n := w.next(block, frames, infos); n != 0 {
				t.Errorf("next after the last packet returned %d frames", n)
			}
		})
	}
}

// TestBlockWalkBadBlock checks that a block whose descriptor or packet
// headers point outside it ends the walk at the last whole packet instead
// of reading outside the block.
func TestBlockWalkBadBlock(t *testing.T) {
	ne := binary.NativeEndian
	good := []ringPacket{{sec: 1, frame: make([]byte, 100)}, {sec: 2, frame: make([]byte, 100)}, {sec: 3, frame: make([]byte, 100)}}
	cases := []struct {
		name  string
		edit  func(b []byte)
		size  int
		wantN int
	}{
		{"descriptor only", func(b []byte) {}, blockDescLen - 1, 0},
		{"first packet past the end", func(b []byte) { ne.PutUint32(b[blockFirstPktOff:], 1<<31) }, 4096, 0},
		{"more packets than written", func(b []byte) { ne.PutUint32(b[blockNumPktsOff:], 1000) }, 4096, 3},
		{"frame past the end", func(b []byte) { ne.PutUint32(b[48+192+tp3Snaplen:], 1<<20) }, 4096, 1},
		{"mac offset past the end", func(b []byte) { ne.PutUint16(b[48+tp3Mac:], 0xffff) }, 4096, 0},
		{"next offset past the end", func(b []byte) { ne.PutUint32(b[48+tp3NextOffset:], 1<<31) }, 4096, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			block := buildBlock(t, 4096, good)
			c.edit(block)
			block = block[:c.size]
			w := startBlock(block)
			frames, infos := make([][]byte, 2), make([]Info, 2)
			total := 0
			for i := 0; i < 10 && w.left > 0; i++ {
				total += w.next(block, frames, infos)
			}
			if total != c.wantN || w.left != 0 {
				t.Errorf("walked %d packets, %d left; want %d and none left", total, w.left, c.wantN)
			}
		})
	}
}

// FuzzBlockWalk walks arbitrary bytes as a ring block: the walk must end,
// return no more packets than the descriptor counts, and every frame must
// lie inside the block.
func FuzzBlockWalk(f *testing.F) {
	f.Add(buildBlock(f, 1024, []ringPacket{{sec: 1, frame: make([]byte, 60)}, {sec: 2, frame: make([]byte, 214), vlanValid: true, vlanTCI: 85}}), uint8(1))
	f.Add(buildBlock(f, 4096, []ringPacket{{frame: make([]byte, 1514), tpidValid: true, vlanTPID: 0x88a8}, {frame: make([]byte, 1)}}), uint8(7))
	f.Add(make([]byte, blockDescLen), uint8(3))
	f.Fuzz(func(t *testing.T, block []byte, batch uint8) {
		frames := make([][]byte, int(batch)%17+1)
		infos := make([]Info, len(frames))
		w := startBlock(block)
		count := w.left
		var total uint64
		for w.left > 0 {
			n := w.next(block, frames, infos)
			total += uint64(n)
			if total > uint64(count) {
				t.Fatalf("walked %d packets of a block that holds %d", total, count)
			}
			if n == 0 && w.left > 0 {
				t.Fatal("next made no progress")
			}
			for _, fr := range frames[:n] {
				if !inside(block, fr) {
					t.Fatalf("frame of %d bytes outside the block", len(fr))
				}
			}
		}
	})
}

// BenchmarkBlockWalk walks a full 1 MiB block of 218-byte VLAN-tagged
// frames (as the kernel stripped the tag: 214 bytes with the tag in the
// header) in batches of 256, the capture server's batch: the ring's share
// of the per-packet cost, without the cache misses of a live ring. One op
// is one packet; for instruction counts run it under callgrind with a
// fixed -benchtime.
func BenchmarkBlockWalk(b *testing.B) {
	const blockSize = 1 << 20
	var pkts []ringPacket
	for used := 48; used+82+214+16 < blockSize; used += (82 + 214 + 15) &^ 15 {
		pkts = append(pkts, ringPacket{sec: 1700000000, nsec: uint32(len(pkts)) * 1000, frame: make([]byte, 214), vlanValid: true, vlanTCI: 5<<13 | 85})
	}
	block := buildBlock(b, blockSize, pkts)
	frames := make([][]byte, 256)
	infos := make([]Info, 256)
	b.SetBytes(214)
	b.ReportAllocs()
	b.ResetTimer()
	var w blockWalk
	vlans := 0
	for done := 0; done < b.N; {
		if w.left == 0 {
			w = startBlock(block)
		}
		n := w.next(block, frames, infos[:min(256, b.N-done)])
		for i := 0; i < n; i++ {
			if infos[i].VLANValid {
				vlans++
			}
		}
		done += n
	}
	if vlans != b.N {
		b.Fatalf("%d of %d packets had their VLAN tag", vlans, b.N)
	}
}
