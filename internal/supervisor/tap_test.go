package supervisor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/silentmon/silentmon/relay"
)

// leg is one direction of a call: a µ-law tone of amplitude amp.
type leg struct {
	dir      filter.Direction
	hz, amp  float64
	ssrc     uint32
	seq      uint16
	ts       uint32
	k        int
	src, dst netip.AddrPort
}

func newLeg(dir filter.Direction, hz, amp float64, n byte) *leg {
	return &leg{dir: dir, hz: hz, amp: amp, ssrc: 0x2000 * uint32(n), seq: uint16(n) * 100, ts: uint32(n) * 999,
		src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 30, 0, n}), 20000),
		dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 40, 0, n}), 30000)}
}

// next returns the leg's next 20 ms RTP packet.
func (l *leg) next() []byte {
	b := make([]byte, 12, 12+160)
	b[0], b[1] = 0x80, 0
	binary.BigEndian.PutUint16(b[2:], l.seq)
	binary.BigEndian.PutUint32(b[4:], l.ts)
	binary.BigEndian.PutUint32(b[8:], l.ssrc)
	for range 160 {
		b = append(b, g711.EncodeUlawFrame(int16(l.amp*math.Sin(2*math.Pi*l.hz*float64(l.k)/playout.SampleRate))))
		l.k++
	}
	l.seq++
	l.ts += 160
	return b
}

// skip leaves out n packets (a pause in the leg's talk).
func (l *leg) skip(n int) {
	l.seq += uint16(n)
	l.ts += uint32(160 * n)
	l.k += 160 * n
}

// send hands pkt of l to the rig's Supervisor in session id, captured at
// capture, and to ref if not nil.
func (r *rig) send(id string, l *leg, pkt []byte, capture time.Time, ref *playout.Player) {
	r.t.Helper()
	body := relay.AppendMediaHeader(nil, id, 1)
	body = relay.AppendMediaPacket(body, &relay.MediaPacket{Direction: l.dir, Time: capture.UnixNano(),
		Src: l.src, Dst: l.dst, VLAN: 85, Data: pkt})
	f, err := relay.ParseMedia(body)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.sup.Media(r.peer, &f); err != nil {
		r.t.Fatal(err)
	}
	if ref != nil {
		flow := playout.Flow{Src: l.src, Dst: l.dst, VLAN: 85}
		if err := ref.PushFlow(playout.Direction(l.dir), flow, capture, pkt); err != nil {
			r.t.Fatal(err)
		}
	}
}

// talk sends n packets of each leg, one every 20 ms of the clock.
func (r *rig) talk(id string, n int, ref *playout.Player, legs ...*leg) {
	r.t.Helper()
	for range n {
		for _, l := range legs {
			r.send(id, l, l.next(), r.clock.Now(), ref)
		}
		r.clock.Advance(20 * time.Millisecond)
	}
}

// drainTap reads every frame t holds now.
func drainTap(t *Tap) []TapFrame {
	var out []TapFrame
	for {
		select {
		case f, ok := <-t.Frames():
			if !ok {
				return out
			}
			out = append(out, f)
		default:
			return out
		}
	}
}

// channels splits frames into their left and right samples.
func channels(frames []TapFrame) (left, right []int16) {
	for _, f := range frames {
		st := f.Stereo()
		for i := 0; i < len(st); i += 2 {
			left = append(left, st[i])
			right = append(right, st[i+1])
		}
	}
	return left, right
}

