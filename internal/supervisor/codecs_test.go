package supervisor

import (
	"encoding/binary"
	"math"
	"path/filepath"
	"testing"

	"github.com/silentmon/silentmon/internal/g729"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/relay"
)

// g729Call is call sending a 1 kHz tone in G.729 (two frames a packet)
// on payload type pt, with a telephone event (RFC 4733, payload type
// ev) after every fifth packet in the same stream, as a phone sends DTMF;
// want is bcg729's decode of every frame sent.
type g729Call struct {
	*call
	pt, ev uint8
	enc    *g729.Encoder
	ref    *g729.Decoder
	want   []int16
	n      int
}

func newG729Call(t *testing.T, id string, pt, ev uint8) *g729Call {
	t.Helper()
	if !playout.G729BuiltIn {
		t.Skip("skipping: G.729 is not built in (needs cgo and libbcg729-dev)")
	}
	enc, err := g729.NewEncoder(false)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := g729.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	c := &g729Call{call: newCall(id, 1000, 3), pt: pt, ev: ev, enc: enc, ref: ref}
	t.Cleanup(func() { enc.Close(); ref.Close() })
	return c
}

// packets returns the call's next RTP packets: a 20 ms G.729 packet, and
// after every fifth a telephone event.
func (c *g729Call) packets(t *testing.T) [][]byte {
	b := c.header(c.pt, 20)
	for range 2 {
		pcm := make([]int16, 80)
		for i := range pcm {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*c.hz*float64(c.k)/playout.SampleRate))
			c.k++
		}
		var f [10]byte
		if n, err := c.enc.Encode(pcm, f[:]); err != nil || n != 10 {
			t.Fatalf("encode: %d, %v", n, err)
		}
		b = append(b, f[:]...)
		out := make([]int16, 80)
		if err := c.ref.Decode(f[:], false, out); err != nil {
			t.Fatal(err)
		}
		c.want = append(c.want, out...)
	}
	c.seq++
	c.ts += 160
	c.n++
	out := [][]byte{b}
	if c.n%5 == 0 {
		// Digit 5, volume 10, duration 160: a loud pattern if it were
		// decoded as voice.
		e := make([]byte, 12, 16)
		e[0], e[1] = 0x80, c.ev
		binary.BigEndian.PutUint16(e[2:], c.seq)
		binary.BigEndian.PutUint32(e[4:], c.ts)
		binary.BigEndian.PutUint32(e[8:], c.ssrc)
		e = append(e, 5, 10, 0, 160)
		c.seq++
		out = append(out, e)
	}
	return out
}

// playG729 sends n packets of c (and its events), one every 20 ms.
func (r *rig) playG729(n int, c *g729Call) {
	r.t.Helper()
	for range n {
		for _, p := range c.packets(r.t) {
			f := frame(r.t, c.id, c.call, p)
			if err := r.sup.Media(r.peer, &f); err != nil {
				r.t.Fatal(err)
			}
		}
		r.clock.Advance(20 * 1e6)
	}
}

func (r *rig) sdpNotice(id, state string, types map[uint8]string, dropped int) {
	r.t.Helper()
	err := r.sup.Session(r.peer, &relay.SessionNotice{Session: id, Agent: "1001", State: state, Server: r.peer.Hello.Name,
		PayloadTypes: relay.PayloadTypeMap{Types: types, Dropped: dropped}})
	if err != nil {
		r.t.Fatal(err)
	}
}

