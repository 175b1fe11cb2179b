//go:build unix

package bench_test

import (
	"flag"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Flags of the relay load benchmark, after -args:
//
//	go test ./bench -run '^$' -bench Relay -benchtime 1x -args -relay.duration 30s
var (
	relayDuration    = flag.Duration("relay.duration", 3*time.Second, "relay load: duration of one run")
	relayCalls       = flag.Int("relay.calls", 500, "relay load: monitored calls (two streams each)")
	relaySupervisors = flag.Int("relay.supervisors", 10, "relay load: supervisor connections")
	relayRate        = flag.Int("relay.rate", 50000, "relay load: packets per second, all streams together")
	relayStrict      = flag.Bool("relay.strict", false, "relay load: fail when p99 latency exceeds 2 ms")
)

// relayP99Target is the latency target, capture to arrival.
const relayP99Target = 2 * time.Millisecond

// BenchmarkRelay is the relay's performance target: 1,000 monitored
// streams (500 calls, 50,000 packets/s of 172-byte RTP packets) relayed by
// one Forwarder to 10 supervisor services over mutual TLS on loopback,
// with 0 loss and a p99 latency from capture (Forward) to arrival at the
// supervisor's handler of at most 2 ms. One op is one run of
// -relay.duration; the metrics are those of the worst run. CPU is that of
// the whole process, so it counts both ends: matching excluded, it is the
// capture side's queueing, framing and TLS encryption plus the
// supervisor side's TLS decryption and parsing.
//
// Packet loss, duplicates and misrouted packets fail the benchmark;
// latency above the target is logged, and fails it with -relay.strict.
func BenchmarkRelay(b *testing.B) {
	load := relayLoad{
		Calls:       *relayCalls,
		Supervisors: *relaySupervisors,
		Rate:        *relayRate,
		Duration:    *relayDuration,
		PacketLen:   172,
	}
	if load.Calls < 1 || load.Supervisors < 1 || load.Supervisors > load.Calls || load.Rate < load.streams() ||
		load.Duration <= 0 || load.total()/load.streams() > 65535 {
		b.Fatalf("relay load %+v: need 1 ≤ supervisors ≤ calls, rate ≥ 2×calls, and at most 65535 packets per stream", load)
	}
	defer goleak.VerifyNone(b, goleak.IgnoreCurrent())
	rig := newRelayRig(b, load)
	defer rig.close()
	rig.warmUp(b)

	var worst relayResult
	var cpu time.Duration
	var sent int64
	b.SetBytes(int64(load.total() * load.PacketLen))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := rig.run(b)
		b.Logf("run %d: sent %d received %d lost %d dup %d misrouted %d dropped %d; latency p50 %v p99 %v max %v; cpu %v over %v; worst 100 ms window at %v (max %v); a 500 µs sleep wakes up late by %v at p99",
			i, res.Sent, res.Received, res.Lost, res.Duplicates, res.Misrouted, res.Dropped, res.P50, res.P99, res.Max, res.CPU, res.Wall,
			res.WorstWindowAt, res.WorstWindowMax, res.SchedP99)
		worst.Lost += res.Lost
		worst.Duplicates += res.Duplicates
		worst.Misrouted += res.Misrouted
		worst.Dropped += res.Dropped
		worst.P50 = max(worst.P50, res.P50)
		worst.P99 = max(worst.P99, res.P99)
		worst.Max = max(worst.Max, res.Max)
		worst.SchedP99 = max(worst.SchedP99, res.SchedP99)
		cpu += res.CPU
		sent += res.Sent
	}
	b.StopTimer()
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(float64(worst.Lost), "lost")
	b.ReportMetric(us(worst.P50), "p50-µs")
	b.ReportMetric(us(worst.P99), "p99-µs")
	b.ReportMetric(us(worst.Max), "max-µs")
	b.ReportMetric(us(cpu)/float64(sent), "cpu-µs/pkt")
	b.ReportMetric(us(worst.SchedP99), "sched-p99-µs")
	if worst.Lost != 0 || worst.Duplicates != 0 || worst.Misrouted != 0 || worst.Dropped != 0 {
		b.Errorf("%v: %d lost, %d duplicated, %d misrouted, %d dropped by the forwarder; want none",
			errLoad, worst.Lost, worst.Duplicates, worst.Misrouted, worst.Dropped)
	}
	if worst.P99 > relayP99Target {
		if *relayStrict {
			b.Errorf("%v: p99 latency %v above %v (wake-up lateness p99 %v)", errLoad, worst.P99, relayP99Target, worst.SchedP99)
		} else {
			b.Logf("p99 latency %v is above the %v target, wake-up lateness p99 %v (not failing without -relay.strict)",
				worst.P99, relayP99Target, worst.SchedP99)
		}
	}
}
