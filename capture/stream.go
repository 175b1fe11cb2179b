package capture

import (
	"encoding/binary"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"
	"unsafe"
)

// NoVLAN is StreamKey.VLAN for an untagged stream.
const NoVLAN = 0xffff

// StreamKey identifies an RTP stream: outer VLAN, UDP 5-tuple and SSRC.
type StreamKey struct {
	VLAN     uint16 // outer VLAN ID, or NoVLAN
	Src, Dst netip.AddrPort
	SSRC     uint32
}

// brief returns the stream table's view of p, an RTP packet, with its RTP
// fields taken from p.RTP, so that a change made to them after Decode
// counts: p's own Brief, brought up to date, for a Packet from Decode
// (its key is Decode's); for a Packet put together by hand rather than by
// Decode, a copy in *tmp with the key made from Src, Dst, SSRC and the
// outer VLAN (never kept in p, which the caller may change).
func (p *Packet) brief(tmp *Brief) *Brief {
	b := &p.b
	if b.key3&keyValid == 0 {
		*tmp = Brief{}
		b = tmp
		vlan := uint16(NoVLAN)
		if p.NumVLANs != 0 {
			vlan = p.VLANs[0].TCI & 0x0fff
		}
		b.flow, b.key2, b.key3 = streamKey(p.Src, p.Dst, p.RTP.SSRC, vlan)
	}
	r := &p.RTP
	b.mpt = r.PayloadType & 0x7f
	if r.Marker {
		b.mpt |= 0x80
	}
	b.seq, b.ts, b.plen = r.SequenceNumber, r.Timestamp, uint32(len(r.Payload))
	return b
}

// streamKey returns the stream table's key words of a stream, as Decode
// fills them in.
func streamKey(srcAP, dstAP netip.AddrPort, ssrc uint32, vlan uint16) (flow, key2 uint64, key3 uint32) {
	src, dst := srcAP.Addr(), dstAP.Addr()
	key3 = uint32(vlan) | keyValid
	if src.Is4() && dst.Is4() {
		s, d := src.As4(), dst.As4()
		flow = uint64(binary.LittleEndian.Uint32(s[:])) | uint64(binary.LittleEndian.Uint32(d[:]))<<32
	} else {
		var b [32]byte
		*(*[16]byte)(b[:16]), *(*[16]byte)(b[16:]) = src.As16(), dst.As16()
		flow = foldIPv6(&b)
		key3 |= keyV6
	}
	key2 = uint64(ssrc)<<32 | uint64(srcAP.Port())<<16 | uint64(dstAP.Port())
	return flow, key2, key3
}

// hash mixes a packet's key with the table's two secret seeds: one
// 64x64→128 bit multiplication whose halves are folded (as wyhash does),
// so that keys colliding in one table do not collide in another.
func hash(flow, key2 uint64, key3 uint32, s0, s1 uint64) uint64 {
	hi, lo := bits.Mul64(flow^s0, key2^s1^uint64(key3)<<7)
	return hi ^ lo
}

// StreamStats is a snapshot of one stream's statistics.
//
// Two families of figures are kept. The RFC 3550 ones (appendix A.1 and
// A.8) use extended sequence numbers: Expected counts from the lowest to
// the highest sequence number seen, Lost = Expected - Packets (negative
// with duplicates), Jitter is the interarrival jitter of section 6.4.1 in
// arrival order. The Wireshark-compatible ones (WS*) reproduce what
// `tshark -z rtp,streams` prints, quirks included (a reordered first packet
// counts as a sequence wrap there), so that figures can be checked against
// it.
type StreamStats struct {
	StreamKey
	PayloadType uint8
	Codec       string
	ClockRate   uint32
	First, Last time.Time // capture times of the first and last packets
	Packets     uint64
	Bytes       uint64 // RTP payload bytes

	BaseSeq    uint32 // lowest extended sequence number seen
	HighestSeq uint32 // highest extended sequence number seen (cycles<<16 | seq)
	Expected   int64
	Lost       int64
	Duplicates uint64 // packets whose sequence number was already seen
	OutOfOrder uint64 // packets older than the highest sequence number seen
	// Jitter is the RFC 3550 interarrival jitter (section 6.4.1) in ms, in
	// arrival order: each packet is compared with the previous one whose
	// timestamp is not older than the stream's first (as Wireshark does).
	Jitter   float64
	MaxDelta float64 // largest gap between consecutive arrivals, ms

	// LostNetwork and LostCapture split the RFC 3550 cumulative loss
	// (Lost, expected - received, taken as 0 when duplicates make it
	// negative), so LostNetwork + LostCapture = max(Lost, 0): a reordered
	// packet that arrives in the end is not lost. LostCapture counts the
	// packets missing at sequence gaps that overlap a kernel drop (the
	// capture's drop counter moved between the stream's previous packet
	// and the one after the gap), at most as many as the kernel dropped
	// then; the rest of the loss happened on the network.
	LostNetwork uint64
	LostCapture uint64
	// Sequential is true once two packets with consecutive sequence numbers
	// arrived one after the other: the probation of RFC 3550 appendix A.1
	// (MIN_SEQUENTIAL 2). A UDP flow taken for RTP by chance rarely passes
	// it; a single stray RTP packet does not.
	Sequential bool

	WSLost       int64   // tshark's Lost
	WSMaxDelta   float64 // tshark's Max Delta (ms)
	WSMaxJitter  float64 // tshark's Max Jitter (ms)
	WSMeanJitter float64 // tshark's Mean Jitter (ms)
}

