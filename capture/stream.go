package capture

import (
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync/atomic"
	"time"
)

// NoVLAN is StreamKey.VLAN for an untagged stream.
const NoVLAN = 0xffff

// StreamKey identifies an RTP stream: outer VLAN, UDP 5-tuple and SSRC.
type StreamKey struct {
	VLAN     uint16 // outer VLAN ID, or NoVLAN
	Src, Dst netip.AddrPort
	SSRC     uint32
}

// hashKey mixes the fields of a stream's key. SSRCs are random, so they
// spread streams well; addresses and ports separate equal SSRCs. seed
// differs per table.
func hashKey(p *Packet, vlan uint16, seed uint64) uint64 {
	h := seed ^ p.flow ^ uint64(p.RTP.SSRC)<<7 ^ uint64(vlan)<<32
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 29
	return h
}

func outerVLAN(p *Packet) uint16 {
	if p.NumVLANs == 0 {
		return NoVLAN
	}
	return p.VLANs[0].TCI & 0x0fff
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

	// LostNetwork and LostCapture split the packets missing at sequence
	// gaps: a gap that opened while the capture's kernel counters reported
	// drops is "possibly lost in capture", any other "lost on the network".
	// Packets that arrive late to fill a gap are not subtracted.
	LostNetwork uint64
	LostCapture uint64

	WSLost       int64   // tshark's Lost
	WSMaxDelta   float64 // tshark's Max Delta (ms)
	WSMaxJitter  float64 // tshark's Max Jitter (ms)
	WSMeanJitter float64 // tshark's Mean Jitter (ms)
}

// stream is one tracked stream. Times are nanoseconds since the table's
// epoch.
type stream struct {
	key      StreamKey
	hash     uint64
	firstNs  int64
	lastNs   int64
	packets  uint64
	bytes    uint64
	pt       uint8
	lastPT   uint8
	used     bool
	maxExt   int64
	minExt   int64
	window   [2]uint64 // bit i: maxExt-i was seen
	dups     uint64
	ooo      uint64
	maxDelta int64  // ns
	drops    uint64 // capture drops counted when the last packet came
	lostNet  uint64
	lostCap  uint64
	ws       wsState
}

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
	// (LiveSource keeps one); it splits sequence gaps into network and
	// capture loss.
	Drops *atomic.Uint64
}

// StreamTable tracks RTP streams keyed by (outer VLAN, 5-tuple, SSRC).
// Memory is bounded by MaxStreams. A StreamTable is not safe for concurrent
// use: keep one per capture worker (fanout sends all packets of a flow to
// the same worker) and merge their snapshots.
type StreamTable struct {
	cfg      StreamTableConfig
	slots    []int32 // open addressing, linear probing: index+1 into streams, 0 empty
	mask     uint64
	seed     uint64
	n        int // streams in use
	streams  []stream
	free     []int32
	epoch    int64 // Unix ns; 0 until set
	overflow uint64
	expired  uint64
	sink     int64 // keeps UpdateBatch's early loads alive
}