// TestSDPPayloadTypes: with no --codec mapping, G.729 on dynamic type 96
// announced by the session's started notice plays as G.729, sample for
// sample bcg729's decode of the frames sent, and the telephone events on
// 101 in the same stream are recognised and not played (the output holds
// nothing but the G.729 audio). A codecs notice moving G.729 to 97 makes
// 97 play the same way. Without the notice's types nothing of 96 plays
// (the type is unknown), so the test fails on a supervisor that ignores
// them.
func TestSDPPayloadTypes(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{session}.wav")})
	c := newG729Call(t, "s96", 96, 101)
	r.sdpNotice("s96", relay.SessionStarted, map[uint8]string{0: "PCMU/8000", 96: "G729/8000", 101: "telephone-event/8000"}, 0)
	r.playG729(100, c)
	r.sdpNotice("s96", relay.SessionCodecs, map[uint8]string{97: "G729/8000", 101: "telephone-event/8000"}, 0)
	c.pt = 97
	r.playG729(100, c)
	r.settle()
	st := r.sup.Snapshot()
	if len(st.Sessions) != 1 || len(st.Sessions[0].Streams) != 1 {
		t.Fatalf("status %+v: want one session with one stream", st)
	}
	if s := st.Sessions[0].Streams[0]; s.Codec != "G729" {
		t.Fatalf("stream %+v: codec %s, want G729", s, s.Codec)
	}
	sess := (*r.sup.table.Load())["s96"]
	x := sess.player.Stats().Total()
	if x.Ignored != 40 || x.UnknownCodec != 0 {
		t.Fatalf("ignored %d (telephone events), unknown codec %d; want 40 and 0", x.Ignored, x.UnknownCodec)
	}
	if err := r.sup.Close(); err != nil {
		t.Fatal(err)
	}
	got := readWAV(t, filepath.Join(dir, "s96.wav"))
	checkExact(t, "s96", got, c.want)
}

// TestExplicitCodecWins: a type the supervisor's own configuration maps
// (--codec) keeps that codec whatever the SDP says; the SDP's other
// types still apply.
func TestExplicitCodecWins(t *testing.T) {
	r := newRig(t, Config{Output: "null", Playout: playout.Config{PayloadTypes: map[uint8]playout.Codec{96: playout.CodecNone}}})
	c := newG729Call(t, "sx", 96, 101)
	r.sdpNotice("sx", relay.SessionStarted, map[uint8]string{96: "G729/8000", 101: "telephone-event/8000"}, 0)
	r.playG729(20, c)
	r.settle()
	x := (*r.sup.table.Load())["sx"].player.Stats().Total()
	if x.Ignored != 24 || x.Frames != 0 {
		t.Fatalf("ignored %d, played %d: want all 24 packets ignored (96 is none by configuration)", x.Ignored, x.Frames)
	}
}

// TestUnknownEncodingNotDecoded: a type the SDP gives an encoding the
// player cannot decode (or a known one at another rate) is dropped, even
// when it is a static type that would otherwise decode as G.711.
func TestUnknownEncodingNotDecoded(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	c := newCall("so", 1000, 4)
	r.sdpNotice("so", relay.SessionStarted, map[uint8]string{0: "PCMU/16000"}, 0)
	r.play(20, c)
	r.settle()
	x := (*r.sup.table.Load())["so"].player.Stats().Total()
	if x.Frames != 0 || x.UnknownCodec != 20 {
		t.Fatalf("played %d, unknown %d: want 0 and 20", x.Frames, x.UnknownCodec)
	}
}

// TestHostilePayloadTypesCounted: the entries a notice's decoding left
// out are counted in Totals and the metric; the valid ones apply.
func TestHostilePayloadTypesCounted(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	var n relay.SessionNotice
	body := `{"session":"sh","agent":"1001","state":"started","payload_types":{"96":"G729/8000","300":"x","-4":"y","97":"a b","98":5}}`
	if err := relay.DecodeJSON(relay.MsgSession, []byte(body), &n); err != nil {
		t.Fatal(err)
	}
	if err := r.sup.Session(r.peer, &n); err != nil {
		t.Fatal(err)
	}
	if got := r.sup.Totals().BadPayloadTypes; got != 4 {
		t.Fatalf("bad payload types %d, want 4", got)
	}
	c := newG729Call(t, "sh", 96, 101)
	r.playG729(10, c)
	r.settle()
	if x := (*r.sup.table.Load())["sh"].player.Stats().Streams[0]; x.Codec != playout.CodecG729 || x.Frames != 10 {
		t.Fatalf("stream %+v: want its 10 G.729 packets played", x)
	}
}
