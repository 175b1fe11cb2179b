package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/filter"
)

// packetPathCalls calls of 20 packets per direction: 20,000 streams and
// 400,000 frames of 218 bytes (87 MB with slice headers), far more than
// the caches hold (BenchmarkCaptureRing replays them).
const packetPathCalls = 10000

var packetPath struct {
	once   sync.Once
	frames [][]byte
	infos  []capture.Info
	span   time.Duration // capture time from first to last frame
	err    error
}

// loadPacketPath builds, once per process, the generator's VLAN-tagged
// G.711 frames.
func loadPacketPath(b *testing.B) ([][]byte, []capture.Info, time.Duration) {
	b.Helper()
	pp := &packetPath
	pp.once.Do(func() {
		calls, err := gen.Build(gen.BuildConfig{Calls: packetPathCalls, VLAN: 85, Priority: 5, Duration: 400 * time.Millisecond, Seed: 11})
		if err != nil {
			pp.err = err
			return
		}
		var buf bytes.Buffer
		if _, err := gen.Write(&buf, &gen.Config{Calls: calls, Seed: 11}); err != nil {
			pp.err = err
			return
		}
		src, err := capture.NewFileSource(&buf, capture.FileOptions{})
		if err != nil {
			pp.err = err
			return
		}
		fb := make([][]byte, 64)
		ib := make([]capture.Info, 64)
		for {
			n, err := src.ReadBatch(fb, ib)
			if err == io.EOF {
				break
			}
			if err != nil {
				pp.err = err
				return
			}
			for i := 0; i < n; i++ {
				pp.frames = append(pp.frames, append([]byte(nil), fb[i]...))
				pp.infos = append(pp.infos, ib[i])
			}
		}
		pp.span = pp.infos[len(pp.infos)-1].Timestamp.Sub(pp.infos[0].Timestamp) + 20*time.Millisecond
	})
	if pp.err != nil {
		b.Fatal(pp.err)
	}
	return pp.frames, pp.infos, pp.span
}

// rtpOffset is where the RTP header starts in the generator's frames:
// Ethernet, one 802.1Q tag, IPv4 without options, UDP.
const rtpOffset = 14 + 4 + 20 + 8