// NewStreamTable returns an empty table.
func NewStreamTable(cfg StreamTableConfig) *StreamTable {
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 100000
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	t := &StreamTable{cfg: cfg, seed: rand.Uint64()}
	t.resize(1024)
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

// resize rebuilds the slots with the given power of two.
func (t *StreamTable) resize(size int) {
	t.slots = make([]int32, size)
	t.mask = uint64(size - 1)
	for i := range t.streams {
		if s := &t.streams[i]; s.used {
			j := s.hash & t.mask
			for t.slots[j] != 0 {
				j = (j + 1) & t.mask
			}
			t.slots[j] = int32(i + 1)
		}
	}
}

// Overflow returns the number of packets ignored because MaxStreams
// streams were already tracked.
func (t *StreamTable) Overflow() uint64 { return t.overflow }

// Expired returns the number of streams forgotten by Expire.
func (t *StreamTable) Expired() uint64 { return t.expired }

// Update accounts one packet that Decode found to be RTP (Kind KindRTP),
// captured at ts. It does not allocate once the stream exists, and returns
// false when the packet was not RTP or the table was full.
func (t *StreamTable) Update(p *Packet, ts time.Time) bool {
	if p.Kind != KindRTP {
		return false
	}
	now := ts.UnixNano()
	if t.epoch == 0 {
		t.epoch = now
	}
	now -= t.epoch
	vlan := outerVLAN(p)
	h := hashKey(p, vlan, t.seed)
	for j := h & t.mask; ; j = (j + 1) & t.mask {
		i := t.slots[j]
		if i == 0 {
			break
		}
		s := &t.streams[i-1]
		if s.hash == h && s.key.SSRC == p.RTP.SSRC && s.key.Src == p.Src && s.key.Dst == p.Dst && s.key.VLAN == vlan {
			s.update(p, now, t.drops())
			return true
		}
	}
	if t.n >= t.cfg.MaxStreams {
		t.overflow++
		return false
	}
	i := t.alloc()
	s := &t.streams[i]
	*s = stream{key: StreamKey{VLAN: vlan, Src: p.Src, Dst: p.Dst, SSRC: p.RTP.SSRC}, hash: h, used: true}
	s.start(p, now, t.drops())
	t.n++
	if 2*t.n > len(t.slots) {
		t.resize(2 * len(t.slots))
	} else {
		j := h & t.mask
		for t.slots[j] != 0 {
			j = (j + 1) & t.mask
		}
		t.slots[j] = i + 1
	}
	return true
}

// UpdateBatch is Update for a batch of decoded packets (those whose Kind
// is not KindRTP are skipped), captured at times[i]; it returns how many it
// accounted. It first touches the hash slots and stream entries of the
// whole batch, so that the cache misses of a large table overlap instead of
// following one another, then updates each stream.
func (t *StreamTable) UpdateBatch(pkts []Packet, times []time.Time) int {
	const chunk = 32
	var hs [chunk]uint64
	n := 0
	for base := 0; base < len(pkts); base += chunk {
		end := min(base+chunk, len(pkts), len(times))
		var sink int64
		for i := base; i < end; i++ {
			if p := &pkts[i]; p.Kind == KindRTP {
				hs[i-base] = hashKey(p, outerVLAN(p), t.seed)
				sink += int64(t.slots[hs[i-base]&t.mask])
			}
		}
		for i := base; i < end; i++ {
			if pkts[i].Kind == KindRTP {
				if j := t.slots[hs[i-base]&t.mask]; j != 0 {
					sink += t.streams[j-1].lastNs
				}
			}
		}
		t.sink += sink
		for i := base; i < end; i++ {
			if t.Update(&pkts[i], times[i]) {
				n++
			}
		}
	}
	return n
}

func (t *StreamTable) drops() uint64 {
	if t.cfg.Drops == nil {
		return 0
	}
	return t.cfg.Drops.Load()
}

func (t *StreamTable) alloc() int32 {
	if n := len(t.free); n > 0 {
		i := t.free[n-1]
		t.free = t.free[:n-1]
		return i
	}
	t.streams = append(t.streams, stream{})
	return int32(len(t.streams) - 1)
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
	for i := range t.streams {
		s := &t.streams[i]
		if s.used && s.lastNs < limit {
			s.used = false
			t.free = append(t.free, int32(i))
			n++
		}
	}
	t.expired += uint64(n)
	t.n -= n
	if n > 0 {
		t.resize(len(t.slots))
	}
	return n
}

// Snapshot appends the statistics of every tracked stream to dst, sorted
// by source then destination then SSRC, and returns it.
func (t *StreamTable) Snapshot(dst []StreamStats) []StreamStats {
	start := len(dst)
	for i := range t.streams {
		s := &t.streams[i]
		if s.used {
			dst = append(dst, s.stats(t.epoch))
		}
	}
	out := dst[start:]
	sort.Slice(out, func(i, j int) bool {
		return out[i].First.Before(out[j].First) || (out[i].First.Equal(out[j].First) && out[i].SSRC < out[j].SSRC)
	})
	return dst
}

func (s *stream) start(p *Packet, now int64, drops uint64) {
	s.firstNs, s.lastNs = now, now
	s.packets = 1
	s.bytes = uint64(len(p.RTP.Payload))
	s.pt, s.lastPT = p.RTP.PayloadType, p.RTP.PayloadType
	s.maxExt = int64(p.RTP.SequenceNumber) + 1<<32 // room below for early packets
	s.minExt = s.maxExt
	s.window[0] = 1
	s.drops = drops
	s.ws.start(p, now)
}

func (s *stream) update(p *Packet, now int64, drops uint64) {
	h := &p.RTP
	delta := now - s.lastNs
	if delta > s.maxDelta {
		s.maxDelta = delta
	}
	s.lastNs = now
	s.packets++
	s.bytes += uint64(len(h.Payload))
	s.pt = h.PayloadType

	// Extended sequence number nearest the highest seen.
	ext := s.maxExt + int64(int16(h.SequenceNumber-uint16(s.maxExt)))
	switch d := ext - s.maxExt; {
	case d > 0:
		if d > 1 {
			gap := uint64(d - 1)
			if drops != s.drops {
				s.lostCap += gap
			} else {
				s.lostNet += gap
			}
		}
		if d >= 128 {
			s.window = [2]uint64{}
		} else if d >= 64 {
			s.window[1] = s.window[0] << (d - 64)
			s.window[0] = 0
		} else {
			s.window[1] = s.window[1]<<d | s.window[0]>>(64-d)
			s.window[0] <<= d
		}
		s.window[0] |= 1
		s.maxExt = ext
	case d == 0:
		s.dups++
	default:
		back := uint64(-d)
		if back < 128 {
			w, bit := &s.window[back/64], uint64(1)<<(back%64)
			if *w&bit != 0 {
				s.dups++
			} else {
				*w |= bit
				s.ooo++
			}
		} else {
			s.ooo++
		}
		if ext < s.minExt {
			s.minExt = ext
		}
	}
	s.drops = drops
	s.ws.update(p, now)
}

func (s *stream) stats(epoch int64) StreamStats {
	k := s.key
	expected := s.maxExt - s.minExt + 1
	return StreamStats{
		StreamKey:    k,
		PayloadType:  s.pt,
		Codec:        CodecName(s.pt),
		ClockRate:    ClockRate(s.pt),
		First:        time.Unix(0, epoch+s.firstNs),
		Last:         time.Unix(0, epoch+s.lastNs),
		Packets:      s.packets,
		Bytes:        s.bytes,
		BaseSeq:      uint32(s.minExt),
		HighestSeq:   uint32(s.maxExt),
		Expected:     expected,
		Lost:         expected - int64(s.packets),
		Duplicates:   s.dups,
		OutOfOrder:   s.ooo,
		Jitter:       s.ws.jitter,
		MaxDelta:     float64(s.maxDelta) / 1e6,
		LostNetwork:  s.lostNet,
		LostCapture:  s.lostCap,
		WSLost:       s.ws.lost(),
		WSMaxDelta:   s.ws.maxDelta,
		WSMaxJitter:  s.ws.maxJitter,
		WSMeanJitter: s.ws.meanJitter,
	}
}
