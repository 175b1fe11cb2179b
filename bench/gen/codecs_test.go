package gen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/g722"
	"github.com/silentmon/silentmon/internal/opus"
	"github.com/silentmon/silentmon/playout"
)

func needCodec(t testing.TB, c Codec) {
	t.Helper()
	if err := codecAvailable(c); err != nil {
		t.Skipf("skipping: %v", err)
	}
}

// goertzelPower returns the power of s at hz (8 kHz samples).
func goertzelPower(s []int16, hz float64) float64 {
	c := 2 * math.Cos(2*math.Pi*hz/SampleRate)
	var s1, s2 float64
	for _, v := range s {
		s1, s2 = float64(v)+c*s1-s2, s1
	}
	return s1*s1 + s2*s2 - c*s1*s2
}

func rmsOf(s []int16) float64 {
	var e float64
	for _, v := range s {
		e += float64(v) * float64(v)
	}
	return math.Sqrt(e / float64(len(s)))
}

// TestWidebandCodecStreams: a G.722 call goes on payload type 9 with
// timestamps 160 apart per 20 ms, an Opus call on 111 with timestamps 960
// apart (its 48 kHz clock); both decode, with the same libraries, to the
// call's tone at its level (within 1 dB), loudest at its frequency.
func TestWidebandCodecStreams(t *testing.T) {
	for _, tc := range []struct {
		codec  Codec
		pt     uint8
		tsStep uint32
	}{
		{G722, 9, 160},
		{Opus, 111, 960},
	} {
		t.Run(tc.codec.String(), func(t *testing.T) {
			needCodec(t, tc.codec)
			c := oneCall(tc.codec)
			c.Duration = 2 * time.Second
			c.FromAgent.ToneHz = 1000
			var buf bytes.Buffer
			res, err := Write(&buf, &Config{Calls: []Call{c}, Record: true})
			if err != nil {
				t.Fatal(err)
			}
			pkts, _ := readFrames(t, buf.Bytes())
			for _, p := range pkts {
				if p.RTP.PayloadType != tc.pt {
					t.Fatalf("payload type %d, want %d", p.RTP.PayloadType, tc.pt)
				}
			}
			s := res.Streams[0]
			if s.Sent != 100 {
				t.Fatalf("sent %d packets, want 100", s.Sent)
			}
			var out []int16
			pcm := make([]int16, 960)
			var decode func(p []byte) (int, error)
			if tc.codec == G722 {
				d, _ := g722.NewDecoder(SampleRate)
				defer d.Close()
				decode = func(p []byte) (int, error) { return d.Decode(p, pcm) }
			} else {
				d, _ := opus.NewDecoder(SampleRate)
				defer d.Close()
				decode = func(p []byte) (int, error) { return d.Decode(p, pcm) }
			}
			for i, p := range s.Packets {
				if i > 0 && p.Timestamp-s.Packets[i-1].Timestamp != tc.tsStep {
					t.Fatalf("packet %d: timestamp step %d, want %d", i, p.Timestamp-s.Packets[i-1].Timestamp, tc.tsStep)
				}
				n, err := decode(p.Payload)
				if err != nil || n != 160 {
					t.Fatalf("packet %d: %d samples, %v", i, n, err)
				}
				out = append(out, pcm[:n]...)
			}
			w := out[2000:14000]
			best, bestHz := -1.0, 0.0
			for hz := 100.0; hz < 4000; hz += 10 {
				if p := goertzelPower(w, hz); p > best {
					best, bestHz = p, hz
				}
			}
			if bestHz != 1000 {
				t.Errorf("loudest at %.0f Hz, want 1000", bestHz)
			}
			db := 20 * math.Log10(rmsOf(w)/(DefaultAmplitude/math.Sqrt2))
			if math.Abs(db) > 1 {
				t.Errorf("level %+.2f dB from the tone's, want within 1 dB", db)
			}
			t.Logf("%v: %d packets, level %+.2f dB", tc.codec, len(s.Packets), db)
		})
	}
}