// TestTapBothDirections: a subscriber receives the session's audio in
// 20 ms stereo frames, the agent's 1 kHz tone on the left and the
// customer's 400 Hz on the right, each channel free of the other's tone;
// the pipeline delay is the capture-to-arrival delay plus the jitter
// buffer's target.
func TestTapBothDirections(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	if _, err := r.sup.Tap("s1"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("Tap of a session with no media: %v, want ErrNoSession", err)
	}
	agent := newLeg(filter.FromAgent, 1000, 8000, 1)
	customer := newLeg(filter.ToAgent, 400, 8000, 2)
	r.send("s1", agent, agent.next(), r.clock.Now().Add(-30*time.Millisecond), nil)
	tap, err := r.sup.Tap("s1")
	if err != nil {
		t.Fatal(err)
	}
	defer tap.Close()
	var frames []TapFrame
	for range 10 { // 2 s, read as it plays
		r.talk("s1", 10, nil, agent, customer)
		frames = append(frames, drainTap(tap)...)
	}
	if len(frames) < 80 {
		t.Fatalf("%d frames in 2 s, want about 100", len(frames))
	}
	for i := 1; i < len(frames); i++ {
		if d := frames[i].At.Sub(frames[i-1].At); d < 0 || d > 100*time.Millisecond {
			t.Fatalf("frame %d written %v after the previous one", i, d)
		}
	}
	left, right := channels(frames)
	checkTone(t, "left (agent)", left, 1000, 400)
	checkTone(t, "right (customer)", right, 400, 1000)
	if tap.Dropped() != 0 {
		t.Errorf("%d frames dropped for a subscriber that kept up", tap.Dropped())
	}
	d, ok := r.sup.PipelineDelay("s1")
	target := time.Duration(r.sup.Snapshot().Sessions[0].TargetMs * float64(time.Millisecond))
	// The last packets were captured when they arrived (the rig's clock).
	if !ok || d != target {
		t.Errorf("pipeline delay %v (%v), want the jitter buffer's target %v", d, ok, target)
	}
	if _, ok := r.sup.PipelineDelay("nope"); ok {
		t.Error("pipeline delay of an unknown session")
	}
}

// TestTapSlowSubscriber: a subscriber that reads nothing keeps the
// TapQueue most recent frames; every older one is dropped and counted,
// while the Player writes the whole session to its output.
func TestTapSlowSubscriber(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.wav")
	r := newRig(t, Config{Output: "wav:" + out})
	c := newCall("s1", 1000, 1)
	r.play(1, c)
	tap, err := r.sup.Tap("s1")
	if err != nil {
		t.Fatal(err)
	}
	r.play(149, c) // 3 s
	r.settle()
	sec := r.sup.Snapshot().Sessions[0].SecondsWritten
	if sec < 2.9 {
		t.Fatalf("the player wrote %.2f s of 3 s", sec)
	}
	published := int(math.Floor(sec * 50))
	if got := tap.Dropped(); got == 0 || int(got) < published-TapQueue-1 || int(got) > published-TapQueue {
		t.Errorf("%d frames dropped, want %d published less the %d queued", got, published, TapQueue)
	}
	frames := drainTap(tap)
	if len(frames) != TapQueue {
		t.Fatalf("%d frames queued, want %d", len(frames), TapQueue)
	}
	// The queue holds the latest frames, in order.
	for i := 1; i < len(frames); i++ {
		if frames[i].At.Before(frames[i-1].At) {
			t.Fatalf("queued frame %d is older than the one before it", i)
		}
	}
	if err := r.sup.Close(); err != nil {
		t.Fatal(err)
	}
	checkExact(t, "out.wav", readWAV(t, out), c.sent)
}

