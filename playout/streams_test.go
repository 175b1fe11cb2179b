package playout_test

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
)

// leg is one RTP stream of a call-flow test: a tone sent in 20 ms PCMU
// packets over spans of time. Within a leg the sequence number continues
// across spans (a hold and resume); the timestamp follows the time, so it
// jumps over a hold as a phone's does.
type leg struct {
	dir   playout.Direction
	flow  playout.Flow
	ssrc  uint32
	hz    float64
	spans [][2]time.Duration
}

func flowOf(src, dst string, vlan uint16) playout.Flow {
	return playout.Flow{Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst), VLAN: vlan}
}

func (l leg) arrivals() []farrival {
	var out []farrival
	seq := uint16(1000 + l.ssrc)
	for _, sp := range l.spans {
		for at := sp[0]; at < sp[1]; at += 20 * time.Millisecond {
			first := int(at / (time.Second / 8000))
			out = append(out, farrival{at, l.dir, l.flow,
				rtpPacket(0, seq, uint32(5000+first), l.ssrc, false, audiotest.ULawTone(l.hz, first, 160))})
			seq++
		}
	}
	return out
}

// arrivalsOf returns the packets of every leg in time order.
func arrivalsOf(legs []leg) []farrival {
	var arr []farrival
	for _, l := range legs {
		arr = append(arr, l.arrivals()...)
	}
	sortFlows(arr)
	return arr
}

type farrival struct {
	at   time.Duration
	dir  playout.Direction
	flow playout.Flow
	pkt  []byte
}

// runFlows renders the arrivals (in time order) with a block-by-block
// clock, as a Player does, and returns the output with the time of its
// first sample.
func runFlows(t *testing.T, cfg playout.Config, arr []farrival) ([]int16, time.Duration, playout.Stats) {
	t.Helper()
	r := playout.NewRenderer(cfg, 1, false)
	defer r.Close()
	var out []int16
	first := time.Duration(-1)
	next := time.Duration(0)
	emit := func(now time.Duration) {
		for c := r.Render(t0.Add(now)); len(c) > 0; c = r.Render(t0.Add(now)) {
			if first < 0 {
				first = now - time.Duration(len(c))*time.Second/8000
			}
			out = append(out, c...)
		}
	}
	for _, a := range arr {
		for ; next <= a.at; next += 10 * time.Millisecond {
			emit(next)
		}
		if err := r.PushFlow(a.dir, a.flow, t0.Add(a.at), a.pkt); err != nil {
			t.Fatal(err)
		}
	}
	for c := r.Flush(); len(c) > 0; c = r.Flush() {
		out = append(out, c...)
	}
	return out, first, r.Stats()
}

// expectation: over [from, to) of the input's time, the tones in on must
// be heard and those in off must not.
type expectation struct {
	from, to time.Duration
	on, off  []float64
}

// listen checks 100 ms windows of out against the expectations. out's
// sample 0 is at time 0 of the input's clock (the caller shifts the output
// by the delay of its first sample); windows within 60 ms of an
// expectation's edges are not checked.
func listen(t *testing.T, out []int16, exps []expectation) (right, checked int) {
	t.Helper()
	const win = 800
	at := func(d time.Duration) int { return int(d / (time.Second / 8000)) }
	var fails []string
	for _, e := range exps {
		for w := e.from + 60*time.Millisecond; w+100*time.Millisecond <= e.to-60*time.Millisecond; w += 100 * time.Millisecond {
			i := at(w)
			if i+win > len(out) {
				fails = append(fails, fmt.Sprintf("window at %v: output ends at %v", w, time.Duration(len(out))*time.Second/8000))
				checked++
				continue
			}
			x := out[i : i+win]
			ok := true
			for _, hz := range e.on {
				if l := audiotest.ToneLevel(x, hz); l < 3000 {
					ok = false
					fails = append(fails, fmt.Sprintf("window at %v: %v Hz inaudible (%.0f)", w, hz, l))
				}
			}
			for _, hz := range e.off {
				if l := audiotest.ToneLevel(x, hz); l > 300 {
					ok = false
					fails = append(fails, fmt.Sprintf("window at %v: %v Hz audible (%.0f)", w, hz, l))
				}
			}
			checked++
			if ok {
				right++
			}
		}
	}
	for i, f := range fails {
		if i == 5 {
			t.Errorf("... and %d more", len(fails)-5)
			break
		}
		t.Error(f)
	}
	return right, checked
}

