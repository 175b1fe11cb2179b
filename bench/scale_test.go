package bench

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/silentmon/silentmon/capture"
)

// Scale of BenchmarkCaptureScale: the calls in the capture and the
// monitored sessions among them.
const (
	scaleCalls     = 5000 // 10,000 streams
	scaleMonitored = 500  // every tenth call's phone
)

// BenchmarkCaptureScale measures smserver's per-packet work on a busy SPAN
// port: 5,000 concurrent calls (10,000 streams) of which 500 agents are
// monitored, so one packet in ten matches a session. Each op is one
// packet; it reports the CPU time per packet (ns/pkt) and per monitored
// packet (ns/monitored-pkt: all the time spent divided by the packets
// that matched, i.e. what monitoring one stream costs when the rest must
// be read too). "track=monitored" is smserver's default (the stream table
// keeps the monitored streams only, updated after the filter);
// "track=all" is capture.track_all_streams (every stream in the table,
// updated a chunk of Briefs at a time, UpdateBriefs, before the filter).
// Forwarding to supervisors is not included. Instruction counts come from
// callgrind (docs/capture.md).
func BenchmarkCaptureScale(b *testing.B) {
	var ps *pathSet
	for _, all := range []bool{false, true} {
		name := "track=monitored"
		if all {
			name = "track=all"
		}
		b.Run(fmt.Sprintf("calls=%d/monitored=%d/%s", scaleCalls, scaleMonitored, name), func(b *testing.B) {
			if ps == nil {
				ps = newPathSet(b, scaleCalls, scaleMonitored)
			}
			f := pathFilter(b, scaleMonitored, func(i int) netip.Addr { return pathPhone(i * scaleCalls / scaleMonitored) })
			tab := capture.NewStreamTable(capture.StreamTableConfig{})
			pw := newPathWorker(tab, f)
			step := pw.runMonitored
			if all {
				step = pw.run
			}
			ps.warm(step)
			b.SetBytes(int64(len(ps.frames[0])))
			b.ReportAllocs()
			b.ResetTimer()
			matched := ps.run(b, step)
			b.StopTimer()
			// Two streams of every tenth call.
			if want := b.N / 10; matched < want-2*scaleMonitored-1 || matched > want+2*scaleMonitored+1 {
				b.Fatalf("%d of %d packets matched a session, want about %d", matched, b.N, want)
			}
			{
				wantStreams := 2 * scaleMonitored
				if all {
					wantStreams = 2 * scaleCalls
				}
				if tab.Len() != wantStreams {
					b.Fatalf("%d streams tracked, want %d", tab.Len(), wantStreams)
				}
			}
			checkInOrder(b, tab)
			ns := float64(b.Elapsed().Nanoseconds())
			b.ReportMetric(ns/float64(b.N), "ns/pkt")
			if matched > 0 {
				b.ReportMetric(ns/float64(matched), "ns/monitored-pkt")
			}
		})
	}
}

// runMonitored is run as smserver does by default: read every frame of a
// chunk into a Brief, look each up in the filter through the worker's
// Verdicts (uncached: the stream is not in the table), and make
// whole (FromBrief) and account in the stream table (UpdateBriefs, at
// once) only the matched ones.
func (w *pathWorker) runMonitored(frames [][]byte, infos []capture.Info) int {
	return w.take(frames, infos, true)
}