// BenchmarkPacketPath measures, per packet (one packet per op), what a
// capture worker does with a ring block: decode every frame in place,
// update the RTP stream table with the block (UpdateBatch) and look every
// packet up in the filter (MatchAll), at 10 to 100,000 streams with as
// many filter endpoints (see pathSet), so that one run shows whether the
// cost stays flat as the tables grow. "unbatched" is the same with one
// Update per packet. Then the parts, and gopacket's two decoders on the
// same frames for comparison (gopacket has no RTP layer: they stop at the
// UDP payload).
//
// One pass over the frames before the timer starts puts every stream in
// the table (pathSet.warm); between passes, outside the timer, every
// stream's sequence numbers, timestamps and capture times move on
// (pathSet.advance), so that every pass continues every stream in order.
func BenchmarkPacketPath(b *testing.B) {
	for _, n := range pathSizes {
		// Built by the first sub-benchmark that runs, so that a run of
		// one size builds only that size.
		var ps *pathSet
		var f *filter.Filter
		set := func(b *testing.B) (*pathSet, *filter.Filter) {
			if ps == nil {
				ps = newPathSet(b, n/2, n)
				f = ps.filter(b)
			}
			return ps, f
		}
		for _, v := range []struct {
			name      string
			unbatched bool
		}{{"decode+stream+filter", false}, {"unbatched", true}} {
			b.Run(fmt.Sprintf("%s/streams=%d", v.name, n), func(b *testing.B) {
				ps, f := set(b)
				tab := capture.NewStreamTable(capture.StreamTableConfig{MaxStreams: 2 * pathMaxSize})
				pw := newPathWorker(tab, f)
				step := pw.run
				if v.unbatched {
					step = pw.runUnbatched
				}
				ps.warm(step)
				b.SetBytes(int64(len(ps.frames[0])))
				b.ReportAllocs()
				b.ResetTimer()
				matched := ps.run(b, step)
				b.StopTimer()
				if matched != b.N {
					b.Fatalf("%d of %d packets matched an endpoint, want all", matched, b.N)
				}
				checkInOrder(b, tab)
			})
		}
		ps, f = nil, nil
	}
	var frames [][]byte
	var infos []capture.Info
	n := 0
	decodeSet := func(b *testing.B) {
		if frames == nil {
			ps := newPathSet(b, packetPathDecodeSize/2, packetPathDecodeSize)
			frames, infos, n = ps.frames, ps.infos, len(ps.frames)
		}
	}
	b.Run("decode", func(b *testing.B) {
		decodeSet(b)
		var p capture.Packet
		b.SetBytes(int64(len(frames[0])))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			j := i % n
			p.Decode(frames[j], capture.LinkEthernet, &infos[j])
		}
	})
	b.Run("gopacket.NewPacket", func(b *testing.B) {
		decodeSet(b)
		b.SetBytes(int64(len(frames[0])))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			pkt := gopacket.NewPacket(frames[i%n], layers.LayerTypeEthernet, gopacket.NoCopy)
			if pkt.Layer(layers.LayerTypeUDP) == nil {
				b.Fatal("no UDP")
			}
		}
	})
	b.Run("gopacket.DecodingLayerParser", func(b *testing.B) {
		decodeSet(b)
		var eth layers.Ethernet
		var dot1q layers.Dot1Q
		var ip4 layers.IPv4
		var ip6 layers.IPv6
		var udp layers.UDP
		var payload gopacket.Payload
		parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &udp, &payload)
		parser.IgnoreUnsupported = true
		decoded := make([]gopacket.LayerType, 0, 8)
		b.SetBytes(int64(len(frames[0])))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			parser.DecodeLayers(frames[i%n], &decoded)
			if len(udp.Payload) < 12 {
				b.Fatal("no UDP payload")
			}
		}
	})
}

// pathSizes are the numbers of streams, and of filter endpoints, of
// BenchmarkPacketPath's sized runs.
var pathSizes = []int{10, 100, 1000, 10000, 100000}

const (
	pathMaxSize          = 100000
	packetPathDecodeSize = 10000 // streams of the frames the decoders alone read
	// pathFrames is about how many frames a pathSet holds whatever its
	// number of streams (a whole number of rounds): 44 MB of frames, far
	// more than the caches hold, so that reading the frames costs the
	// same at every size and only the tables' growth shows.
	pathFrames = 200000
	pathBatch  = 256 // frames per ring read, as smserver's worker reads
	pathChunk  = 32  // frames decoded before the stream table takes them, as smserver's worker
	pathPT     = 20 * time.Millisecond
)

// pathSet is a synthetic capture for the sized packet-path benchmarks:
// calls of two streams each (phone to gateway, gateway to phone),
// 218-byte frames of 802.1Q-tagged G.711 (VLAN 85) like the generator's,
// in rounds: each round has one packet of every stream, the streams'
// packets spread evenly over the round's 20 ms, so that between two
// packets of a stream come one of every other stream (the working set is
// the whole table). Call c's phone is 10.1.c/256.c%256 (c < 65,536), its
// gateway 10.2.c/256.c%256. The frames lie in one buffer in arrival
// order.
type pathSet struct {
	calls, endpoints int
	rounds           int // packets per stream in frames
	frames           [][]byte
	infos            []capture.Info
	buf              []byte
}

func pathPhone(c int) netip.Addr   { return netip.AddrFrom4([4]byte{10, 1, byte(c >> 8), byte(c)}) }
func pathGateway(c int) netip.Addr { return netip.AddrFrom4([4]byte{10, 2, byte(c >> 8), byte(c)}) }
func pathIdle(c int) netip.Addr    { return netip.AddrFrom4([4]byte{10, 3, byte(c >> 8), byte(c)}) }