// TestCallFlows plays call flows whose streams overlap, stop and resume,
// and checks by ear (a tone detector per 100 ms window) that every active
// leg is heard, every held or ended one is not, and nothing else is.
func TestCallFlows(t *testing.T) {
	s := time.Second
	phone := "10.10.0.1:20000"
	cust := flowOf(phone, "10.20.0.1:30000", 85)
	custIn := flowOf("10.20.0.1:30000", phone, 85)
	consult := flowOf("10.10.0.1:20002", "10.10.0.7:20010", 85)
	consultIn := flowOf("10.10.0.7:20010", "10.10.0.1:20002", 85)
	const agentHz, custHz, colHz, colAgentHz, strayHz = 700, 1100, 1500, 1900, 2500
	cases := []struct {
		name string
		legs []leg
		exps []expectation
	}{
		{"consult-and-retrieve", []leg{
			{playout.FromAgent, cust, 11, agentHz, [][2]time.Duration{{0, 3 * s}, {6 * s, 9 * s}}},
			{playout.ToAgent, custIn, 12, custHz, [][2]time.Duration{{0, 3 * s}, {6 * s, 9 * s}}},
			{playout.FromAgent, consult, 13, colAgentHz, [][2]time.Duration{{3200 * time.Millisecond, 5800 * time.Millisecond}}},
			{playout.ToAgent, consultIn, 14, colHz, [][2]time.Duration{{3200 * time.Millisecond, 5800 * time.Millisecond}}},
		}, []expectation{
			{0, 3 * s, []float64{agentHz, custHz}, []float64{colHz, colAgentHz}},
			{3200 * time.Millisecond, 5800 * time.Millisecond, []float64{colHz, colAgentHz}, []float64{agentHz, custHz}},
			{6 * s, 9 * s, []float64{agentHz, custHz}, []float64{colHz, colAgentHz}},
		}},
		{"overlapping-calls", []leg{
			{playout.FromAgent, cust, 11, agentHz, [][2]time.Duration{{0, 6 * s}}},
			{playout.ToAgent, custIn, 12, custHz, [][2]time.Duration{{0, 6 * s}}},
			{playout.FromAgent, consult, 13, colAgentHz, [][2]time.Duration{{2 * s, 8 * s}}},
			{playout.ToAgent, consultIn, 14, colHz, [][2]time.Duration{{2 * s, 8 * s}}},
		}, []expectation{
			{0, 2 * s, []float64{agentHz, custHz}, []float64{colHz, colAgentHz}},
			{2 * s, 6 * s, []float64{agentHz, custHz, colHz, colAgentHz}, nil},
			{6 * s, 8 * s, []float64{colHz, colAgentHz}, []float64{agentHz, custHz}},
		}},
		{"stray-packet", []leg{
			{playout.FromAgent, cust, 11, agentHz, [][2]time.Duration{{0, 6 * s}}},
			{playout.ToAgent, custIn, 12, custHz, [][2]time.Duration{{0, 6 * s}}},
			{playout.ToAgent, custIn, 99, strayHz, [][2]time.Duration{{3 * s, 3*s + 20*time.Millisecond}}},
		}, []expectation{
			{0, 2900 * time.Millisecond, []float64{agentHz, custHz}, []float64{strayHz}},
			{3100 * time.Millisecond, 6 * s, []float64{agentHz, custHz}, []float64{strayHz}},
		}},
		{"same-ip-two-vlans", []leg{
			{playout.FromAgent, cust, 11, agentHz, [][2]time.Duration{{0, 5 * s}}},
			{playout.FromAgent, flowOf(phone, "10.20.0.1:30000", 86), 11, colAgentHz, [][2]time.Duration{{0, 5 * s}}},
		}, []expectation{
			{0, 5 * s, []float64{agentHz, colAgentHz}, []float64{custHz}},
		}},
		{"resume-with-new-ssrc", []leg{
			{playout.FromAgent, cust, 11, agentHz, [][2]time.Duration{{0, 3 * s}}},
			{playout.FromAgent, cust, 21, colAgentHz, [][2]time.Duration{{5 * s, 8 * s}}},
		}, []expectation{
			{0, 3 * s, []float64{agentHz}, []float64{colAgentHz}},
			{3100 * time.Millisecond, 4900 * time.Millisecond, nil, []float64{agentHz, colAgentHz}},
			{5 * s, 8 * s, []float64{colAgentHz}, []float64{agentHz}},
		}},
		{"hold-30s-same-ssrc", []leg{
			{playout.FromAgent, cust, 11, agentHz, [][2]time.Duration{{0, 2 * s}, {32 * s, 34 * s}}},
		}, []expectation{
			{0, 2 * s, []float64{agentHz}, nil},
			{2100 * time.Millisecond, 31900 * time.Millisecond, nil, []float64{agentHz}},
			{32 * s, 34 * s, []float64{agentHz}, nil},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			arr := arrivalsOf(tc.legs)
			out, first, st := runFlows(t, playout.Config{}, arr)
			// Map the input's time onto the output: sample 0 is the
			// first packet's, delayed by the buffer.
			shift := int(first / (time.Second / 8000))
			if first < 0 || first > 60*time.Millisecond {
				t.Fatalf("the output starts %v after the first packet", first)
			}
			pad := make([]int16, shift)
			right, checked := listen(t, append(pad, out...), tc.exps)
			t.Logf("%d/%d windows right; %d streams, latency p50 %.1f ms p99 %.1f ms",
				right, checked, len(st.Streams), st.AddedLatencyP50Ms, st.AddedLatencyP99Ms)
			pkts := len(arr)
			tot := st.Total()
			if tot.Packets != uint64(pkts) || tot.Frames != uint64(pkts) || tot.Lost != 0 || tot.Late != 0 {
				t.Errorf("%d packets sent; pushed %d, played %d, lost %d, late %d", pkts, tot.Packets, tot.Frames, tot.Lost, tot.Late)
			}
		})
	}
}

