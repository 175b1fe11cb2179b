package capture_test

import (
	"math"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
)

type pkt struct {
	seq   uint16
	at    time.Duration // arrival after the first
	ts    uint32        // RTP timestamp; 0 means seq*160
	drops uint64        // kernel drops counted before this packet
}

func decodeRTP(t testing.TB, f capturetest.Frame) *capture.Packet {
	t.Helper()
	var p capture.Packet
	if err := p.Decode(capturetest.Build(f), capture.LinkEthernet, nil); err != nil || p.Kind != capture.KindRTP {
		t.Fatalf("Decode: %v, kind %d", err, p.Kind)
	}
	return &p
}

func runStream(t *testing.T, pkts []pkt) capture.StreamStats {
	t.Helper()
	var drops atomic.Uint64
	tab := capture.NewStreamTable(capture.StreamTableConfig{Drops: &drops})
	base := time.Unix(1700000000, 0)
	for _, k := range pkts {
		ts := k.ts
		if ts == 0 {
			ts = uint32(k.seq) * 160
		}
		drops.Store(k.drops)
		p := decodeRTP(t, capturetest.Frame{RTP: &capturetest.RTP{Seq: k.seq, Timestamp: ts, SSRC: 42}, Payload: payload160})
		if !tab.Update(p, base.Add(k.at)) {
			t.Fatal("Update refused an RTP packet")
		}
	}
	s := tab.Snapshot(nil)
	if len(s) != 1 {
		t.Fatalf("%d streams, want 1", len(s))
	}
	return s[0]
}

func seqs(start uint16, n int, skip ...uint16) []pkt {
	var out []pkt
	for i := 0; i < n; i++ {
		s := start + uint16(i)
		skipped := false
		for _, k := range skip {
			skipped = skipped || k == s
		}
		if !skipped {
			out = append(out, pkt{seq: s, at: time.Duration(i) * 20 * time.Millisecond})
		}
	}
	return out
}