// newPathSet builds a pathSet of calls calls; endpoints is the size of its
// filter (pathSet.filter).
func newPathSet(b *testing.B, calls, endpoints int) *pathSet {
	b.Helper()
	if calls < 1 || calls > 65536 {
		b.Fatalf("pathSet of %d calls: 1 to 65,536", calls)
	}
	streams := 2 * calls
	ps := &pathSet{calls: calls, endpoints: endpoints, rounds: max(1, (pathFrames+streams-1)/streams)}
	payload := make([]byte, 160)
	tmpl := make([][]byte, streams)
	for s := range tmpl {
		c := s / 2
		phone := netip.AddrPortFrom(pathPhone(c), uint16(20000+c%5000*2))
		gw := netip.AddrPortFrom(pathGateway(c), uint16(30000+c%5000*2))
		src, dst := phone, gw
		if s%2 == 1 {
			src, dst = gw, phone
		}
		tmpl[s] = capturetest.Build(capturetest.Frame{
			VLANs: []capture.VLANTag{{TPID: 0x8100, TCI: 5<<13 | 85}},
			Src:   src, Dst: dst,
			// Sequence numbers start anywhere, so that streams wrap at
			// 65535 at different times, as they do.
			RTP:     &capturetest.RTP{SSRC: uint32(s)*2654435761 + 1, Seq: uint16(s * 7919), Timestamp: uint32(s) * 977},
			Payload: payload,
		})
	}
	size := len(tmpl[0])
	total := ps.rounds * streams
	ps.buf = make([]byte, total*size)
	ps.frames = make([][]byte, total)
	ps.infos = make([]capture.Info, total)
	t0 := time.Unix(1700000000, 0)
	for r := 0; r < ps.rounds; r++ {
		for s := 0; s < streams; s++ {
			k := r*streams + s
			fr := ps.buf[k*size : (k+1)*size : (k+1)*size]
			copy(fr, tmpl[s])
			rtp := fr[rtpOffset:]
			binary.BigEndian.PutUint16(rtp[2:4], binary.BigEndian.Uint16(rtp[2:4])+uint16(r))
			binary.BigEndian.PutUint32(rtp[4:8], binary.BigEndian.Uint32(rtp[4:8])+uint32(r)*160)
			ps.frames[k] = fr
			// Arrivals a frame's share of the round apart, each up to
			// half a share late (as a network delivers them: no stream
			// arrives exactly on time, and capture order is kept).
			share := pathPT / time.Duration(streams)
			late := time.Duration(uint32(k)*2654435761) % (share / 2)
			ps.infos[k] = capture.Info{Timestamp: t0.Add(time.Duration(r)*pathPT + time.Duration(s)*share + late),
				CaptureLength: size, Length: size}
		}
	}
	return ps
}

// advance moves every stream on by one pass over the frames: its packets'
// sequence numbers, timestamps and capture times by rounds packets.
func (ps *pathSet) advance() {
	d := time.Duration(ps.rounds) * pathPT
	for k, fr := range ps.frames {
		rtp := fr[rtpOffset:]
		binary.BigEndian.PutUint16(rtp[2:4], binary.BigEndian.Uint16(rtp[2:4])+uint16(ps.rounds))
		binary.BigEndian.PutUint32(rtp[4:8], binary.BigEndian.Uint32(rtp[4:8])+uint32(ps.rounds)*160)
		ps.infos[k].Timestamp = ps.infos[k].Timestamp.Add(d)
	}
}

// filter returns a filter of ps.endpoints sessions of one phone IP each:
// the phones of the first calls (as many as there are calls and
// endpoints), then phones with no call.
func (ps *pathSet) filter(b *testing.B) *filter.Filter {
	return pathFilter(b, ps.endpoints, func(i int) netip.Addr {
		if i < ps.calls {
			return pathPhone(i)
		}
		return pathIdle(i)
	})
}