func sortFlows(a []farrival) {
	slices.SortStableFunc(a, func(x, y farrival) int { return cmp.Compare(x.at, y.at) })
}

// TestStreamRetiredAndRevived: a stream idle past RetireAfter is retired
// without touching the others, and comes back with its figures when it
// resumes; a flood of streams keeps at most MaxStreams active.
func TestStreamRetiredAndRevived(t *testing.T) {
	a := flowOf("10.10.0.1:20000", "10.20.0.1:30000", 0)
	b := flowOf("10.20.0.1:30000", "10.10.0.1:20000", 0)
	legs := []leg{
		{playout.FromAgent, a, 1, 700, [][2]time.Duration{{0, time.Second}, {15 * time.Second, 16 * time.Second}}},
		{playout.ToAgent, b, 2, 1100, [][2]time.Duration{{0, 16 * time.Second}}},
	}
	arr := arrivalsOf(legs)
	r := playout.NewRenderer(playout.Config{RetireAfter: 5 * time.Second}, 1, false)
	defer r.Close()
	retiredSeen := false
	for _, x := range arr {
		for c := r.Render(t0.Add(x.at)); len(c) > 0; c = r.Render(t0.Add(x.at)) {
		}
		if err := r.PushFlow(x.dir, x.flow, t0.Add(x.at), x.pkt); err != nil {
			t.Fatal(err)
		}
		if x.at == 10*time.Second {
			st := r.Stats()
			for _, s := range st.Streams {
				if s.SSRC == 1 && !s.Active && s.Packets == 50 {
					retiredSeen = true
				}
				if s.SSRC == 2 && (!s.Active || s.Lost != 0) {
					t.Errorf("the other stream was touched: %+v", s)
				}
			}
		}
	}
	if !retiredSeen {
		t.Error("the idle stream was not retired after 5 s")
	}
	st := r.Stats()
	if len(st.Streams) != 2 || st.Dir(playout.FromAgent).Packets != 100 || !st.Dir(playout.FromAgent).Active {
		t.Errorf("after the resume: %+v", st.Streams)
	}

	// 40 streams, one packet each, at once: at most MaxStreams play.
	r2 := playout.NewRenderer(playout.Config{MaxStreams: 8}, 1, false)
	defer r2.Close()
	for i := range 40 {
		r2.PushFlow(playout.ToAgent, a, t0, rtpPacket(0, 1, 0, uint32(100+i), false, audiotest.ULawTone(700, 0, 160)))
	}
	st = r2.Stats()
	active := 0
	for _, s := range st.Streams {
		if s.Active {
			active++
		}
	}
	if active != 8 || st.Evicted != 32 || st.Total().Packets != 40 {
		t.Errorf("%d active, %d evicted, %d packets", active, st.Evicted, st.Total().Packets)
	}
}