// TestTapEnds: a subscription ends (its channel closes) when its session
// closes, and a closed session cannot be tapped; a Tap closed by its
// subscriber frees its place; the per-session bound is enforced.
func TestTapEnds(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	if err := r.notice("s1", "1001", relay.SessionStarted); err != nil {
		t.Fatal(err)
	}
	c := newCall("s1", 1000, 1)
	r.play(5, c)
	var taps []*Tap
	for range MaxTapsPerSession {
		tp, err := r.sup.Tap("s1")
		if err != nil {
			t.Fatal(err)
		}
		taps = append(taps, tp)
	}
	if _, err := r.sup.Tap("s1"); !errors.Is(err, ErrTapLimit) {
		t.Fatalf("tap beyond the bound: %v, want ErrTapLimit", err)
	}
	taps[0].Close()
	taps[0].Close()
	for range taps[0].Frames() { // closed after what was queued
	}
	last, err := r.sup.Tap("s1")
	if err != nil {
		t.Fatalf("tap after one closed: %v", err)
	}
	r.play(5, c)
	if err := r.notice("s1", "1001", relay.SessionStopped); err != nil {
		t.Fatal(err)
	}
	n := 0
	for range last.Frames() { // ends: the session closed
		n++
	}
	if n == 0 {
		t.Error("no frame before the end")
	}
	if _, err := r.sup.Tap("s1"); !errors.Is(err, ErrNoSession) {
		t.Fatalf("tap of a closed session: %v, want ErrNoSession", err)
	}
	last.Close() // after the end: harmless
}

// TestTapOutputUnchanged: with a subscriber, a session's output holds
// exactly what a mono Player given the same packets at the same times
// writes: the WAV file byte for byte, the device sample for sample, with
// both directions loud enough that their sum saturates and a pause in
// the agent's talk.
func TestTapOutputUnchanged(t *testing.T) {
	for _, tc := range []struct {
		name   string
		device bool
	}{{"wav", false}, {"device", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out.wav")
			cfg := Config{Output: "wav:" + out}
			var dev *audiotest.Sink
			if tc.device {
				dev = audiotest.NewSink(1, true, nil)
				cfg = Config{Output: "portaudio", OpenDevice: func(string) (playout.Sink, error) { return dev, nil }}
			}
			r := newRig(t, cfg)
			var ref *playout.Player
			var refDev *audiotest.Sink
			refPath := filepath.Join(dir, "ref.wav")
			if tc.device {
				refDev = audiotest.NewSink(1, true, nil)
				ref = playout.NewPlayer(playout.Config{Clock: r.clock}, refDev)
			} else {
				f, err := os.OpenFile(refPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					t.Fatal(err)
				}
				w, err := playout.NewWAVSink(f, 1)
				if err != nil {
					t.Fatal(err)
				}
				ref = playout.NewPlayer(playout.Config{Clock: r.clock}, w)
			}
			defer ref.Close()
			agent := newLeg(filter.FromAgent, 1000, 24000, 1)
			customer := newLeg(filter.ToAgent, 700, 24000, 2)
			r.send("s1", agent, agent.next(), r.clock.Now(), ref)
			tap, err := r.sup.Tap("s1")
			if err != nil {
				t.Fatal(err)
			}
			defer tap.Close()
			r.talk("s1", 50, ref, agent, customer)
			agent.skip(25)
			r.talk("s1", 25, ref, customer)
			r.talk("s1", 50, ref, agent, customer)
			r.settle()
			if err := r.sup.Close(); err != nil {
				t.Fatal(err)
			}
			if err := ref.Close(); err != nil {
				t.Fatal(err)
			}
			if tc.device {
				got, want := dev.Samples(), refDev.Samples()
				if len(got) != len(want) || len(want) < 8000 {
					t.Fatalf("device got %d samples, a mono player %d", len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Fatalf("device sample %d is %d, a mono player's %d", i, got[i], want[i])
					}
				}
				return
			}
			got, _ := os.ReadFile(out)
			want, _ := os.ReadFile(refPath)
			if len(want) < 44+2*8000 || !bytes.Equal(got, want) {
				t.Fatalf("the WAV (%d bytes) differs from a mono player's (%d bytes)", len(got), len(want))
			}
			sat := 0
			for _, v := range readWAV(t, out) {
				if v == 32767 || v == -32768 {
					sat++
				}
			}
			if sat == 0 {
				t.Error("no saturated sample: the test does not exercise the mix's saturation")
			}
		})
	}
}
