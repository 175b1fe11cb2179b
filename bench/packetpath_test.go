package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
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
// the caches hold.
const (
	packetPathCalls  = 10000
	packetPathAgents = 10000
)

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

// continuation returns, per frame, what to add to its RTP sequence number
// and timestamp so that a second pass over the frames continues each
// stream: the stream's packet count, and the timestamp span of its packets
// plus one packet time.
func continuation(b *testing.B, frames [][]byte) (seqAdd []uint16, tsAdd []uint32) {
	b.Helper()
	type span struct {
		n           int
		first, last uint32
	}
	streams := map[capture.StreamKey]*span{}
	keys := make([]capture.StreamKey, len(frames))
	var p capture.Packet
	for i, f := range frames {
		if err := p.Decode(f, capture.LinkEthernet, nil); err != nil || p.Kind != capture.KindRTP || len(f) < rtpOffset+12 || f[rtpOffset] != 0x80 {
			b.Fatalf("frame %d is not plain RTP in a tagged IPv4 frame (%v)", i, err)
		}
		k := capture.StreamKey{Src: p.Src, Dst: p.Dst, SSRC: p.RTP.SSRC}
		keys[i] = k
		sp := streams[k]
		if sp == nil {
			sp = &span{first: p.RTP.Timestamp}
			streams[k] = sp
		}
		sp.n++
		sp.last = p.RTP.Timestamp
	}
	seqAdd, tsAdd = make([]uint16, len(frames)), make([]uint32, len(frames))
	for i, k := range keys {
		sp := streams[k]
		seqAdd[i] = uint16(sp.n)
		tsAdd[i] = sp.last - sp.first
		if sp.n > 1 {
			tsAdd[i] += (sp.last - sp.first) / uint32(sp.n-1)
		}
	}
	return seqAdd, tsAdd
}

// agentFilter configures one session per agent, keyed by the phone IP the
// generator gives call i (10.10.i/250.i%250+1).
func agentFilter(b *testing.B) *filter.Filter {
	b.Helper()
	f := filter.New()
	sessions := make([]*filter.Session, packetPathAgents)
	for i := range sessions {
		ep, err := filter.ParseEndpoint(netip.AddrFrom4([4]byte{10, 10, byte(i / 250), byte(i%250 + 1)}).String())
		if err != nil {
			b.Fatal(err)
		}
		sessions[i] = &filter.Session{ID: fmt.Sprint("s", i), Agent: fmt.Sprint(1001 + i), Endpoints: []filter.Endpoint{ep}, Supervisor: "127.0.0.1:42228"}
	}
	f.Set(sessions)
	return f
}

// BenchmarkPacketPath measures, per packet (one packet per op), what a
// capture worker does: decode in place, update the RTP stream table and
// look the packet up in the filter of 10,000 agents; then the parts, and
// gopacket's two decoders on the same frames for comparison (gopacket has
// no RTP layer: they stop at the UDP payload).
func BenchmarkPacketPath(b *testing.B) {
	frames, infos, span := loadPacketPath(b)
	n := len(frames)
	// Each pass over the frames moves, outside the timer, their capture
	// times on by the capture's span and each stream's RTP sequence
	// numbers and timestamps on by its packets in the capture, so that
	// every pass continues every stream in order (a replay of the same
	// sequence numbers would be all duplicates, which is not what a
	// capture worker sees).
	infos = append([]capture.Info(nil), infos...)
	seqAdd, tsAdd := continuation(b, frames)
	next := func(b *testing.B, i int) int {
		j := i % n
		if j == 0 && i > 0 {
			b.StopTimer()
			for k := range infos {
				infos[k].Timestamp = infos[k].Timestamp.Add(span)
				rtp := frames[k][rtpOffset:]
				binary.BigEndian.PutUint16(rtp[2:4], binary.BigEndian.Uint16(rtp[2:4])+seqAdd[k])
				binary.BigEndian.PutUint32(rtp[4:8], binary.BigEndian.Uint32(rtp[4:8])+tsAdd[k])
			}
			b.StartTimer()
		}
		return j
	}
	b.Run("decode+stream+filter", func(b *testing.B) {
		f := agentFilter(b)
		tab := capture.NewStreamTable(capture.StreamTableConfig{})
		var p capture.Packet
		matched := 0
		b.SetBytes(int64(len(frames[0])))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			j := next(b, i)
			if p.Decode(frames[j], capture.LinkEthernet, &infos[j]) != nil {
				b.Fatal("decode failed")
			}
			tab.Update(&p, infos[j].Timestamp)
			if _, ok := f.Match(&p); ok {
				matched++
			}
		}
		if b.N >= n && matched < b.N/2 {
			b.Fatalf("only %d of %d packets matched an agent", matched, b.N)
		}
	})
	b.Run("decode+stream", func(b *testing.B) {
		tab := capture.NewStreamTable(capture.StreamTableConfig{})
		var p capture.Packet
		b.SetBytes(int64(len(frames[0])))
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			j := next(b, i)
			p.Decode(frames[j], capture.LinkEthernet, &infos[j])
			tab.Update(&p, infos[j].Timestamp)
		}
	})
	b.Run("decode", func(b *testing.B) {
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
				tab.Update(&p, t0.Add(time.Duration(round+1)*20*time.Millisecond))
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
				ts := t0.Add(time.Duration(round+1) * 20 * time.Millisecond)
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