// slot is the hot part of one stream, in the table's dense slot array: the
// key check and every figure an in-order packet changes, in 128 bytes
// aligned to 128, so that a packet of a known stream touches its index
// entry and one aligned pair of cache lines (which the L2 adjacent-line
// prefetcher fetches together) and nothing else. What only gaps,
// reordering, duplicates, payload-type changes and snapshots need lives in
// the stream's cold entry.
//
// Times are nanoseconds since the table's epoch, except the Wireshark
// figures, which are float64 milliseconds computed as tshark computes them.
type slot struct {
	flow        uint64 // Brief.flow
	key2        uint64 // Brief.key2
	lastNs      int64  // arrival of the last packet
	packets     uint64 // also tshark's packet count
	bytes       uint64
	maxDelta    int64  // ns, between consecutive arrivals
	drops       uint64 // capture drops counted when the last packet came
	wsTime      float64
	lastNominal float64
	jitter      float64
	wsMaxDelta  float64
	maxJitter   float64
	meanJitter  float64
	key3        uint32 // Brief.key3; 0 for an empty slot
	mark        uint32 // the caller's (Mark)
	firstTS     uint32 // RTP timestamp of the first packet
	run         uint16 // in-order packets since the cold entry's maxExt and window were brought up to date
	maxSeq      uint16 // uint16(maxExt + run)
	fastEnd     uint16 // the in-order path takes sequence numbers up to this one (none if maxSeq)
	pt          uint8  // payload type of the last packet
	fastMPT     uint8  // Brief.mpt the in-order path takes, or noFastMPT
	under       bool   // tshark's under flag (sequence wrapped below start_seq_nr)
}

// noFastMPT is a marker and payload type no RTP packet has (Decode takes
// 72-76 for RTCP).
const noFastMPT = 0x80 | 72

// The slot must stay one aligned pair of cache lines (prefetchSlots
// counts on 128 bytes exactly).
var _ [128 - unsafe.Sizeof(slot{})]byte
var _ [unsafe.Sizeof(slot{}) - 128]byte

// cold is the part of a stream that an in-order packet does not touch.
type cold struct {
	key      StreamKey
	firstNs  int64
	maxExt   int64     // extended highest sequence number, less slot.run
	minExt   int64     // extended lowest sequence number
	window   [2]uint64 // bit i: maxExt-i was seen (as of maxExt, less slot.run)
	dups     uint64
	ooo      uint64
	lostCap  uint64 // packets missing at gaps that overlap a kernel drop, at most the drops
	cycles   uint32 // tshark's sequence cycles
	startSeq uint16 // tshark's start_seq_nr
	stopSeq  uint16 // sequence number of the last packet unless slot.run > 0
	seqOK    bool   // two consecutive sequence numbers arrived in a row (also when slot.run > 0)
}

// tickMs is, per 7-bit payload type, float64(rate/1000): the divisor
// Wireshark uses to turn RTP timestamp units into milliseconds (0: no
// clock rate).
var tickMs [128]float64

