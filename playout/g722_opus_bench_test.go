package playout_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/silentmon/silentmon/playout"
)

// callLoop plays a two-direction call of the payloads pays (cycled) on
// payload type pt, one 20 ms step at a time: a packet of each direction
// pushed, then what is due rendered. tsStep is the RTP timestamp step of
// 20 ms in the codec's clock.
type callLoop struct {
	r      *playout.Renderer
	pays   [][]byte
	pkt    [2][]byte
	now    time.Time
	seq    uint16
	ts     uint32
	tsStep uint32
	i      int
	out    int
}

func newCallLoop(t testing.TB, cfg playout.Config, pt uint8, tsStep uint32, pays [][]byte) *callLoop {
	t.Helper()
	l := &callLoop{r: playout.NewRenderer(cfg, 1, false), pays: pays, now: time.Unix(1000, 0), tsStep: tsStep}
	for d := range l.pkt {
		l.pkt[d] = make([]byte, 12, 12+1500)
		l.pkt[d][0], l.pkt[d][1] = 0x80, pt
		binary.BigEndian.PutUint32(l.pkt[d][8:], uint32(d+1))
	}
	return l
}

func (l *callLoop) step() {
	p := l.pays[l.i%len(l.pays)]
	l.i++
	for d, dir := range []playout.Direction{playout.FromAgent, playout.ToAgent} {
		b := append(l.pkt[d][:12], p...)
		binary.BigEndian.PutUint16(b[2:], l.seq)
		binary.BigEndian.PutUint32(b[4:], l.ts)
		l.r.Push(dir, l.now, b)
	}
	l.seq++
	l.ts += l.tsStep
	l.now = l.now.Add(20 * time.Millisecond)
	for c := l.r.Render(l.now); len(c) > 0; c = l.r.Render(l.now) {
		l.out += len(c)
	}
}

type codecCase struct {
	name   string
	cfg    playout.Config
	pt     uint8
	tsStep uint32
	pays   func(testing.TB) [][]byte
}

var wideCodecs = []codecCase{
	{"G722", playout.Config{}, 9, 160, func(t testing.TB) [][]byte {
		return g722Packets(t, sine(1000, 8000, 16000, 16000))
	}},
	{"Opus", playout.Config{PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}, 111, 960, func(t testing.TB) [][]byte {
		return opusPackets(t, sine(1000, 8000, 48000, 48000), false)
	}},
	// At the session rates: G.722 at 16 kHz, Opus at 48 kHz, and G.711
	// upsampled in a 16 and a 48 kHz session.
	{"G722-16k", playout.Config{SampleRate: 16000}, 9, 160, func(t testing.TB) [][]byte {
		return g722Packets(t, sine(1000, 8000, 16000, 16000))
	}},
	{"Opus-48k", playout.Config{SampleRate: 48000, PayloadTypes: map[uint8]playout.Codec{111: playout.CodecOpus}}, 111, 960, func(t testing.TB) [][]byte {
		return opusPackets(t, sine(1000, 8000, 48000, 48000), false)
	}},
	{"PCMU-16k", playout.Config{SampleRate: 16000}, 0, 160, pcmuPackets},
	{"PCMU-48k", playout.Config{SampleRate: 48000}, 0, 160, pcmuPackets},
}

// pcmuPackets returns a second of a 1 kHz tone in 20 ms µ-law payloads.
func pcmuPackets(testing.TB) [][]byte {
	tone := sine(1000, 8000, 8000, 8000)
	var out [][]byte
	for off := 0; off+160 <= len(tone); off += 160 {
		out = append(out, ulawOf(tone[off:off+160]))
	}
	return out
}

// TestWidebandPushRenderNoAllocs: once a G.722 or Opus call plays,
// pushing a packet of each direction and rendering what is due allocates
// nothing, and the output keeps the pace (160 samples per 20 ms).
func TestWidebandPushRenderNoAllocs(t *testing.T) {
	for _, c := range wideCodecs {
		t.Run(c.name, func(t *testing.T) {
			l := newCallLoop(t, c.cfg, c.pt, c.tsStep, c.pays(t))
			defer l.r.Close()
			for range 50 {
				l.step()
			}
			if n := testing.AllocsPerRun(200, l.step); n != 0 {
				t.Fatalf("%v allocations per packet pair, want 0", n)
			}
			st := l.r.Stats().Total()
			if st.Frames < 2*200 || st.Concealed != 0 || st.Talkspurts != 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// BenchmarkWidebandCall: one iteration is 20 ms of a call, a packet of
// each direction decoded and mixed. SetBytes counts the 16-bit samples of
// both directions decoded, and %core/call is the share of one core the
// call takes in real time (the target is 3 at most).
func BenchmarkWidebandCall(b *testing.B) {
	for _, c := range wideCodecs {
		b.Run(c.name, func(b *testing.B) {
			l := newCallLoop(b, c.cfg, c.pt, c.tsStep, c.pays(b))
			defer l.r.Close()
			for range 50 {
				l.step()
			}
			b.ReportAllocs()
			b.SetBytes(2 * 160 * 2)
			for b.Loop() {
				l.step()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/20e6*100, "%core/call")
		})
	}
}