func TestStreamSequence(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name                 string
		pkts                 []pkt
		expected, lost       int64
		dups, ooo            uint64
		highest, base        uint32
		lostNet, lostCapture uint64
	}{
		{"in order", seqs(100, 10), 10, 0, 0, 0, 109, 100, 0, 0},
		{"wrap 65533 to 2", seqs(65533, 6), 6, 0, 0, 0, 1<<16 + 2, 65533, 0, 0},
		{"loss across the wrap", seqs(65530, 12, 65535, 0, 1), 12, 3, 0, 0, 1<<16 + 5, 65530, 3, 0},
		{"duplicate", []pkt{{seq: 1}, {seq: 2, at: 20 * ms}, {seq: 2, at: 30 * ms}, {seq: 3, at: 40 * ms}}, 3, -1, 1, 0, 3, 1, 0, 0},
		{"late duplicate", []pkt{{seq: 1}, {seq: 2, at: 20 * ms}, {seq: 3, at: 40 * ms}, {seq: 2, at: 50 * ms}}, 3, -1, 1, 0, 3, 1, 0, 0},
		{"reordered", []pkt{{seq: 1}, {seq: 3, at: 20 * ms}, {seq: 2, at: 30 * ms}, {seq: 4, at: 40 * ms}}, 4, 0, 0, 1, 4, 1, 0, 0},
		{"reordered first packet", []pkt{{seq: 11}, {seq: 10, at: 5 * ms}, {seq: 12, at: 20 * ms}}, 3, 0, 0, 1, 12, 10, 0, 0},
		{"reordered across the wrap", []pkt{{seq: 65535}, {seq: 1, at: 20 * ms}, {seq: 0, at: 25 * ms}, {seq: 2, at: 40 * ms}}, 4, 0, 0, 1, 1<<16 + 2, 65535, 0, 0},
		{"loss and a reordered packet", []pkt{{seq: 1}, {seq: 3, at: 20 * ms}, {seq: 5, at: 40 * ms}, {seq: 2, at: 45 * ms}, {seq: 6, at: 60 * ms}}, 6, 1, 0, 1, 6, 1, 1, 0},
		{"gap during capture drops", []pkt{{seq: 1}, {seq: 2, at: 20 * ms}, {seq: 6, at: 100 * ms, drops: 40}, {seq: 7, at: 120 * ms, drops: 40}, {seq: 9, at: 160 * ms, drops: 40}}, 9, 4, 0, 0, 9, 1, 1, 3},
		{"gap larger than the drops", []pkt{{seq: 1}, {seq: 2, at: 20 * ms}, {seq: 9, at: 160 * ms, drops: 2}, {seq: 10, at: 180 * ms, drops: 2}}, 10, 6, 0, 0, 10, 1, 4, 2},
		{"drops without a gap", []pkt{{seq: 1}, {seq: 2, at: 20 * ms, drops: 5}, {seq: 3, at: 40 * ms, drops: 9}, {seq: 5, at: 80 * ms, drops: 9}}, 5, 1, 0, 0, 5, 1, 1, 0},
		{"network loss while the kernel drops", []pkt{{seq: 1}, {seq: 3, at: 40 * ms, drops: 1}, {seq: 4, at: 60 * ms, drops: 2}, {seq: 6, at: 100 * ms, drops: 2}, {seq: 9, at: 160 * ms, drops: 3}}, 9, 4, 0, 0, 9, 1, 2, 2},
		{"late packet fills a capture gap", []pkt{{seq: 1}, {seq: 3, at: 40 * ms, drops: 7}, {seq: 2, at: 45 * ms, drops: 7}, {seq: 4, at: 60 * ms, drops: 7}}, 4, 0, 0, 1, 4, 1, 0, 0},
		{"duplicates offset loss (RFC 3550)", []pkt{{seq: 1}, {seq: 3, at: 40 * ms}, {seq: 3, at: 45 * ms}, {seq: 4, at: 60 * ms}}, 4, 0, 1, 0, 4, 1, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := runStream(t, tt.pkts)
			if s.Packets != uint64(len(tt.pkts)) || s.Expected != tt.expected || s.Lost != tt.lost || s.Duplicates != tt.dups || s.OutOfOrder != tt.ooo {
				t.Errorf("packets %d expected %d lost %d dups %d ooo %d; want %d %d %d %d %d",
					s.Packets, s.Expected, s.Lost, s.Duplicates, s.OutOfOrder, len(tt.pkts), tt.expected, tt.lost, tt.dups, tt.ooo)
			}
			if s.HighestSeq != tt.highest || s.BaseSeq != tt.base {
				t.Errorf("highest %#x base %d, want %#x %d", s.HighestSeq, s.BaseSeq, tt.highest, tt.base)
			}
			if s.LostNetwork != tt.lostNet || s.LostCapture != tt.lostCapture {
				t.Errorf("lost network %d capture %d, want %d %d", s.LostNetwork, s.LostCapture, tt.lostNet, tt.lostCapture)
			}
		})
	}
}

// TestStreamJitter checks RFC 3550 section 6.4.1 by hand: packets every
// 20 ms (160 samples at 8 kHz), the third delayed by 10 ms.
func TestStreamJitter(t *testing.T) {
	ms := time.Millisecond
	s := runStream(t, []pkt{{seq: 1}, {seq: 2, at: 20 * ms}, {seq: 3, at: 50 * ms}, {seq: 4, at: 60 * ms}})
	// D(2,3) = 30-20 = 10 → J = 10/16; D(3,4) = 10-20 → J += (10-J)/16.
	want := 10.0 / 16
	want += (10 - want) / 16
	if math.Abs(s.Jitter-want) > 1e-9 {
		t.Errorf("jitter %.6f ms, want %.6f", s.Jitter, want)
	}
	if math.Abs(s.MaxDelta-30) > 1e-9 {
		t.Errorf("max delta %.3f ms, want 30", s.MaxDelta)
	}
	if s.Codec != "PCMU" || s.ClockRate != 8000 {
		t.Errorf("codec %q rate %d", s.Codec, s.ClockRate)
	}
	steady := runStream(t, seqs(1, 50))
	if steady.Jitter != 0 || steady.WSMaxJitter != 0 {
		t.Errorf("steady stream jitter %.6f / %.6f, want 0", steady.Jitter, steady.WSMaxJitter)
	}
}

