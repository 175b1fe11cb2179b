package cluster

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkAnnouncePropagation measures one announce on A until both B and
// C hold the session, over mutual-TLS routes on loopback. It reports the
// p50 and p99 of that latency; bytes are the announce message's size.
func BenchmarkAnnouncePropagation(b *testing.B) {
	tr := newTrio(b, time.Minute, 10*time.Second)
	tr.waitMesh(b)
	a := tr.nodes[0]
	wb, cb := watch(tr.nodes[1])
	defer cb()
	wc, cc := watch(tr.nodes[2])
	defer cc()
	msg, _ := encodeMessage(&message{Kind: kindUp, From: "A", Sessions: []wireEntry{{Session: session("bench-000000", "agent", "10.1.0.1"), Owner: "A", Version: 1}}})
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%06d", i)
		start := time.Now()
		if err := a.Announce(session(id, "agent", "10.1.0.1")); err != nil {
			b.Fatal(err)
		}
		for {
			tb, okb := wb.at(id)
			tc, okc := wc.at(id)
			if okb && okc {
				lat = append(lat, max(tb.Sub(start), tc.Sub(start)))
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkStateApply measures merging one refresh of a known session, the
// commonest event on the bus.
func BenchmarkStateApply(b *testing.B) {
	st := newState("A", 0)
	e := wireEntry{Session: session("s1", "1001", "10.0.0.1"), Owner: "B", Version: 5}
	st.apply(e, t0, DefaultSessionTTL)
	b.SetBytes(1)
	b.ReportAllocs()
	for i := range b.N {
		st.apply(e, t0.Add(time.Duration(i)), DefaultSessionTTL)
	}
}