func init() {
	for pt := range tickMs {
		tickMs[pt] = float64(ClockRate(uint8(pt)) / 1000)
	}
}

func isCN(pt uint8) bool { return pt == 13 || pt == 19 }

// StreamTableConfig configures a StreamTable. Zero fields take the
// defaults written next to them.
type StreamTableConfig struct {
	// MaxStreams caps the streams tracked at once (default 100000); packets
	// of further streams are counted in Overflow and otherwise ignored.
	MaxStreams int
	// IdleTimeout is how long a stream may stay silent before Expire
	// forgets it (default 60 s).
	IdleTimeout time.Duration
	// Drops, if not nil, is the capture's running count of kernel drops
	// (LiveSource keeps one); it splits the loss into network and capture
	// loss (StreamStats.LostCapture).
	Drops *atomic.Uint64
}

// StreamTable tracks RTP streams keyed by (outer VLAN, 5-tuple, SSRC).
// Memory is bounded by MaxStreams. A StreamTable is not safe for concurrent
// use: keep one per capture worker (fanout sends all packets of a flow to
// the same worker) and merge their snapshots.
//
// Layout: an open-addressing index of 8-byte entries (linear probing, at
// most half full; each entry holds the upper half of the key's hash, so a
// collision rarely costs a look at a slot) points into a dense array of
// 128-byte hot slots; a parallel dense array holds the cold entries. The
// index stays small (8 MiB of entries for a million streams would be the
// first to fall out of the caches); the slots are as few as the streams, so
// their cache and TLB footprint is the smallest the hot state allows.
type StreamTable struct {
	cfg      StreamTableConfig
	index    []uint64 // open addressing, linear probing: hash>>32<<32 | slot+1; 0 empty
	slots    []slot   // dense; slots[i] and cold[i] are one stream, key3 0 when free
	mask     uint64
	seed     [2]uint64
	n        int // streams in use
	cold     []cold
	free     []int32 // unused cold entries
	epoch    int64   // Unix ns; 0 until set
	overflow uint64
	expired  uint64
}

// minSlots keeps the slot array a large allocation (32 KiB and more),
// which the Go allocator aligns to a page, hence to 128 bytes
// (TestSlotAlignment checks it).
const minSlots = 256

// minIndex is the smallest index (entries).
const minIndex = 1024

// NewStreamTable returns an empty table.
func NewStreamTable(cfg StreamTableConfig) *StreamTable {
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 100000
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	t := &StreamTable{cfg: cfg, seed: [2]uint64{rand.Uint64(), rand.Uint64()}}
	t.slots = make([]slot, 0, minSlots)
	t.rebuild(minIndex)
	return t
}

// SetEpoch sets the time from which arrival times are measured, before the
// first Update. Wireshark measures from the first frame of a capture; an
// analysis that must match it to the microsecond sets the epoch to that
// frame's time. Without it the first RTP packet is the epoch.
func (t *StreamTable) SetEpoch(ts time.Time) {
	if t.epoch == 0 {
		t.epoch = ts.UnixNano()
	}
}

// Len returns the number of streams tracked.
func (t *StreamTable) Len() int { return t.n }

// Overflow returns the number of packets ignored because MaxStreams
// streams were already tracked.
func (t *StreamTable) Overflow() uint64 { return t.overflow }

// Expired returns the number of streams forgotten by Expire.
func (t *StreamTable) Expired() uint64 { return t.expired }

// rebuild makes an index of size entries (a power of two) for the used
// slots.
func (t *StreamTable) rebuild(size int) {
	t.index = make([]uint64, size)
	t.mask = uint64(size - 1)
	defer adviseHuge(unsafe.Pointer(&t.index[0]), uintptr(size)*8)
	for i := range t.slots {
		if s := &t.slots[i]; s.key3 != 0 {
			h := hash(s.flow, s.key2, s.key3, t.seed[0], t.seed[1])
			j := h & t.mask
			for t.index[j] != 0 {
				j = (j + 1) & t.mask
			}
			t.index[j] = h&^0xffffffff | uint64(i+1)
		}
	}
}