// pathFilter returns a filter of n sessions, session i for agent 1001+i
// at the phone IP addr(i).
func pathFilter(b *testing.B, n int, addr func(int) netip.Addr) *filter.Filter {
	b.Helper()
	f := filter.New()
	sessions := make([]*filter.Session, n)
	for i := range sessions {
		ep, err := filter.ParseEndpoint(addr(i).String())
		if err != nil {
			b.Fatal(err)
		}
		sessions[i] = &filter.Session{ID: fmt.Sprint("s", i), Agent: fmt.Sprint(1001 + i), Endpoints: []filter.Endpoint{ep}, Supervisor: "127.0.0.1:42228"}
	}
	f.Set(sessions)
	return f
}

// warm makes one pass over the frames with step and advances the streams:
// every stream is then in the table, and the timed passes measure a
// capture's steady state (calls last minutes), not the first packets of
// 100,000 streams, their inserts, the table's growth and the page faults
// of its fresh memory.
func (ps *pathSet) warm(step func(frames [][]byte, infos []capture.Info) int) {
	for j := 0; j < len(ps.frames); j += pathBatch {
		end := min(j+pathBatch, len(ps.frames))
		step(ps.frames[j:end], ps.infos[j:end])
	}
	ps.advance()
}

// run calls step on the frames in ring-read batches for b.N packets,
// advancing the streams between passes outside the timer, and returns the
// sum of what step returned.
func (ps *pathSet) run(b *testing.B, step func(frames [][]byte, infos []capture.Info) int) int {
	total, sum := len(ps.frames), 0
	for i := 0; i < b.N; {
		j := i % total
		if j == 0 && i > 0 {
			b.StopTimer()
			ps.advance()
			b.StartTimer()
		}
		end := min(j+pathBatch, total, j+b.N-i)
		sum += step(ps.frames[j:end], ps.infos[j:end])
		i += end - j
	}
	return sum
}

// pathWorker is the per-block work of smserver's capture worker, without
// forwarding: decode, stream table, filter.
type pathWorker struct {
	tab     *capture.StreamTable
	f       *filter.Filter
	pkts    []capture.Packet
	briefs  []capture.Brief
	hits    []capture.Brief // the matched Briefs of a chunk, when only the monitored streams are tracked
	v       *filter.Verdicts
	matches []filter.Match
}

func newPathWorker(tab *capture.StreamTable, f *filter.Filter) *pathWorker {
	return &pathWorker{tab: tab, f: f, pkts: make([]capture.Packet, pathChunk), briefs: make([]capture.Brief, pathChunk),
		hits: make([]capture.Brief, 0, pathChunk), v: filter.NewVerdicts(f), matches: make([]filter.Match, 0, 8)}
}

// run takes a block as smserver's worker does when it tracks every
// stream: up to 32 frames at a time read into Briefs (DecodeBriefs),
// handed to the stream table at once (UpdateBriefs), then looked up in
// the filter through the streams' cached verdicts (filter.Verdicts: the
// filter itself is asked once per stream and filter change); it returns
// how many packets matched a session. A frame Brief.Decode refuses (none
// in these captures) is decoded whole, after the Briefs before it, as the
// worker does.
func (w *pathWorker) run(frames [][]byte, infos []capture.Info) int {
	return w.take(frames, infos, false)
}

