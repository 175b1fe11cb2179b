package supervisor

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/zaf/g711"
	"go.uber.org/goleak"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/silentmon/silentmon/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// call is one agent's phone sending a G.711 µ-law tone.
type call struct {
	id   string // session
	hz   float64
	ssrc uint32
	seq  uint16
	ts   uint32
	k    int // samples sent
	src  netip.AddrPort
	dst  netip.AddrPort
	sent []int16 // decode of what was sent
}

func newCall(id string, hz float64, n byte) *call {
	return &call{id: id, hz: hz, ssrc: 0x1000 * uint32(n), seq: uint16(n) * 1000, ts: uint32(n) * 7777,
		src: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 10, 0, n}), 20000),
		dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 20, 0, n}), 30000)}
}

// header returns the call's next RTP header (version 2, payload type
// pt, its sequence number, timestamp and SSRC) with room for a payload
// of size bytes after it.
func (c *call) header(pt uint8, size int) []byte {
	b := make([]byte, 12, 12+size)
	b[0], b[1] = 0x80, pt
	binary.BigEndian.PutUint16(b[2:], c.seq)
	binary.BigEndian.PutUint32(b[4:], c.ts)
	binary.BigEndian.PutUint32(b[8:], c.ssrc)
	return b
}

// next returns the call's next 20 ms RTP packet.
func (c *call) next() []byte {
	b := c.header(0, 160) // PCMU
	for i := 0; i < 160; i++ {
		v := int16(8000 * math.Sin(2*math.Pi*c.hz*float64(c.k)/playout.SampleRate))
		u := g711.EncodeUlawFrame(v)
		b = append(b, u)
		c.sent = append(c.sent, g711.DecodeUlawFrame(u))
		c.k++
	}
	c.seq++
	c.ts += 160
	return b
}

// rig drives a Supervisor's handler methods directly on a manual clock.
type rig struct {
	t     *testing.T
	clock *audiotest.Clock
	sup   *Supervisor
	peer  *relay.Peer
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	clock := audiotest.NewClock(time.Unix(1_700_000_000, 0))
	cfg.Clock = clock
	cfg.Playout.Clock = clock
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	sup, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, clock: clock, sup: sup,
		peer: &relay.Peer{Hello: relay.Hello{Role: relay.RoleCapture, Name: "capture-1"}}}
	t.Cleanup(func() { sup.Close() })
	return r
}

func (r *rig) notice(id, agent, state string) error {
	return r.sup.Session(r.peer, &relay.SessionNotice{Session: id, Agent: agent, State: state, Server: r.peer.Hello.Name})
}

// frame returns a parsed media frame of session id holding pkt.
func frame(t *testing.T, id string, c *call, pkt []byte) relay.MediaFrame {
	t.Helper()
	body := relay.AppendMediaHeader(nil, id, 1)
	body = relay.AppendMediaPacket(body, &relay.MediaPacket{Direction: filter.FromAgent, Time: time.Now().UnixNano(),
		Src: c.src, Dst: c.dst, VLAN: 85, Data: pkt})
	f, err := relay.ParseMedia(body)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (r *rig) media(id string, c *call) error {
	f := frame(r.t, id, c, c.next())
	return r.sup.Media(r.peer, &f)
}

// play sends n packets of each call, one every 20 ms of the clock.
func (r *rig) play(n int, calls ...*call) {
	r.t.Helper()
	for i := 0; i < n; i++ {
		for _, c := range calls {
			if err := r.media(c.id, c); err != nil {
				r.t.Fatalf("media of %s: %v", c.id, err)
			}
		}
		r.clock.Advance(20 * time.Millisecond)
	}
}

// settle lets the players play out what they hold.
func (r *rig) settle() { r.clock.Advance(time.Second) }

func readWAV(t *testing.T, path string) []int16 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gen.ReadWAV(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return s
}

// checkTone checks that samples hold the tone hz and not the tones of
// others (at least 40 dB below).
func checkTone(t *testing.T, name string, samples []int16, hz float64, others ...float64) {
	t.Helper()
	if len(samples) < 800 {
		t.Fatalf("%s: %d samples, want at least 0.1 s", name, len(samples))
	}
	own := audiotest.ToneLevel(samples, hz)
	for _, o := range others {
		if l := audiotest.ToneLevel(samples, o); l*100 > own {
			t.Fatalf("%s: level at %g Hz %.3g is not 40 dB below its own %g Hz (%.3g)", name, o, l, hz, own)
		}
	}
}

// checkExact checks that got holds want, from its first non-zero sample,
// and nothing else but trailing concealment.
func checkExact(t *testing.T, name string, got, want []int16) {
	t.Helper()
	off := audiotest.Align(got, want)
	if off < 0 {
		t.Fatalf("%s: %d samples: cannot align the %d samples sent", name, len(got), len(want))
	}
	for i, w := range want {
		if got[off+i] != w {
			t.Fatalf("%s: sample %d is %d, want %d (the decode of what was sent)", name, i, got[off+i], w)
		}
	}
}

// wavSizes checks a finalised WAV header: RIFF and data sizes match the
// file.
func wavSizes(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 44 {
		t.Fatalf("%s: %d bytes", path, len(b))
	}
	if riff, data := binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint32(b[40:]); int(riff) != len(b)-8 || int(data) != len(b)-44 {
		t.Fatalf("%s: header sizes RIFF %d, data %d; file of %d bytes", path, riff, data, len(b))
	}
}