// Update accounts one packet that Decode found to be RTP (Kind KindRTP),
// captured at ts. It does not allocate once the stream exists, and returns
// false when the packet was not RTP or the table was full.
func (t *StreamTable) Update(p *Packet, ts time.Time) bool {
	if p.Kind != KindRTP {
		return false
	}
	var tmp Brief
	b := p.brief(&tmp)
	b.ns = ts.UnixNano()
	if b.key3&keyV6 != 0 {
		// An IPv6 stream's key is compared in full, with the Packet.
		return t.update(b, p, hash(b.flow, b.key2, b.key3, t.seed[0], t.seed[1]), t.drops()) >= 0
	}
	return t.updateChunk((*[1]Brief)(unsafe.Pointer(b))[:]) == 1
}

// drops returns the capture's count of kernel drops, 0 without one.
func (t *StreamTable) drops() uint64 {
	if t.cfg.Drops != nil {
		return t.cfg.Drops.Load()
	}
	return 0
}

// update is Update of b, a packet of an IPv6 stream (updateChunk takes
// the IPv4 ones), of hash h, when drops kernel drops had been counted; p is
// the Packet b was taken from: its key is compared in full. It returns the
// stream's id (its slot), or -1 when the table was full.
func (t *StreamTable) update(b *Brief, p *Packet, h uint64, drops uint64) int32 {
	now := b.ns - t.epoch // the epoch is set with the first stream
	for j := h & t.mask; ; j = (j + 1) & t.mask {
		e := t.index[j]
		if e == 0 {
			return t.insert(b, p, h, j, now, drops)
		}
		if (e^h)>>32 != 0 {
			continue
		}
		i := uint32(e) - 1
		s := &t.slots[i]
		if s.key3 != b.key3 || s.flow != b.flow || s.key2 != b.key2 || !t.cold[i].key.equal(b, p) {
			continue
		}
		s.update(&t.cold[i], b, now, drops)
		return int32(i)
	}
}

// equal reports whether k is the key of packet p, whose brief is b.
func (k *StreamKey) equal(b *Brief, p *Packet) bool {
	return k.SSRC == p.RTP.SSRC && k.Src == p.Src && k.Dst == p.Dst && uint32(k.VLAN) == b.key3&0xffff
}

// insert starts b's stream, of hash h, at the empty index entry j; p is
// b's Packet, needed for an IPv6 key, or nil.
func (t *StreamTable) insert(b *Brief, p *Packet, h, j uint64, now int64, drops uint64) int32 {
	if t.n >= t.cfg.MaxStreams {
		t.overflow++
		return -1
	}
	var ci int32
	if n := len(t.free); n > 0 {
		ci = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if len(t.slots) == cap(t.slots) {
			// Grow by hand: append would not keep the 128-byte alignment.
			slots := make([]slot, len(t.slots), 2*cap(t.slots))
			copy(slots, t.slots)
			adviseHuge(unsafe.Pointer(unsafe.SliceData(slots)), uintptr(cap(slots))*unsafe.Sizeof(slot{}))
			t.slots = slots
		}
		t.slots = t.slots[:len(t.slots)+1]
		t.cold = append(t.cold, cold{})
		ci = int32(len(t.cold) - 1)
	}
	t.index[j] = h&^0xffffffff | uint64(ci+1)
	s := &t.slots[ci]
	if t.epoch == 0 {
		t.epoch, now = now, 0 // no stream yet, so now is Unix ns
	}
	c := &t.cold[ci]
	*s = slot{
		flow: b.flow, key2: b.key2, key3: b.key3,
		lastNs: now, packets: 1, bytes: uint64(b.plen), drops: drops,
		wsTime: nsToMs(now), firstTS: b.ts, maxSeq: b.seq, pt: b.PayloadType(),
	}
	key := StreamKey{VLAN: uint16(b.key3), SSRC: b.SSRC()}
	if p != nil {
		key.Src, key.Dst = p.Src, p.Dst
	} else {
		key.Src, key.Dst = b.Src(), b.Dst()
	}
	*c = cold{
		key:     key,
		firstNs: now, maxExt: int64(b.seq) + 1<<32, // room below for early packets
		startSeq: b.seq, stopSeq: b.seq,
	}
	c.minExt = c.maxExt
	c.window[0] = 1
	s.setFast(c)
	t.n++
	if 2*t.n > len(t.index) {
		t.rebuild(2 * len(t.index))
	}
	return ci
}