// take is run, or runMonitored when monitored is true.
func (w *pathWorker) take(frames [][]byte, infos []capture.Info, monitored bool) int {
	matched := 0
	for base := 0; base < len(frames); base += pathChunk {
		end := min(base+pathChunk, len(frames))
		// The next chunk's headers, as the worker asks for them.
		capture.PrefetchFrames(frames[end:min(end+pathChunk, len(frames))])
		for i := base; i < end; i++ {
			if k := capture.DecodeBriefs(w.briefs[:end-i], frames[i:end], infos[i:end]); k > 0 {
				matched += w.flush(w.briefs[:k], frames[i:i+k], infos[i:i+k], monitored)
				if i += k; i == end {
					break
				}
			}
			p := &w.pkts[0]
			if p.Decode(frames[i], capture.LinkEthernet, &infos[i]) != nil || p.Kind != capture.KindRTP {
				continue
			}
			if !monitored {
				w.tab.Update(p, infos[i].Timestamp)
			}
			if w.matches = w.f.MatchAll(p, w.matches[:0]); len(w.matches) > 0 {
				matched++
				if monitored {
					w.tab.Update(p, infos[i].Timestamp)
				}
			}
		}
	}
	return matched
}

// flush hands Briefs to the stream table and looks them up in the filter,
// and returns how many matched a session. When only the monitored
// streams are tracked, the matched ones are made whole (to be forwarded)
// and handed to the stream table after the filter, at once.
func (w *pathWorker) flush(bs []capture.Brief, frames [][]byte, infos []capture.Info, monitored bool) int {
	tab, v := w.tab, w.v
	v.Begin(tab)
	matched := 0
	if !monitored {
		tab.UpdateBriefs(bs)
		for j := range bs {
			m, ok := v.Cached(&bs[j])
			if !ok {
				m = v.Match(&bs[j])
			}
			if len(m) > 0 {
				matched++
			}
		}
		return matched
	}
	hits := w.hits[:0]
	for set := v.Screen(bs); set != 0; set &= set - 1 {
		j := bits.TrailingZeros64(set)
		if m := v.Match(&bs[j]); len(m) > 0 {
			matched++
			w.pkts[0].FromBrief(&bs[j], frames[j], &infos[j])
			hits = append(hits, bs[j])
		}
	}
	tab.UpdateBriefs(hits)
	return matched
}

// runUnbatched is run one packet at a time, decoding each into one whole
// Packet (Decode, Update, MatchAll), as smserver's worker did before the
// Briefs.
func (w *pathWorker) runUnbatched(frames [][]byte, infos []capture.Info) int {
	p := &w.pkts[0]
	matched := 0
	for i := range frames {
		if p.Decode(frames[i], capture.LinkEthernet, &infos[i]) != nil || p.Kind != capture.KindRTP {
			continue
		}
		w.tab.Update(p, infos[i].Timestamp)
		if w.matches = w.f.MatchAll(p, w.matches[:0]); len(w.matches) > 0 {
			matched++
		}
	}
	return matched
}

// streamPackets decodes the first packet of n VLAN-tagged G.711 streams,
// each with its own addresses, source port and SSRC.
func streamPackets(b *testing.B, n int) []capture.Packet {
	b.Helper()
	pkts := make([]capture.Packet, n)
	payload := make([]byte, 160)
	for i := range pkts {
		frame := capturetest.Build(capturetest.Frame{
			VLANs:   []capture.VLANTag{{TPID: 0x8100, TCI: 5<<13 | 85}},
			Src:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 10, byte(i >> 8), byte(i)}), uint16(20000+i%1000*2)),
			Dst:     netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 20, byte(i >> 8), byte(i)}), 30000),
			RTP:     &capturetest.RTP{SSRC: uint32(i)*2654435761 + 1},
			Payload: payload,
		})
		if err := pkts[i].Decode(frame, capture.LinkEthernet, nil); err != nil || pkts[i].Kind != capture.KindRTP {
			b.Fatalf("decode stream %d: %v", i, err)
		}
	}
	return pkts
}