func TestStreamKeys(t *testing.T) {
	tab := capture.NewStreamTable(capture.StreamTableConfig{})
	now := time.Unix(1700000000, 0)
	frames := []capturetest.Frame{
		{RTP: &capturetest.RTP{SSRC: 1}},
		{RTP: &capturetest.RTP{SSRC: 2}},
		{RTP: &capturetest.RTP{SSRC: 1}, VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}},
		{RTP: &capturetest.RTP{SSRC: 1}, VLANs: []capture.VLANTag{tag(0x8100, 5, 86)}},
		{RTP: &capturetest.RTP{SSRC: 1}, Src: netip.MustParseAddrPort("10.0.0.1:40001")},
		{RTP: &capturetest.RTP{SSRC: 1}, Src: v6a, Dst: v6b},
		{RTP: &capturetest.RTP{SSRC: 1, Seq: 1}}, // same stream as the first
	}
	for _, f := range frames {
		tab.Update(decodeRTP(t, f), now)
	}
	if tab.Len() != 6 {
		t.Fatalf("%d streams, want 6", tab.Len())
	}
	got := map[capture.StreamKey]bool{}
	for _, s := range tab.Snapshot(nil) {
		got[s.StreamKey] = true
	}
	for _, k := range []capture.StreamKey{
		{VLAN: capture.NoVLAN, Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("10.0.0.2:40002"), SSRC: 1},
		{VLAN: 85, Src: netip.MustParseAddrPort("10.0.0.1:40000"), Dst: netip.MustParseAddrPort("10.0.0.2:40002"), SSRC: 1},
		{VLAN: capture.NoVLAN, Src: v6a, Dst: v6b, SSRC: 1},
	} {
		if !got[k] {
			t.Errorf("stream %+v missing", k)
		}
	}
}

func TestStreamTableCapAndExpiry(t *testing.T) {
	tab := capture.NewStreamTable(capture.StreamTableConfig{MaxStreams: 3, IdleTimeout: 10 * time.Second})
	t0 := time.Unix(1700000000, 0)
	for i := 0; i < 5; i++ {
		ok := tab.Update(decodeRTP(t, capturetest.Frame{RTP: &capturetest.RTP{SSRC: uint32(i)}}), t0.Add(time.Duration(i)*time.Second))
		if ok != (i < 3) {
			t.Errorf("stream %d accepted %v", i, ok)
		}
	}
	if tab.Len() != 3 || tab.Overflow() != 2 {
		t.Fatalf("len %d overflow %d, want 3 2", tab.Len(), tab.Overflow())
	}
	// At t0+11.5 s, streams last heard at t0 and t0+1 s are idle > 10 s.
	if n := tab.Expire(t0.Add(11500 * time.Millisecond)); n != 2 || tab.Len() != 1 || tab.Expired() != 2 {
		t.Fatalf("Expire forgot %d, len %d, expired %d; want 2 1 2", n, tab.Len(), tab.Expired())
	}
	if !tab.Update(decodeRTP(t, capturetest.Frame{RTP: &capturetest.RTP{SSRC: 99}}), t0.Add(12*time.Second)) {
		t.Fatal("a freed slot was not reused")
	}
}