// UpdateBatch is Update for a batch of decoded packets (those whose Kind
// is not KindRTP are skipped), captured at times[i]; it returns how many it
// accounted. It takes them as UpdateBriefs does, in order.
func (t *StreamTable) UpdateBatch(pkts []Packet, times []time.Time) int {
	var bs [briefChunk]Brief
	n, k := 0, 0
	for i := range min(len(pkts), len(times)) {
		p := &pkts[i]
		if p.Kind != KindRTP {
			continue
		}
		bs[k] = *p.brief(&bs[k])
		if bs[k].key3&keyV6 != 0 {
			// An IPv6 stream's key is compared in full, with the Packet.
			n += t.updateChunk(bs[:k])
			k = 0
			if t.Update(p, times[i]) {
				n++
			}
			continue
		}
		bs[k].ns = times[i].UnixNano()
		if k++; k == briefChunk {
			n += t.updateChunk(bs[:k])
			k = 0
		}
	}
	return n + t.updateChunk(bs[:k])
}

// UpdateBriefs is Update for a batch of packets that Brief.Decode took
// (a zero Brief is skipped), each captured at its Brief's Time; it returns
// how many it accounted, and gives each Brief its stream's id and mark
// (Brief.Stream; -1 and 0 when it was not accounted: a zero Brief, or the
// table full).
//
// It hashes a chunk of the batch and asks the processor for each packet's
// index line, then, before each group of batchAhead packets it updates,
// for the slots of the next group (whose index lines have arrived by
// then): the cache misses of a large table overlap instead of following
// one another, and a prefetch, unlike a load, does not hold the processor
// back while its line is on the way. The next packet in order of a known
// stream, nearly every packet, is taken in the chunk's loop itself,
// without a call. It does not allocate once the streams exist.
func (t *StreamTable) UpdateBriefs(bs []Brief) int {
	n := 0
	for base := 0; base < len(bs); base += briefChunk {
		n += t.updateChunk(bs[base:min(base+briefChunk, len(bs))])
	}
	return n
}

// briefChunk is how many packets UpdateBriefs hashes and prefetches at once.
const briefChunk = 32

// updateChunk is UpdateBriefs of at most briefChunk IPv4 packets (or zero
// Briefs), the kernel's drops read once for them.
func (t *StreamTable) updateChunk(bs []Brief) int {
	if len(bs) == 0 {
		return 0
	}
	var hs [briefChunk]uint64
	bs = bs[:min(len(bs), briefChunk)]
	s0, s1 := t.seed[0], t.seed[1]
	for i := range bs {
		hs[i] = hash(bs[i].flow, bs[i].key2, bs[i].key3, s0, s1)
	}
	prefetchIndex(&t.index[0], &hs[0], len(bs), t.mask)
	drops := t.drops()
	n := 0
	// The slots of the first group of packets, then, before each group,
	// those of the next, whose index lines have arrived by then: one
	// call per group, so that the loop's registers are not spilled for
	// every packet.
	hp := unsafe.Pointer(&hs[0])
	t.prefetchSlots((*uint64)(hp), min(batchAhead, len(bs)))
	for i := range bs {
		if i%batchAhead == 0 && i+batchAhead < len(bs) {
			t.prefetchSlots((*uint64)(unsafe.Add(hp, (i+batchAhead)*8)), min(batchAhead, len(bs)-i-batchAhead))
		}
		b, h := &bs[i], hs[i]
		if b.key3&(keyValid|keyV6) != keyValid {
			b.sid, b.mark = 0, 0
			continue // a zero Brief; an IPv6 key is compared with its Packet (update)
		}
		now := b.ns - t.epoch // the epoch is set with the first stream
		// The index holds only valid slot numbers and its length is
		// mask+1, so neither read needs a bounds check.
		var s *slot
		var si uint32
		j := h & t.mask
		for {
			e := *(*uint64)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(t.index)), j*8))
			if e == 0 {
				break
			}
			if (e^h)>>32 == 0 {
				si = uint32(e) - 1
				c := (*slot)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(t.slots)), uintptr(si)*unsafe.Sizeof(slot{})))
				if c.key3 == b.key3 && c.flow == b.flow && c.key2 == b.key2 {
					s = c
					break
				}
			}
			j = (j + 1) & t.mask
		}
		if s == nil {
			b.sid, b.mark = 0, 0 // a new stream is unmarked
			if id := t.insert(b, nil, h, j, now, drops); id >= 0 {
				b.sid = uint32(id) + 1
				n++
			}
			continue
		}
		b.sid, b.mark = si+1, s.mark
		n++
		// The next packet in order: the next sequence number, not past
		// fastEnd (no wrap, no change of tshark's wrap state), the
		// payload type of the last packet, with a clock rate, not
		// comfort noise, no marker, and a timestamp less than 2^31 after
		// the stream's first, modulo 2^32 (so in tshark's time sequence,
		// across a timestamp wrap too). Any other takes the general path.
		seq := b.seq
		if seq-1 != s.maxSeq || s.maxSeq >= s.fastEnd || b.mpt != s.fastMPT || b.ts-s.firstTS >= 0x80000000 {
			s.update(&t.cold[si], b, now, drops)
			continue
		}
		if d := now - s.lastNs; d > s.maxDelta {
			s.maxDelta = d
		}
		s.lastNs = now
		cur := nsToMs(now)
		nominal := float64(b.ts-s.firstTS) / tickMs[s.pt&0x7f]
		diff := math.Abs(cur - (s.wsTime + (nominal - s.lastNominal)))
		jit := (15*s.jitter + diff) / 16
		s.jitter = jit
		if d := cur - s.wsTime; d > s.wsMaxDelta {
			s.wsMaxDelta = d
		}
		s.lastNominal = nominal
		if jit > s.maxJitter {
			s.maxJitter = jit
		}
		np := s.packets
		s.meanJitter = (s.meanJitter*float64(int64(np-1)) + jit) / float64(int64(np))
		s.wsTime = cur
		s.maxSeq = seq
		s.run++
		s.packets = np + 1
		s.bytes += uint64(b.plen)
		s.drops = drops
	}
	return n
}

