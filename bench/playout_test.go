package bench

import (
	"cmp"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/g722"
	"github.com/silentmon/silentmon/internal/g729"
	"github.com/silentmon/silentmon/internal/opus"
	"github.com/silentmon/silentmon/playout"
)

// callPayloads returns 50 payloads (one second, 20 ms each) of codec.
func callPayloads(b *testing.B, codec playout.Codec) [][]byte {
	b.Helper()
	out := make([][]byte, 50)
	switch codec {
	case playout.CodecPCMU:
		for i := range out {
			p := make([]byte, 160)
			for j := range p {
				p[j] = byte(i*7 + j*13)
			}
			out[i] = p
		}
	case playout.CodecG729:
		if !g729.Available() {
			b.Skip("skipping: G.729 is not built in")
		}
		enc, err := g729.NewEncoder(false)
		if err != nil {
			b.Fatal(err)
		}
		defer enc.Close()
		pcm := make([]int16, 8000)
		for i := range pcm {
			pcm[i] = int16(6000 * ((i/20)%2*2 - 1) * (i % 20) / 20)
		}
		for i := range out {
			p := make([]byte, 20)
			for f := range 2 {
				if _, err := enc.Encode(pcm[i*160+f*80:i*160+f*80+80], p[f*10:]); err != nil {
					b.Fatal(err)
				}
			}
			out[i] = p
		}
	case playout.CodecG722:
		if !playout.G722BuiltIn {
			b.Skip("skipping: G.722 is not built in (needs cgo and libspandsp-dev)")
		}
		enc, err := g722.NewEncoder(16000)
		if err != nil {
			b.Fatal(err)
		}
		defer enc.Close()
		pcm := tone(16000)
		for i := range out {
			p := make([]byte, 160)
			if _, err := enc.Encode(pcm[i*320:i*320+320], p); err != nil {
				b.Fatal(err)
			}
			out[i] = p
		}
	case playout.CodecOpus:
		if !playout.OpusBuiltIn {
			b.Skip("skipping: Opus is not built in (needs cgo and libopus-dev)")
		}
		// As the generator and a WebRTC agent send it: mono, 32 kbit/s.
		enc, err := opus.NewEncoder(opus.EncoderConfig{Rate: 48000, Bitrate: 32000})
		if err != nil {
			b.Fatal(err)
		}
		defer enc.Close()
		pcm := tone(48000)
		buf := make([]byte, 1275)
		for i := range out {
			n, err := enc.Encode(pcm[i*960:i*960+960], buf)
			if err != nil {
				b.Fatal(err)
			}
			out[i] = slices.Clone(buf[:n])
		}
	}
	return out
}

// tone returns one second at rate of a 1 kHz tone at half scale, with a
// 300 Hz one under it so that a codec has more than a single line to code.
func tone(rate int) []int16 {
	pcm := make([]int16, rate)
	for i := range pcm {
		x := float64(i) / float64(rate)
		pcm[i] = int16(12000*math.Sin(2*math.Pi*1000*x) + 4000*math.Sin(2*math.Pi*300*x))
	}
	return pcm
}

// BenchmarkPlayoutCall measures the CPU of one monitored call, both
// directions, from RTP packets to mixed samples (jitter buffer, decoding,
// mixing; no sink) at the session's rate (playout.RateFor: 8 kHz for
// G.711 and G.729, 16 kHz for G.722, 48 kHz for Opus). One op is one
// second of audio, so ns/op ÷ 1000 is µs of CPU per second of call, and
// ns/op ÷ 10⁷ is the share of one core (%core/call; the target is 3 at
// most). SetBytes counts the RTP packets
// of both directions. G.722 is sent on its static payload type 9 (RTP
// clock 8000 Hz, 160 bytes per 20 ms); Opus on payload type 111 as the
// SDP maps it (RTP clock 48000 Hz, 32 kbit/s, mono). allocs/op is per
// second of call, so 0 means no allocation per packet.
func BenchmarkPlayoutCall(b *testing.B) {
	for _, tc := range []struct {
		name   string
		codec  playout.Codec
		pt     uint8
		tsStep uint32
	}{
		{"G711", playout.CodecPCMU, 0, 160},
		{"G729", playout.CodecG729, 18, 160},
		{"G722", playout.CodecG722, 9, 160},
		{"Opus", playout.CodecOpus, 111, 960},
	} {
		b.Run(tc.name, func(b *testing.B) {
			pays := callPayloads(b, tc.codec)
			cfg := playout.Config{SampleRate: playout.RateFor(tc.codec)}
			if tc.codec == playout.CodecOpus {
				cfg.PayloadTypes = map[uint8]playout.Codec{tc.pt: playout.CodecOpus}
			}
			r := playout.NewRenderer(cfg, 1, false)
			defer r.Close()
			pkt := make([]byte, 12, 12+1275)
			pkt[0], pkt[1] = 0x80, tc.pt
			now := time.Unix(1_700_000_000, 0)
			seq, ts := uint16(0), uint32(0)
			samples := 0
			size := 0
			for _, p := range pays {
				size += 2 * (12 + len(p))
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for i := range 50 {
					pkt = append(pkt[:12], pays[i]...)
					binary.BigEndian.PutUint16(pkt[2:], seq)
					binary.BigEndian.PutUint32(pkt[4:], ts)
					for dir := playout.FromAgent; dir <= playout.ToAgent; dir++ {
						binary.BigEndian.PutUint32(pkt[8:], uint32(dir))
						r.Push(dir, now, pkt)
					}
					seq++
					ts += tc.tsStep
					now = now.Add(20 * time.Millisecond)
					for c := r.Render(now); len(c) > 0; c = r.Render(now) {
						samples += len(c)
					}
				}
			}
			b.StopTimer()
			if samples < (b.N-1)*cfg.SampleRate {
				b.Fatalf("rendered %d samples at %d Hz for %d s", samples, cfg.SampleRate, b.N)
			}
			if st := r.Stats().Total(); st.Concealed != 0 {
				b.Fatalf("%d frames concealed in a clean call: the packets were not played as sent", st.Concealed)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "µs-cpu/s-audio")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e7, "%core/call")
		})
	}
}