func TestStreamUpdateZeroAlloc(t *testing.T) {
	tab := capture.NewStreamTable(capture.StreamTableConfig{})
	p := decodeRTP(t, capturetest.Frame{VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}, RTP: &capturetest.RTP{SSRC: 5}, Payload: payload160})
	now := time.Unix(1700000000, 0)
	tab.Update(p, now)
	allocs := testing.AllocsPerRun(1000, func() {
		p.RTP.SequenceNumber++
		p.RTP.Timestamp += 160
		now = now.Add(20 * time.Millisecond)
		tab.Update(p, now)
	})
	if allocs != 0 {
		t.Fatalf("Update allocates %.1f times per packet, want 0", allocs)
	}
}

// TestUpdateBatch checks that UpdateBatch gives the figures of Update
// called packet by packet, and skips packets that are not RTP.
func TestUpdateBatch(t *testing.T) {
	var pkts []capture.Packet
	var times []time.Time
	t0 := time.Unix(1700000000, 0)
	for i := 0; i < 100; i++ {
		for s := 0; s < 7; s++ {
			seq := uint16(65500 + i)
			if i == 50 && s == 3 {
				continue // one loss
			}
			p := decodeRTP(t, capturetest.Frame{RTP: &capturetest.RTP{Seq: seq, Timestamp: uint32(i) * 160, SSRC: uint32(s + 1)}, Payload: payload160})
			pkts = append(pkts, *p)
			times = append(times, t0.Add(time.Duration(i)*20*time.Millisecond+time.Duration(s*i%3)*time.Millisecond))
		}
		pkts = append(pkts, capture.Packet{Kind: capture.KindUDP})
		times = append(times, t0)
	}
	one := capture.NewStreamTable(capture.StreamTableConfig{})
	for i := range pkts {
		one.Update(&pkts[i], times[i])
	}
	batch := capture.NewStreamTable(capture.StreamTableConfig{})
	if n := batch.UpdateBatch(pkts, times); n != 699 {
		t.Fatalf("UpdateBatch accounted %d packets, want 699", n)
	}
	a, b := one.Snapshot(nil), batch.Snapshot(nil)
	if len(a) != 7 || len(b) != 7 {
		t.Fatalf("%d and %d streams, want 7", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("stream %d differs:\n%+v\n%+v", i, a[i], b[i])
		}
	}
	for _, st := range a {
		if want := int64(map[bool]int{true: 1}[st.SSRC == 4]); st.Lost != want {
			t.Errorf("SSRC %d lost %d, want %d", st.SSRC, st.Lost, want)
		}
	}
}

// TestStreamKeyCollisions checks streams whose keys fold to the same
// digest stay apart: two IPv6 sources that differ in bits the digest
// cancels out, and an IPv4 stream against an IPv6 one.
func TestStreamKeyCollisions(t *testing.T) {
	tab := capture.NewStreamTable(capture.StreamTableConfig{})
	now := time.Unix(1700000000, 0)
	// The digest xors the first 8 bytes with the next 8 shifted left by
	// one: bit 1 of byte 0 and bit 0 of byte 8 cancel.
	a := netip.MustParseAddrPort("[::]:5000")
	b := netip.MustParseAddrPort("[200::100:0:0:0]:5000")
	dst := netip.MustParseAddrPort("[2001:db8::2]:6000")
	for i, src := range []netip.AddrPort{a, b, a, b, a} {
		p := decodeRTP(t, capturetest.Frame{Src: src, Dst: dst, RTP: &capturetest.RTP{SSRC: 9, Seq: uint16(i / 2), Timestamp: uint32(i/2) * 160}, Payload: payload160})
		tab.Update(p, now.Add(time.Duration(i)*10*time.Millisecond))
	}
	got := tab.Snapshot(nil)
	if len(got) != 2 {
		t.Fatalf("%d streams, want 2", len(got))
	}
	for _, s := range got {
		want := map[netip.AddrPort]uint64{a: 3, b: 2}[s.Src]
		if s.Packets != want || s.Lost != 0 || s.Duplicates != 0 {
			t.Errorf("stream from %v: %d packets, lost %d, dups %d; want %d, 0, 0", s.Src, s.Packets, s.Lost, s.Duplicates, want)
		}
	}
}