// Mark returns the mark of stream id, an id UpdateBriefs gave (Brief.Stream)
// since the last Expire: a number the caller keeps with the stream (smserver's
// worker, which sessions its packets go to), 0 for a stream it has not
// marked. SetMark sets it; ClearMarks sets every stream's to 0.
func (t *StreamTable) Mark(id int32) uint32 { return t.slots[id].mark }

func (t *StreamTable) SetMark(id int32, m uint32) { t.slots[id].mark = m }

func (t *StreamTable) ClearMarks() {
	for i := range t.slots {
		t.slots[i].mark = 0
	}
}

// batchAhead is how many packets updateChunk asks for the slots of at
// once, a group ahead of the one it updates.
const batchAhead = 4

// prefetchSlots asks for both cache lines of the slot that each of the n
// hashes from hs on points at through its first index entry, if that
// entry is the hash's (most are: the index is at most half full). The
// index holds only valid slot numbers, and its length is mask+1.
func (t *StreamTable) prefetchSlots(hs *uint64, n int) {
	prefetchSlots(unsafe.SliceData(t.index), (*byte)(unsafe.Pointer(unsafe.SliceData(t.slots))), hs, n, t.mask)
}

// Stats returns the statistics of the stream k and whether it is
// tracked. It looks the one stream up, as Update does, rather than walking
// the table: a status page that shows a few monitored streams out of
// 100,000 calls Stats for each instead of taking a Snapshot. It does not
// allocate.
func (t *StreamTable) Stats(k StreamKey) (StreamStats, bool) {
	flow, key2, key3 := streamKey(k.Src, k.Dst, k.SSRC, k.VLAN)
	h := hash(flow, key2, key3, t.seed[0], t.seed[1])
	for j := h & t.mask; ; j = (j + 1) & t.mask {
		e := t.index[j]
		if e == 0 {
			return StreamStats{}, false
		}
		if (e^h)>>32 != 0 {
			continue
		}
		i := uint32(e) - 1
		if s := &t.slots[i]; s.key3 == key3 && s.flow == flow && s.key2 == key2 && t.cold[i].key == k {
			return s.stats(&t.cold[i], t.epoch), true
		}
	}
}