// BenchmarkPlayoutMemory reports the heap held by one monitored stream
// (half a Renderer) at the largest jitter-buffer target, with a full
// buffer.
func BenchmarkPlayoutMemory(b *testing.B) {
	const n = 100
	rs := make([]*playout.Renderer, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range rs {
		rs[i] = playout.NewRenderer(playout.Config{MaxDelay: playout.DefaultMaxDelay, InitialDelay: playout.DefaultMaxDelay}, 1, false)
		pkt := make([]byte, 12+160)
		pkt[0] = 0x80
		now := time.Unix(1_700_000_000, 0)
		for k := range 10 { // 200 ms buffered per direction
			binary.BigEndian.PutUint16(pkt[2:], uint16(k))
			binary.BigEndian.PutUint32(pkt[4:], uint32(k*160))
			rs[i].Push(playout.FromAgent, now, pkt)
			rs[i].Push(playout.ToAgent, now, pkt)
			now = now.Add(20 * time.Millisecond)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perStream := float64(after.HeapAlloc-before.HeapAlloc) / n / 2
	for range b.N {
	}
	b.ReportMetric(perStream, "B/stream")
	if perStream > 64<<10 {
		b.Errorf("%.0f bytes per stream, over 64 KiB", perStream)
	}
	runtime.KeepAlive(rs)
}

// BenchmarkPlayoutLatency reports the added latency of the jitter buffer:
// for every packet played, the delay from its arrival to its first sample
// leaving the buffer (p50, p99, max), on a clean stream and on one whose
// packets arrive with 0 to 30 ms of uniform jitter (reordering some). One
// op is one minute of one stream, rendered in 10 ms blocks as a Player
// does. The bound is the target the buffer reports plus one 10 ms block.
func BenchmarkPlayoutLatency(b *testing.B) {
	for _, tc := range []struct {
		name   string
		jitter time.Duration
	}{{"clean", 0}, {"jitter-30ms", 30 * time.Millisecond}} {
		b.Run(tc.name, func(b *testing.B) {
			const packets = 3000 // 60 s
			type arrival struct {
				at  time.Duration
				seq int
			}
			rng := rand.New(rand.NewPCG(7, 11))
			arr := make([]arrival, packets)
			for i := range arr {
				arr[i] = arrival{time.Duration(i)*20*time.Millisecond + time.Duration(rng.Float64()*float64(tc.jitter)), i}
			}
			slices.SortFunc(arr, func(x, y arrival) int { return cmp.Compare(x.at, y.at) })
			pkt := make([]byte, 12+160)
			pkt[0] = 0x80
			b.SetBytes(int64(packets * len(pkt)))
			b.ReportAllocs()
			var st playout.Stats
			for range b.N {
				r := playout.NewRenderer(playout.Config{}, 1, false)
				start := time.Unix(1_700_000_000, 0)
				next := time.Duration(0)
				for _, a := range arr {
					for ; next <= a.at; next += 10 * time.Millisecond {
						for c := r.Render(start.Add(next)); len(c) > 0; c = r.Render(start.Add(next)) {
						}
					}
					binary.BigEndian.PutUint16(pkt[2:], uint16(a.seq))
					binary.BigEndian.PutUint32(pkt[4:], uint32(a.seq*160))
					r.Push(playout.FromAgent, start.Add(a.at), pkt)
				}
				for c := r.Flush(); len(c) > 0; c = r.Flush() {
				}
				st = r.Stats()
				r.Close()
			}
			s := st.Dir(playout.FromAgent)
			b.ReportMetric(st.AddedLatencyP50Ms, "p50-ms")
			b.ReportMetric(st.AddedLatencyP99Ms, "p99-ms")
			b.ReportMetric(st.AddedLatencyMaxMs, "max-ms")
			b.ReportMetric(s.TargetMs, "target-ms")
			b.ReportMetric(float64(s.Late+s.Lost), "late+lost")
			if st.AddedLatencyP99Ms > s.TargetMs+10 {
				b.Errorf("p99 added latency %.1f ms is above the target %.1f ms + 10 ms", st.AddedLatencyP99Ms, s.TargetMs)
			}
		})
	}
}