// TestStreamHandMadePacket checks that a Packet filled in by hand (not by
// Decode) is accounted to the same stream as the decoded one.
func TestStreamHandMadePacket(t *testing.T) {
	for _, f := range []capturetest.Frame{
		{VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}, RTP: &capturetest.RTP{SSRC: 3}, Payload: payload160},
		{Src: v6a, Dst: v6b, RTP: &capturetest.RTP{SSRC: 3}, Payload: payload160},
	} {
		tab := capture.NewStreamTable(capture.StreamTableConfig{})
		now := time.Unix(1700000000, 0)
		p := decodeRTP(t, f)
		tab.Update(p, now)
		hand := capture.Packet{Kind: capture.KindRTP, Src: p.Src, Dst: p.Dst, NumVLANs: p.NumVLANs, VLANs: p.VLANs}
		hand.RTP = p.RTP
		hand.RTP.SequenceNumber++
		hand.RTP.Timestamp += 160
		tab.Update(&hand, now.Add(20*time.Millisecond))
		got := tab.Snapshot(nil)
		if len(got) != 1 || got[0].Packets != 2 || got[0].Lost != 0 {
			t.Fatalf("%v: %+v, want one stream of 2 packets", f.Src, got)
		}
		// The same two through UpdateBatch.
		batch := capture.NewStreamTable(capture.StreamTableConfig{})
		if n := batch.UpdateBatch([]capture.Packet{*p, hand}, []time.Time{now, now.Add(20 * time.Millisecond)}); n != 2 {
			t.Fatalf("%v: UpdateBatch accounted %d of 2", f.Src, n)
		}
		if b := batch.Snapshot(nil); len(b) != 1 || b[0] != got[0] {
			t.Fatalf("%v: UpdateBatch made %+v, want %+v", f.Src, b, got)
		}
	}
}

// TestStreamMarks: UpdateBriefs gives each packet its stream's id, the
// same for every packet of a stream, and the stream's mark as it found
// it; -1 and 0 for a zero Brief; a mark set on a stream stays with it, a
// new stream starts unmarked, also in the place of an expired one, and
// ClearMarks clears every mark.
func TestStreamMarks(t *testing.T) {
	tab := capture.NewStreamTable(capture.StreamTableConfig{IdleTimeout: time.Second})
	t0 := int64(1_700_000_000_000_000_000)
	brief := func(ssrc uint32, seq uint16, ns int64) capture.Brief {
		var b capture.Brief
		f := capturetest.Build(capturetest.Frame{Src: netip.MustParseAddrPort("10.0.0.1:4000"), Dst: netip.MustParseAddrPort("10.0.0.2:4002"),
			RTP: &capturetest.RTP{SSRC: ssrc, Seq: seq, Timestamp: uint32(seq) * 160}, Payload: make([]byte, 160)})
		if !b.Decode(f, &capture.Info{Timestamp: time.Unix(0, ns)}) {
			t.Fatal("Brief.Decode refused a test frame")
		}
		if b.Time() != ns {
			t.Fatalf("Brief time %d, want %d", b.Time(), ns)
		}
		if id, m := b.Stream(); id != -1 || m != 0 {
			t.Fatalf("a decoded Brief has stream %d mark %d, want -1 and 0", id, m)
		}
		return b
	}
	stream := func(b capture.Brief) int32 { id, _ := b.Stream(); return id }
	mark := func(b capture.Brief) uint32 { _, m := b.Stream(); return m }
	bs := []capture.Brief{brief(1, 1, t0), brief(2, 1, t0), {}, brief(1, 2, t0+20e6)}
	if n := tab.UpdateBriefs(bs); n != 3 {
		t.Fatalf("%d packets accounted, want 3", n)
	}
	ids := []int32{stream(bs[0]), stream(bs[1]), stream(bs[2]), stream(bs[3])}
	if ids[0] < 0 || ids[1] < 0 || ids[0] == ids[1] || ids[2] != -1 || ids[3] != ids[0] {
		t.Fatalf("ids %v: want two streams' ids, -1 for the zero Brief, the first stream's again", ids)
	}
	if tab.Mark(ids[0]) != 0 || tab.Mark(ids[1]) != 0 || mark(bs[0]) != 0 || mark(bs[3]) != 0 {
		t.Fatal("a new stream is marked")
	}
	tab.SetMark(ids[0], 7)
	tab.SetMark(ids[1], 9)
	next := []capture.Brief{brief(1, 3, t0+40e6), brief(2, 2, t0+40e6), brief(1, 5, t0+80e6)} // in order, in order, after a gap
	tab.UpdateBriefs(next)
	if tab.Mark(ids[0]) != 7 || mark(next[0]) != 7 || mark(next[1]) != 9 || mark(next[2]) != 7 || stream(next[2]) != ids[0] {
		t.Fatalf("marks %d (table), %d %d %d (Briefs) after updates, want 7, 7 9 7", tab.Mark(ids[0]), mark(next[0]), mark(next[1]), mark(next[2]))
	}
	// Stream 2 expires; stream 3 takes its place, unmarked.
	tab.UpdateBriefs([]capture.Brief{brief(1, 6, t0+2e9)})
	if n := tab.Expire(time.Unix(0, t0+2e9)); n != 1 {
		t.Fatalf("%d streams expired, want 1", n)
	}
	b3 := []capture.Brief{brief(3, 1, t0+2e9)}
	tab.UpdateBriefs(b3)
	if id := stream(b3[0]); id < 0 || tab.Mark(id) != 0 || mark(b3[0]) != 0 {
		t.Fatalf("new stream %d has mark %d, want 0", id, tab.Mark(id))
	}
	tab.ClearMarks()
	if tab.Mark(ids[0]) != 0 {
		t.Fatal("ClearMarks left a mark")
	}
}