// Expire forgets the streams silent since now - IdleTimeout and returns
// how many. Call it from the goroutine that calls Update, about once a
// second; it walks the whole table.
func (t *StreamTable) Expire(now time.Time) int {
	if t.epoch == 0 {
		return 0
	}
	limit := now.UnixNano() - t.epoch - int64(t.cfg.IdleTimeout)
	n := 0
	for i := range t.slots {
		s := &t.slots[i]
		if s.key3 != 0 && s.lastNs < limit {
			t.cold[i] = cold{}
			t.free = append(t.free, int32(i))
			*s = slot{}
			n++
		}
	}
	t.expired += uint64(n)
	t.n -= n
	if n > 0 {
		t.rebuild(len(t.index)) // linear probing cannot leave holes
	}
	return n
}

// Snapshot appends the statistics of every tracked stream to dst, sorted
// by first packet then SSRC, and returns it.
func (t *StreamTable) Snapshot(dst []StreamStats) []StreamStats {
	start := len(dst)
	for i := range t.slots {
		if s := &t.slots[i]; s.key3 != 0 {
			dst = append(dst, s.stats(&t.cold[i], t.epoch))
		}
	}
	out := dst[start:]
	sort.Slice(out, func(i, j int) bool {
		return out[i].First.Before(out[j].First) || (out[i].First.Equal(out[j].First) && out[i].SSRC < out[j].SSRC)
	})
	return dst
}

// setFast sets what the in-order path of update checks, after a packet
// that took the general path: fastMPT, the last packet's payload type if it
// has a clock rate and is not comfort noise, and fastEnd, the highest
// sequence number up to which the next in-order packets leave tshark's wrap
// state alone (counting up from maxSeq; 65535 at most, so that the
// extended sequence number never carries on that path).
func (s *slot) setFast(c *cold) {
	s.fastMPT = noFastMPT
	if tickMs[s.pt&0x7f] != 0 && !isCN(s.pt) {
		s.fastMPT = s.pt
	}
	s.fastEnd = s.maxSeq // none
	switch {
	case !s.under && s.maxSeq != 65535 && s.maxSeq+1 >= c.startSeq:
		s.fastEnd = 65535
	case s.under && s.maxSeq < c.startSeq:
		s.fastEnd = c.startSeq
	}
}

// catchUp brings the cold entry's maxExt, window and stopSeq up to date
// with the in-order packets counted in s.run.
func (s *slot) catchUp(c *cold) {
	r := uint64(s.run)
	if r == 0 {
		return
	}
	c.maxExt += int64(r)
	c.window = shiftWindow(c.window, r, true)
	c.stopSeq = s.maxSeq
	c.seqOK = true
	s.run = 0
}

// shiftWindow moves a duplicate window on by d > 0 sequence numbers; the
// bits of the d new ones are set if seen, else clear.
func shiftWindow(w [2]uint64, d uint64, seen bool) [2]uint64 {
	var fill uint64
	if seen {
		fill = ^uint64(0)
	}
	switch {
	case d >= 128:
		return [2]uint64{fill, fill}
	case d >= 64:
		return [2]uint64{fill, w[0]<<(d-64) | fill&(1<<(d-64)-1)}
	}
	return [2]uint64{w[0]<<d | fill&(1<<d-1), w[1]<<d | w[0]>>(64-d)}
}

// update is the general path: every packet that is not the next in order
// of an unchanged stream.
func (s *slot) update(c *cold, b *Brief, now int64, drops uint64) {
	s.catchUp(c)
	delta := now - s.lastNs
	if delta > s.maxDelta {
		s.maxDelta = delta
	}
	s.lastNs = now

	// Extended sequence number nearest the highest seen.
	ext := c.maxExt + int64(int16(b.seq-uint16(c.maxExt)))
	switch d := ext - c.maxExt; {
	case d > 0:
		if d == 1 {
			c.seqOK = true
		} else if drops != s.drops {
			// Of the gap, no more than the kernel dropped since the
			// stream's previous packet can have been lost in capture.
			c.lostCap += min(uint64(d-1), drops-s.drops)
		}
		c.window = shiftWindow(c.window, uint64(d), false)
		c.window[0] |= 1
		c.maxExt = ext
	case d == 0:
		c.dups++
	default:
		back := uint64(-d)
		if back < 128 {
			w, bit := &c.window[back/64], uint64(1)<<(back%64)
			if *w&bit != 0 {
				c.dups++
			} else {
				*w |= bit
				c.ooo++
			}
		} else {
			c.ooo++
		}
		if ext < c.minExt {
			c.minExt = ext
		}
	}
	s.maxSeq = uint16(c.maxExt)
	s.drops = drops
	s.wsUpdate(c, b, now)
	s.packets++
	s.bytes += uint64(b.plen)
	s.setFast(c)
}