// BenchmarkStreamTable reports the per-packet cost of a stream update and
// the table's memory per tracked stream (B/stream) from 100 to 100,000
// concurrent streams. Packets visit the streams round-robin, so the
// working set is the whole table.
func BenchmarkStreamTable(b *testing.B) {
	for _, streams := range []int{100, 1000, 10000, 100000} {
		b.Run(fmt.Sprint("streams=", streams), func(b *testing.B) {
			pkts := streamPackets(b, streams)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			tab := capture.NewStreamTable(capture.StreamTableConfig{MaxStreams: 200000})
			t0 := time.Unix(1700000000, 0)
			for i := range pkts {
				tab.Update(&pkts[i], t0)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perStream := float64(after.HeapAlloc-before.HeapAlloc) / float64(streams)
			if tab.Len() != streams {
				b.Fatalf("%d streams tracked, want %d", tab.Len(), streams)
			}
			// Each packet is copied into one Packet before the update, as
			// a capture worker decodes every frame into the same Packet:
			// the packet is in the L1 cache and the misses are the table's.
			var p capture.Packet
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				k := i % streams
				round := i / streams
				p = pkts[k]
				p.RTP.SequenceNumber = uint16(round + 1)
				p.RTP.Timestamp = uint32(round+1) * 160
				tab.Update(&p, t0.Add(time.Duration(round+1)*20*time.Millisecond+roundLate(round)))
			}
			b.StopTimer()
			checkInOrder(b, tab)
			b.ReportMetric(perStream, "B/stream")
			runtime.KeepAlive(tab)
		})
		b.Run(fmt.Sprint("batch/streams=", streams), func(b *testing.B) {
			// The same through UpdateBatch, 64 packets at a time, as a
			// capture worker hands over a ring block.
			const batch = 64
			pkts := streamPackets(b, streams)
			tab := capture.NewStreamTable(capture.StreamTableConfig{MaxStreams: 200000})
			t0 := time.Unix(1700000000, 0)
			times := make([]time.Time, batch)
			for i := 0; i < streams; i += batch {
				for k := range times {
					times[k] = t0
				}
				tab.UpdateBatch(pkts[i:min(i+batch, streams)], times)
			}
			if tab.Len() != streams {
				b.Fatalf("%d streams tracked, want %d", tab.Len(), streams)
			}
			b.ReportAllocs()
			b.ResetTimer()
			// Each op is one packet: a batch stops at the end of the
			// streams and of b.N, so every round visits every stream once,
			// in order.
			for i := 0; i < b.N; {
				k := i % streams
				end := min(k+batch, streams, k+b.N-i)
				round := i / streams
				for j := k; j < end; j++ {
					pkts[j].RTP.SequenceNumber = uint16(round + 1)
					pkts[j].RTP.Timestamp = uint32(round+1) * 160
				}
				ts := t0.Add(time.Duration(round+1)*20*time.Millisecond + roundLate(round))
				for j := range times {
					times[j] = ts
				}
				tab.UpdateBatch(pkts[k:end], times[:end-k])
				i += end - k
			}
			b.StopTimer()
			checkInOrder(b, tab)
		})
	}
}

// roundLate is how late BenchmarkStreamTable's round of packets arrives:
// up to a millisecond, so that no stream's jitter is exactly 0 (an exactly
// periodic stream's jitter decays into subnormal floats, which the
// processor computes slowly).
func roundLate(round int) time.Duration {
	return time.Duration(uint32(round)*2654435761%1000) * time.Microsecond
}

// checkInOrder fails b unless every stream of tab saw each of its packets
// as the next in order: what BenchmarkStreamTable means to time.
func checkInOrder(b *testing.B, tab *capture.StreamTable) {
	b.Helper()
	for _, st := range tab.Snapshot(nil) {
		if st.Lost != 0 || st.Duplicates != 0 || st.OutOfOrder != 0 {
			b.Fatalf("stream %#x: lost %d, duplicates %d, out of order %d; every packet should be the next in order",
				st.SSRC, st.Lost, st.Duplicates, st.OutOfOrder)
		}
	}
}
