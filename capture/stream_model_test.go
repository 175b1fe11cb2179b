package capture

// A reference model of one stream's statistics: the straightforward
// per-packet algorithm the stream table had before it was split into hot
// slots and cold entries, kept here to check the table against it figure
// for figure.

import (
	"math"
	"math/rand/v2"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

type refStream struct {
	firstNs, lastNs int64
	packets, bytes  uint64
	pt              uint8
	maxExt, minExt  int64
	window          [2]uint64
	dups, ooo       uint64
	maxDelta        int64
	drops           uint64
	lostCap         uint64
	sequential      bool
	ws              refWS
}

type refWS struct {
	startSeq, stopSeq uint16
	under             bool
	cycles            uint32
	firstTS           uint32
	pt                uint8
	time              float64
	lastNominal       float64
	delta             float64
	jitter            float64
	maxDelta          float64
	maxJitter         float64
	meanJitter        float64
	total             uint32
}

func (s *refStream) start(h *RTPHeader, now int64, drops uint64) {
	*s = refStream{firstNs: now, lastNs: now, packets: 1, bytes: uint64(len(h.Payload)), pt: h.PayloadType, drops: drops}
	s.maxExt = int64(h.SequenceNumber) + 1<<32
	s.minExt = s.maxExt
	s.window[0] = 1
	s.ws = refWS{startSeq: h.SequenceNumber, stopSeq: h.SequenceNumber, firstTS: h.Timestamp, pt: h.PayloadType, time: nsToMs(now), total: 1}
}

func (s *refStream) update(h *RTPHeader, now int64, drops uint64) {
	if delta := now - s.lastNs; delta > s.maxDelta {
		s.maxDelta = delta
	}
	s.lastNs = now
	s.packets++
	s.bytes += uint64(len(h.Payload))
	s.pt = h.PayloadType
	ext := s.maxExt + int64(int16(h.SequenceNumber-uint16(s.maxExt)))
	switch d := ext - s.maxExt; {
	case d > 0:
		if d == 1 {
			s.sequential = true
		}
		if d > 1 && drops != s.drops {
			s.lostCap += min(uint64(d-1), drops-s.drops)
		}
		for i := int64(0); i < d; i++ { // bit by bit, unlike the table
			s.window[1] = s.window[1]<<1 | s.window[0]>>63
			s.window[0] <<= 1
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
		s.minExt = min(s.minExt, ext)
	}
	s.drops = drops
	w := &s.ws
	cur := nsToMs(now)
	seq := h.SequenceNumber
	inTime := (w.firstTS <= h.Timestamp && h.Timestamp-w.firstTS < 0x80000000) ||
		(w.firstTS > h.Timestamp && uint64(0xffffffff-w.firstTS)+uint64(h.Timestamp) < 0x80000000)
	switch {
	case seq < w.startSeq && inTime && !w.under:
		w.cycles++
		w.under = true
	case seq == 0 && w.stopSeq == 65535 && inTime && !w.under:
		w.cycles++
		w.under = true
	case seq > w.startSeq && inTime && w.under:
		w.under = false
	}
	cn := h.PayloadType == 13 || h.PayloadType == 19
	followCN := w.pt == 13 || w.pt == 19
	w.pt = h.PayloadType
	rate := ClockRate(h.PayloadType)
	if inTime {
		if rate != 0 {
			nominal := float64(h.Timestamp-w.firstTS) / float64(rate/1000)
			w.jitter = (15*w.jitter + math.Abs(cur-(w.time+(nominal-w.lastNominal)))) / 16
			w.lastNominal = nominal
		}
		w.delta = cur - w.time
	}
	if !h.Marker && !cn && inTime && !followCN {
		w.maxDelta = max(w.maxDelta, w.delta)
		if rate != 0 {
			w.maxJitter = max(w.maxJitter, w.jitter)
			w.meanJitter = (w.meanJitter*float64(w.total-1) + w.jitter) / float64(w.total)
		}
	}
	if inTime {
		w.time = cur
	}
	w.stopSeq = seq
	w.total++
}

// check compares the table's figures with the model's.
func (s *refStream) check(t *testing.T, step int, got StreamStats) {
	t.Helper()
	expected := s.maxExt - s.minExt + 1
	lost := max(expected-int64(s.packets), 0)
	lostCap := min(s.lostCap, uint64(lost))
	w := &s.ws
	want := StreamStats{
		StreamKey: got.StreamKey, PayloadType: s.pt, Codec: CodecName(s.pt), ClockRate: ClockRate(s.pt),
		First: got.First, Last: got.Last, Packets: s.packets, Bytes: s.bytes,
		BaseSeq: uint32(s.minExt), HighestSeq: uint32(s.maxExt), Expected: expected, Lost: expected - int64(s.packets),
		Duplicates: s.dups, OutOfOrder: s.ooo, Jitter: w.jitter, MaxDelta: float64(s.maxDelta) / 1e6,
		LostNetwork: uint64(lost) - lostCap, LostCapture: lostCap, Sequential: s.sequential,
		WSLost:     int64(w.stopSeq) + int64(w.cycles)*0x10000 - int64(w.startSeq) + 1 - int64(w.total),
		WSMaxDelta: w.maxDelta, WSMaxJitter: w.maxJitter, WSMeanJitter: w.meanJitter,
	}
	if got.Last.Sub(got.First) != time.Duration(s.lastNs-s.firstNs) {
		t.Fatalf("step %d: first %v last %v, want %v apart", step, got.First, got.Last, time.Duration(s.lastNs-s.firstNs))
	}
	if got != want {
		t.Fatalf("step %d: table and model differ:\n got %+v\nwant %+v", step, got, want)
	}
}

// TestStreamTableMatchesModel drives a table and the model with random
// streams (in order mostly, with loss, reordering, duplicates, markers,
// comfort noise, payload-type changes, timestamp jumps, sequence wraps and
// capture drops) and compares every figure after every packet. A second
// table takes the same packets as Briefs (UpdateBriefs, smserver's path),
// in batches of 1 to 70 (so that one chunk holds several packets of the
// stream, and a batch spans chunks), a batch ending where the capture's
// drop count moves (as it moves between ring reads), and must hold the
// same figures.
func TestStreamTableMatchesModel(t *testing.T) {
	for seed := uint64(1); seed <= 41; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		var drops atomic.Uint64
		tab := NewStreamTable(StreamTableConfig{Drops: &drops})
		briefs := NewStreamTable(StreamTableConfig{Drops: &drops})
		var ref refStream
		seq := uint16(rng.IntN(65536))
		if seed%4 == 0 {
			seq = 65535 - uint16(rng.IntN(40)) // wrap soon
		}
		ts := rng.Uint32()
		if seed%5 == 0 {
			ts = 0xffffffff - uint32(rng.IntN(20000)) // timestamp wrap soon
		}
		steps := 3000
		if seed == 41 {
			seq, steps = 0, 70000 // tshark's wrap from 65535 to 0 with start_seq_nr 0
		}
		pt := uint8(0)
		now := int64(1700000000) * 1e9
		payload := make([]byte, 160)
		var p Packet
		var pending []Brief
		size := 1
		flush := func(step int) {
			if len(pending) == 0 {
				return
			}
			if n := briefs.UpdateBriefs(pending); n != len(pending) {
				t.Fatalf("seed %d step %d: UpdateBriefs accounted %d of %d", seed, step, n, len(pending))
			}
			for i := range pending {
				if id, _ := pending[i].Stream(); id != 0 {
					t.Fatalf("seed %d step %d: Brief %d of a batch has stream %d, want 0", seed, step, i, id)
				}
			}
			pending, size = pending[:0], 1+rng.IntN(70)
			ss, bs := tab.Snapshot(nil), briefs.Snapshot(nil)
			if len(ss) != 1 || len(bs) != 1 || bs[0] != ss[0] {
				t.Fatalf("seed %d step %d: the Briefs' table holds %+v, want %+v", seed, step, bs, ss)
			}
		}
		for step := 0; step < steps; step++ {
			r := &p.RTP
			*r = RTPHeader{PayloadType: pt, SequenceNumber: seq, Timestamp: ts, SSRC: 7, Payload: payload[:80+rng.IntN(81)]}
			x := rng.IntN(100)
			if seed == 41 {
				x = 100 // in order only
			}
			switch {
			case x < 3:
				r.SequenceNumber = seq + uint16(rng.IntN(300)) // gap ahead
			case x < 6:
				r.SequenceNumber = seq - uint16(rng.IntN(200)) // late or duplicate
			case x < 7:
				r.Marker = true
			case x < 8:
				r.PayloadType = []uint8{8, 13, 18, 101, 10, 34}[rng.IntN(6)]
			case x < 9:
				r.Timestamp = ts - uint32(rng.IntN(1<<31)) // far back
			case x < 10:
				flush(step)
				drops.Add(uint64(rng.IntN(3)))
			case x < 11:
				pt = []uint8{0, 8, 9, 18}[rng.IntN(4)]
				r.PayloadType = pt
			}
			if r.SequenceNumber == seq || rng.IntN(2) == 0 {
				seq = r.SequenceNumber + 1
			}
			ts += 160
			now += int64(20*time.Millisecond) + int64(rng.IntN(4000000)) - 2000000
			if rng.IntN(200) == 0 {
				now += int64(rng.IntN(3)) * int64(time.Second)
			}
			p.Kind = KindRTP
			p.Src = netip.MustParseAddrPort("10.0.0.1:4000")
			p.Dst = netip.MustParseAddrPort("10.0.0.2:4002")
			if step == 0 {
				ref.start(r, now-now, drops.Load())
			} else {
				ref.update(r, now-tab.epoch, drops.Load())
			}
			if !tab.Update(&p, time.Unix(0, now)) {
				t.Fatalf("seed %d step %d: Update refused", seed, step)
			}
			b := *p.brief(new(Brief))
			b.ns = now
			if pending = append(pending, b); len(pending) >= size {
				flush(step)
			}
			if step%7 == 0 || step > steps-10 {
				ss := tab.Snapshot(nil)
				if len(ss) != 1 {
					t.Fatalf("%d streams", len(ss))
				}
				ref.check(t, step, ss[0])
			}
		}
		flush(steps)
	}
}

// TestSlotAlignment checks that the slot array stays aligned to 128 bytes
// as it grows,
// so that a slot is one aligned pair of cache lines.
func TestSlotAlignment(t *testing.T) {
	if unsafe.Sizeof(slot{}) != 128 {
		t.Fatalf("slot is %d bytes, want 128", unsafe.Sizeof(slot{}))
	}
	tab := NewStreamTable(StreamTableConfig{})
	var p Packet
	for i := 0; i < 5000; i++ {
		if i == 0 || i&(i-1) == 0 {
			if a := uintptr(unsafe.Pointer(unsafe.SliceData(tab.slots))); a%128 != 0 {
				t.Fatalf("with %d streams the slots start at %#x, not 128-byte aligned", tab.Len(), a)
			}
		}
		p = Packet{Kind: KindRTP, Src: netip.MustParseAddrPort("10.0.0.1:4000"), Dst: netip.MustParseAddrPort("10.0.0.2:4002")}
		p.RTP.SSRC = uint32(i)
		tab.Update(&p, time.Unix(1700000000, 0))
	}
}