// nsToMs converts the way Wireshark's nstime_to_msec does, so rounding
// matches.
func nsToMs(ns int64) float64 {
	if ns >= 0 { // the same, with cheaper unsigned division
		u := uint64(ns)
		sec := u / 1e9
		return float64(int64(sec))*1000 + float64(int64(u-sec*1e9))/1e6
	}
	return float64(ns/1e9)*1000 + float64(ns%1e9)/1e6
}

// wsUpdate reproduces the per-packet analysis of Wireshark's RTP stream
// statistics (tshark -z rtp,streams) for Lost, Max Delta, Max Jitter and
// Mean Jitter. s.packets is still the count before this packet.
func (s *slot) wsUpdate(c *cold, b *Brief, now int64) {
	cur := nsToMs(now)
	seq := b.seq
	pt := b.PayloadType()
	// tshark's in_time_sequence: the timestamp is less than 2^31 after the
	// stream's first, directly or across the wrap at 2^32 (where tshark
	// counts 0xffffffff - first + timestamp, one less than the distance).
	d := b.ts - s.firstTS
	inTime := (s.firstTS <= b.ts && d < 0x80000000) ||
		(s.firstTS > b.ts && uint64(0xffffffff-s.firstTS)+uint64(b.ts) < 0x80000000)

	switch {
	case seq < c.startSeq && inTime && !s.under:
		c.cycles++
		s.under = true
	case seq == 0 && c.stopSeq == 65535 && inTime && !s.under:
		c.cycles++
		s.under = true
	case seq > c.startSeq && inTime && s.under:
		s.under = false
	}

	cn := isCN(pt)
	followCN := isCN(s.pt)
	s.pt = pt
	tick := tickMs[pt]

	var delta float64
	if inTime {
		delta = cur - s.wsTime
		if tick != 0 {
			nominal := float64(d) / tick
			expected := s.wsTime + (nominal - s.lastNominal)
			diff := math.Abs(cur - expected)
			s.jitter = (15*s.jitter + diff) / 16
			s.lastNominal = nominal
		}
	}
	if !b.Marker() && !cn && inTime && !followCN {
		if delta > s.wsMaxDelta {
			s.wsMaxDelta = delta
		}
		if tick != 0 {
			if s.jitter > s.maxJitter {
				s.maxJitter = s.jitter
			}
			s.meanJitter = (s.meanJitter*float64(s.packets-1) + s.jitter) / float64(s.packets)
		}
	}
	if inTime {
		s.wsTime = cur
	}
	c.stopSeq = seq
}

func (s *slot) stats(c *cold, epoch int64) StreamStats {
	maxExt := c.maxExt + int64(s.run)
	stopSeq := c.stopSeq
	if s.run > 0 {
		stopSeq = s.maxSeq
	}
	expected := maxExt - c.minExt + 1
	lost := expected - int64(s.packets)
	lostCap := min(c.lostCap, uint64(max(lost, 0)))
	wsExpected := int64(stopSeq) + int64(c.cycles)*0x10000 - int64(c.startSeq) + 1
	return StreamStats{
		StreamKey:    c.key,
		PayloadType:  s.pt,
		Codec:        CodecName(s.pt),
		ClockRate:    ClockRate(s.pt),
		First:        time.Unix(0, epoch+c.firstNs),
		Last:         time.Unix(0, epoch+s.lastNs),
		Packets:      s.packets,
		Bytes:        s.bytes,
		BaseSeq:      uint32(c.minExt),
		HighestSeq:   uint32(maxExt),
		Expected:     expected,
		Lost:         lost,
		Duplicates:   c.dups,
		OutOfOrder:   c.ooo,
		Jitter:       s.jitter,
		MaxDelta:     float64(s.maxDelta) / 1e6,
		LostNetwork:  uint64(max(lost, 0)) - lostCap,
		LostCapture:  lostCap,
		Sequential:   c.seqOK || s.run > 0,
		WSLost:       wsExpected - int64(s.packets),
		WSMaxDelta:   s.wsMaxDelta,
		WSMaxJitter:  s.maxJitter,
		WSMeanJitter: s.meanJitter,
	}
}