// TestCleanCallPhaseContinuous: a minute of a clean call whose packets
// reach the buffer with the small delivery variation of a live relay (0 to
// 8 ms, and every second one packet held back to arrive with the next)
// plays bit-exact from start to
// end: no slip, stretch or concealment, so no click or phase jump.
func TestCleanCallPhaseContinuous(t *testing.T) {
	const frames = 3000
	audio := speechLike(frames*160, false, 9)
	rng := rand.New(rand.NewPCG(3, 4))
	var arr []farrival
	f := flowOf("10.10.0.1:20000", "10.20.0.1:30000", 85)
	for i := range frames {
		at := time.Duration(i)*20*time.Millisecond + time.Duration(rng.Float64()*float64(8*time.Millisecond))
		if i%50 == 48 { // a burst: held back and released with the next
			at = time.Duration(i+1)*20*time.Millisecond + time.Millisecond
		}
		arr = append(arr, farrival{at, playout.FromAgent, f,
			rtpPacket(0, uint16(40000+i), uint32(i*160), 5, i == 0, audio[i*160:(i+1)*160])})
	}
	sortFlows(arr)
	out, _, st := runFlows(t, playout.Config{}, arr)
	s := st.Dir(playout.FromAgent)
	want := decodeRef(audio, false)
	if d := firstDiff(out, want); d >= 0 {
		t.Errorf("output differs from the decoded call at sample %d (%.3f s) of %d: %+v", d, float64(d)/8000, len(out), s)
	}
	if s.Slips+s.Stretches+s.Concealed+s.Late+s.Lost != 0 {
		t.Errorf("slips %d, stretches %d, concealed %d, late %d, lost %d on a clean call", s.Slips, s.Stretches, s.Concealed, s.Late, s.Lost)
	}
	t.Logf("target %.1f ms, added latency p50 %.1f ms p99 %.1f ms max %.1f ms", s.TargetMs, st.AddedLatencyP50Ms, st.AddedLatencyP99Ms, st.AddedLatencyMaxMs)
	if st.AddedLatencyP99Ms > s.TargetMs+10 {
		t.Errorf("p99 added latency %.1f ms above the target %.1f ms + 10 ms", st.AddedLatencyP99Ms, s.TargetMs)
	}
}

// TestFirstPacketsDelayed: the first packets of a call reach the buffer
// late and together (held behind the relay's connection set-up), the rest
// on time. The talkspurt starts as the fastest path allows (here the
// first packet's own arrival, 45 ms after its time), so the whole call is
// not played with the set-up's delay on top of the 40 ms target (85 ms).
func TestFirstPacketsDelayed(t *testing.T) {
	const frames = 500
	audio := speechLike(frames*160, false, 4)
	f := flowOf("10.10.0.1:20000", "10.20.0.1:30000", 0)
	var arr []farrival
	for i := range frames {
		at := time.Duration(i) * 20 * time.Millisecond
		if i < 3 {
			at = 45 * time.Millisecond // set-up: 45 ms for the first
		}
		arr = append(arr, farrival{at, playout.FromAgent, f,
			rtpPacket(0, uint16(i), uint32(i*160), 5, false, audio[i*160:(i+1)*160])})
	}
	sortFlows(arr)
	out, _, st := runFlows(t, playout.Config{}, arr)
	s := st.Dir(playout.FromAgent)
	if d := firstDiff(out, decodeRef(audio, false)); d >= 0 {
		t.Errorf("output differs from the call at sample %d: %+v", d, s)
	}
	t.Logf("delay played %.1f ms; added latency p50 %.1f ms p99 %.1f ms", s.TargetMs, st.AddedLatencyP50Ms, st.AddedLatencyP99Ms)
	if s.TargetMs > 50 || st.AddedLatencyP99Ms > 55 {
		t.Errorf("played with %.1f ms of delay, p99 %.1f ms: the set-up's delay stayed", s.TargetMs, st.AddedLatencyP99Ms)
	}
}