// TestPrefetchFrames: the hint takes any frames, empty and nil ones too,
// and changes none.
func TestPrefetchFrames(t *testing.T) {
	frames := [][]byte{nil, {}, {1}, make([]byte, 218)}
	capture.PrefetchFrames(frames)
	capture.PrefetchFrames(nil)
	if frames[0] != nil || len(frames[1]) != 0 || frames[2][0] != 1 || len(frames[3]) != 218 {
		t.Fatal("PrefetchFrames changed its frames")
	}
}

// TestFromBriefForeign: FromBrief with a Brief that Brief.Decode did not
// fill from the frame (a zero one, or another frame's longer one) decodes
// the frame instead of trusting it, and does not panic.
func TestFromBriefForeign(t *testing.T) {
	short := capturetest.Build(capturetest.Frame{Src: netip.MustParseAddrPort("10.0.0.1:4000"), Dst: netip.MustParseAddrPort("10.0.0.2:4002"),
		RTP: &capturetest.RTP{SSRC: 1, Seq: 1}, Payload: make([]byte, 20)})
	long := capturetest.Build(capturetest.Frame{Src: netip.MustParseAddrPort("10.0.0.3:4000"), Dst: netip.MustParseAddrPort("10.0.0.4:4002"),
		RTP: &capturetest.RTP{SSRC: 2, Seq: 1}, Payload: make([]byte, 160)})
	var lb capture.Brief
	if !lb.Decode(long, nil) {
		t.Fatal("Brief.Decode refused a test frame")
	}
	var want capture.Packet
	if err := want.Decode(short, capture.LinkEthernet, nil); err != nil {
		t.Fatal(err)
	}
	for _, b := range []capture.Brief{{}, lb} {
		var p capture.Packet
		p.FromBrief(&b, short, nil)
		if p.Src != want.Src || p.RTP.SSRC != 1 || len(p.RTP.Payload) != 20 {
			t.Fatalf("FromBrief of a foreign Brief: %v ssrc %d, %d bytes; want the frame's own packet", p.Src, p.RTP.SSRC, len(p.RTP.Payload))
		}
	}
}
