package filter

import (
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
)

// benchCalls is the number of generated calls whose packets the benchmark
// matches; the agents of the first half are monitored, so half of the
// packets hit (one direction or the other) and half miss.
const benchCalls = 20

// benchPackets generates benchCalls calls with the synthetic call
// generator, writes them as a pcap, reads them back with the capture
// package and returns the decoded packets (each with its own frame) and
// the calls.
func benchPackets(b *testing.B) (pkts []capture.Packet, calls []gen.Call, frameLen int) {
	b.Helper()
	calls, err := gen.Build(gen.BuildConfig{Calls: benchCalls, Duration: 200 * time.Millisecond, VLAN: 85, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := gen.Write(&buf, &gen.Config{Calls: calls, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	src, err := capture.NewFileSource(&buf, capture.FileOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	frames := make([][]byte, 32)
	infos := make([]capture.Info, 32)
	for {
		n, err := src.ReadBatch(frames, infos)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i++ {
			var p capture.Packet
			// The source reuses its buffer: keep a copy for the packet.
			if err := p.Decode(bytes.Clone(frames[i]), src.LinkType(), &infos[i]); err != nil {
				b.Fatal(err)
			}
			pkts = append(pkts, p)
			frameLen = len(frames[i])
		}
	}
	return pkts, calls, frameLen
}

// benchSessions returns n single-endpoint sessions: the agents of the
// first benchCalls/2 calls (one of them in desktop mode, by MAC), then
// fillers that no packet carries, a third each phone IPs, gateway port
// ranges and MACs, so that both lookup tables are populated at every
// size.
func benchSessions(n int, calls []gen.Call) []*Session {
	ss := make([]*Session, 0, n)
	add := func(e Endpoint) {
		id := fmt.Sprintf("s%06d", len(ss))
		ss = append(ss, &Session{ID: id, Agent: id, Endpoints: []Endpoint{e}, Supervisor: "127.0.0.1:42228"})
	}
	for i := 0; i < benchCalls/2 && len(ss) < n; i++ {
		if i == benchCalls/2-1 {
			add(Endpoint{MAC: calls[i].Agent.MAC, HasMAC: true})
			continue
		}
		add(Endpoint{IP: calls[i].Agent.Addr.Addr()})
	}
	for k := 0; len(ss) < n; k++ {
		a, c := byte(k>>16), byte(k>>8)
		d := byte(k)
		switch k % 3 {
		case 0:
			add(Endpoint{IP: netip.AddrFrom4([4]byte{172, 16 + a, c, d})})
		case 1:
			lo := uint16(10000 + (k%500)*100)
			add(Endpoint{IP: netip.AddrFrom4([4]byte{172, 32 + a, c, d}), PortLo: lo, PortHi: lo + 99})
		default:
			add(Endpoint{MAC: [6]byte{0x02, 0xbe, 0xef, a, c, d}, HasMAC: true})
		}
	}
	return ss
}

var benchSizes = []int{10, 100, 1000, 10000, 100000}

// BenchmarkMatch matches decoded generated packets, half hits and half
// misses, against tables of growing size: the cost per packet should stay
// flat, since a lookup is two or four map probes whatever the size.
func BenchmarkMatch(b *testing.B) {
	pkts, calls, frameLen := benchPackets(b)
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			f := New()
			f.Set(benchSessions(n, calls))
			hits := 0
			b.SetBytes(int64(frameLen))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, ok := f.Match(&pkts[i%len(pkts)]); ok {
					hits++
				}
			}
			b.StopTimer()
			checkHitRate(b, hits, len(pkts))
		})
	}
}

// BenchmarkMatchAll is BenchmarkMatch through MatchAll with a reused dst.
func BenchmarkMatchAll(b *testing.B) {
	pkts, calls, frameLen := benchPackets(b)
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			f := New()
			f.Set(benchSessions(n, calls))
			dst := make([]Match, 0, 8)
			hits := 0
			b.SetBytes(int64(frameLen))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				dst = f.MatchAll(&pkts[i%len(pkts)], dst[:0])
				if len(dst) > 0 {
					hits++
				}
			}
			b.StopTimer()
			checkHitRate(b, hits, len(pkts))
		})
	}
}

// checkHitRate fails the benchmark unless about half the packets hit,
// which proves it measured matching and not an empty table. It needs at
// least one pass over the packets to judge.
func checkHitRate(b *testing.B, hits, npkts int) {
	if b.N < npkts {
		return
	}
	r := float64(hits) / float64(b.N)
	if r < 0.45 || r > 0.55 {
		b.Fatalf("hit rate %.3f, want about 0.5", r)
	}
	b.ReportMetric(r, "hits/op")
}

// BenchmarkVerdictsScreen screens chunks of 32 Briefs against filters of
// growing size with IP endpoints only (smserver's default path before it
// asks Match): one Brief in ten comes from an endpoint, as on a busy SPAN
// port with one call in ten monitored, the rest are between strangers.
// One op is one Brief; the cost should stay flat, one bitmap word per
// address.
func BenchmarkVerdictsScreen(b *testing.B) {
	const pool = 32 * 64
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("endpoints=%d", n), func(b *testing.B) {
			ss := make([]*Session, n)
			ep := func(k int) netip.Addr { return netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}) }
			for k := range ss {
				id := fmt.Sprintf("s%06d", k)
				ss[k] = &Session{ID: id, Agent: id, Endpoints: []Endpoint{{IP: ep(k)}}, Supervisor: "127.0.0.1:42228"}
			}
			f := New()
			f.Set(ss)
			v := NewVerdicts(f)
			v.Begin(capture.NewStreamTable(capture.StreamTableConfig{}))
			bs := make([]capture.Brief, pool)
			for j := range bs {
				src := netip.AddrFrom4([4]byte{172, 16 + byte(j>>16), byte(j >> 8), byte(j)})
				if j%10 == 0 {
					src = ep(j * 7919 % n)
				}
				fr := frame{src: netip.AddrPortFrom(src, 20000), dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, byte(j >> 8), byte(j)}), 30000), ssrc: uint32(j)}
				if !bs[j].Decode(fr.bytes(), nil) {
					b.Fatal("Brief.Decode refused a test frame")
				}
			}
			kept := 0
			b.SetBytes(int64(len(frame{}.bytes())))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 32 {
				at := i % pool
				kept += bits.OnesCount64(v.Screen(bs[at : at+min(32, b.N-i)]))
			}
			b.StopTimer()
			// The tenth from endpoints, and about one percent of the
			// others at most (two addresses each, about one chance in
			// 200 to 500 each).
			if b.N >= pool && (kept < b.N/10 || kept > b.N/10+b.N/50) {
				b.Fatalf("Screen kept %d of %d Briefs, want the tenth from endpoints and few more", kept, b.N)
			}
			b.ReportMetric(float64(kept)/float64(b.N), "kept/op")
		})
	}
}