// TestWidebandSDP: the SIP of a G.722 or Opus call maps its payload type
// with the right rtpmap (G722/8000; opus/48000/2 with telephone events at
// 48000).
func TestWidebandSDP(t *testing.T) {
	for _, tc := range []struct {
		codec Codec
		want  []string
	}{
		{G722, []string{"a=rtpmap:9 G722/8000"}},
		{Opus, []string{"a=rtpmap:111 opus/48000/2", "a=rtpmap:101 telephone-event/48000"}},
	} {
		needCodec(t, tc.codec)
		s, err := ScenarioWith("hold-resume", 3, ScenarioOptions{SIP: true, Codec: &tc.codec, Digits: "12"})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := s.Write(&buf); err != nil {
			t.Fatal(err)
		}
		for _, w := range tc.want {
			if !bytes.Contains(buf.Bytes(), []byte(w)) {
				t.Errorf("%v: the capture's SDP has no %q", tc.codec, w)
			}
		}
	}
}

// TestWidebandListening is the offline listening test of a G.722 and an
// Opus call: the hold-resume and loss-jitter scenarios in that codec,
// agent 1001's streams
// rendered through playout's jitter buffer and decoders (payload types as
// the SDP maps them), passes the same listening check as G.711.
func TestWidebandListening(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		codec    Codec
	}{
		{"hold-resume", PCMU}, // the same harness on G.711, for comparison
		{"hold-resume", G722},
		{"hold-resume", Opus},
		{"loss-jitter", G722},
		{"loss-jitter", Opus},
	} {
		codec := tc.codec
		t.Run(tc.scenario+"/"+codec.String(), func(t *testing.T) {
			needCodec(t, codec)
			if !codec.playable() {
				t.Skipf("skipping: playout does not decode %v in this build", codec)
			}
			s, err := ScenarioWith(tc.scenario, 5, ScenarioOptions{SIP: true, Codec: &codec})
			if errors.Is(err, ErrCodecUnavailable) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			pcm := renderAgent(t, s.result, "1001", playout.SDPPayloadTypes(map[uint8]string{
				codec.PayloadType(): codec.rtpmap()}, nil))
			r := CheckListening(s.Manifest, "1001", pcm)
			t.Logf("%v: %s", codec, r.String())
			if !r.OK() || r.Windows < int(s.Manifest.DurationMS/100)/2 {
				t.Fatalf("%v: %s\n%s", codec, r.String(), strings.Join(r.Failures, "\n"))
			}
		})
	}
}

// playable reports whether playout decodes c in this build.
func (c Codec) playable() bool {
	return playout.EncodingCodec(c.rtpmap()).Decodable()
}

// renderAgent renders the recorded streams of agent's calls through a
// playout.Renderer, packets in capture order, rendering as time passes.
func renderAgent(t *testing.T, res *Result, agent string, pts map[uint8]playout.Codec) []int16 {
	t.Helper()
	type pkt struct {
		at   time.Time
		dir  playout.Direction
		flow playout.Flow
		rtp  []byte
	}
	var all []pkt
	for _, st := range res.Streams {
		if st.AgentID != agent {
			continue
		}
		dir := playout.ToAgent
		if st.FromAgent {
			dir = playout.FromAgent
		}
		pt := st.Codec.PayloadType()
		for _, p := range st.Packets {
			b := make([]byte, 12, 12+len(p.Payload))
			b[0] = 0x80
			b[1] = pt
			if p.Event {
				b[1] = EventPayloadType
			}
			if p.Marker {
				b[1] |= 0x80
			}
			binary.BigEndian.PutUint16(b[2:], p.Seq)
			binary.BigEndian.PutUint32(b[4:], p.Timestamp)
			binary.BigEndian.PutUint32(b[8:], st.SSRC)
			all = append(all, pkt{p.Time, dir, playout.Flow{Src: st.Src, Dst: st.Dst, VLAN: st.VLAN}, append(b, p.Payload...)})
		}
	}
	slices.SortStableFunc(all, func(a, b pkt) int { return a.at.Compare(b.at) })
	r := playout.NewRenderer(playout.Config{PayloadTypes: pts}, 1, false)
	defer r.Close()
	var out []int16
	for _, p := range all {
		for b := r.Render(p.at); len(b) > 0; b = r.Render(p.at) {
			out = append(out, b...)
		}
		if err := r.PushFlow(p.dir, p.flow, p.at, p.rtp); err != nil {
			t.Fatal(err)
		}
	}
	for b := r.Flush(); len(b) > 0; b = r.Flush() {
		out = append(out, b...)
	}
	return out
}
