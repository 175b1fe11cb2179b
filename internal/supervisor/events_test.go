package supervisor

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/relay"

	"github.com/silentmon/silentmon/internal/testutil"
)

// eventPacket returns a telephone-event packet of c's stream (same SSRC
// and sequence space, as phones send them) on payload type pt: digit
// code, started at timestamp ts, with the end bit and duration given.
func eventPacket(c *call, pt uint8, ts uint32, code uint8, end bool, dur uint16) []byte {
	b := c.header(pt, 4)
	binary.BigEndian.PutUint32(b[4:], ts)
	c.seq++
	flags := byte(10)
	if end {
		flags |= 0x80
	}
	return append(b, code, flags, byte(dur>>8), byte(dur))
}

// redPacket wraps an event in RFC 2198 redundancy (type red) with the
// previous event as the redundant block.
func redPacket(c *call, red, ev uint8, ts uint32, prevOff uint16, prev, cur []byte) []byte {
	b := c.header(red, 20)
	binary.BigEndian.PutUint32(b[4:], ts)
	c.seq++
	h := uint32(0x80|uint32(ev))<<24 | uint32(prevOff)<<10 | uint32(len(prev))
	b = binary.BigEndian.AppendUint32(b, h)
	b = append(b, ev)
	b = append(b, prev...)
	return append(b, cur...)
}

// sendPacket sends one packet of c's session from the agent.
func (r *rig) sendPacket(c *call, pkt []byte) {
	r.t.Helper()
	f := frame(r.t, c.id, c, pkt)
	if err := r.sup.Media(r.peer, &f); err != nil {
		r.t.Fatal(err)
	}
}

// TestTelephoneEvents: a call sends a tone with the digits 1234# in the
// middle as RFC 4733 events in the voice's stream (each digit: three
// packets while held, three end packets; the tone goes on meanwhile).
// The digits are counted once each, in status ("digits 1234#", JSON
// "digits"), on the event stream (DigitsSince, with direction and
// time) and in the metrics; the WAV holds the tone sample for sample,
// with nothing of the events in it and no gap. With the SDP naming
// telephone-event on 101, with no SDP (101 taken as telephone-event),
// on 110 named by the SDP, and sent with RFC 2198 redundancy.
func TestTelephoneEvents(t *testing.T) {
	for _, tc := range []struct {
		name string
		sdp  map[uint8]string
		pt   uint8
		red  uint8
	}{
		{"sdp 101", map[uint8]string{0: "PCMU/8000", 101: "telephone-event/8000"}, 101, 0},
		{"no sdp", nil, 101, 0},
		{"sdp 110", map[uint8]string{0: "PCMU/8000", 110: "telephone-event/8000"}, 110, 0},
		{"redundancy", map[uint8]string{0: "PCMU/8000", 100: "red/8000", 101: "telephone-event/8000"}, 101, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{session}.wav")})
			c := newCall("dtmf", 1000, 1)
			if tc.sdp != nil {
				r.sdpNotice(c.id, relay.SessionStarted, tc.sdp, 0)
			}
			r.play(25, c)
			var prev []byte
			var prevTS uint32
			for _, code := range []uint8{1, 2, 3, 4, 11} {
				start := c.ts
				for i := range 6 {
					r.sendPacket(c, c.next())
					end := i >= 3
					dur := uint16(160 * min(i+1, 4))
					ev := eventPacket(c, tc.pt, start, code, end, dur)
					if tc.red != 0 {
						c.seq--
						cur := ev[12:]
						if prev == nil {
							prev, prevTS = cur, start
						}
						ev = redPacket(c, tc.red, tc.pt, start, uint16(start-prevTS), prev, cur)
						prev, prevTS = cur, start
					}
					r.sendPacket(c, ev)
					r.clock.Advance(20e6)
				}
				r.play(5, c)
			}
			r.play(25, c)
			r.settle()

			st := r.sup.FullStatus()
			if len(st.Sessions) != 1 || st.Sessions[0].Digits != "1234#" {
				t.Fatalf("sessions %+v: want one with digits 1234#", st.Sessions)
			}
			js, err := json.Marshal(st)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(js, []byte(`"digits":"1234#"`)) {
				t.Fatalf("status JSON %s: no \"digits\":\"1234#\"", js)
			}
			ds := r.sup.DigitsSince(0)
			got := ""
			for i, d := range ds {
				got += d.Digit
				if d.Seq != uint64(i+1) || d.Session != c.id || d.Direction != "from-agent" || d.Time == "" {
					t.Errorf("digit %d: %+v", i, d)
				}
			}
			if got != "1234#" || len(r.sup.DigitsSince(ds[1].Seq)) != 3 {
				t.Fatalf("event stream digits %q (%+v), want 1234# once each", got, ds)
			}
			if v := gather(t, r.sup)["silentmon_supervisor_telephone_events_total"]; v != 5 {
				t.Fatalf("telephone_events_total %v, want 5", v)
			}
			if err := r.sup.Close(); err != nil {
				t.Fatal(err)
			}
			checkExact(t, "tone around the digits", readWAV(t, filepath.Join(dir, "dtmf.wav")), c.sent)
		})
	}
}

// TestDigitsBounded: status keeps the last 32 digits.
func TestDigitsBounded(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	c := newCall("many", 1000, 1)
	r.play(5, c)
	want := ""
	for i := range 40 {
		ts := c.ts
		r.sendPacket(c, c.next())
		r.sendPacket(c, eventPacket(c, 101, ts, uint8(i%12), true, 160))
		want += string("0123456789*#"[i%12])
	}
	if got := r.sup.FullStatus().Sessions[0].Digits; got != want[len(want)-32:] {
		t.Fatalf("digits %q, want the last 32 %q", got, want[len(want)-32:])
	}
}

// gather returns the metrics by name and label values.
func gather(t *testing.T, s *Supervisor) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := s.Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%q}", l.GetName(), l.GetValue())
			}
			got[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return got
}

// TestUnsupportedCodec: a stream whose codec this build cannot play
// (iLBC, AMR, AMR-WB named by the SDP; a dynamic type nothing maps) is
// reported once: one WARN naming the stream, session and codec however
// many packets arrive, status "codec":"iLBC","supported":false (smctl
// prints "iLBC (not supported)"), and the metric
// silentmon_playout_unsupported_streams_total{codec="iLBC"}; a G.711
// stream beside it is supported.
func TestUnsupportedCodec(t *testing.T) {
	for _, tc := range []struct {
		name       string
		sdp        map[uint8]string
		pt         uint8
		codec      string // in status and the log
		label      string // of the metric
		otherLabel string
	}{
		{"iLBC", map[uint8]string{97: "iLBC/8000"}, 97, "iLBC", "iLBC", ""},
		{"AMR", map[uint8]string{96: "AMR/8000"}, 96, "AMR", "AMR", ""},
		{"AMR-WB", map[uint8]string{98: "AMR-WB/16000"}, 98, "AMR-WB", "AMR-WB", ""},
		{"unmapped dynamic type", nil, 96, "payload type 96", "unknown", ""},
		{"rare codec", map[uint8]string{99: "x-exotic/8000"}, 99, "x-exotic", "other", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testutil.SyncBuffer{}
			r := newRig(t, Config{Output: "null", Logger: slog.New(slog.NewTextHandler(logs, nil))})
			c := newCall("s1", 1000, 1)
			g := newCall("s1", 1000, 2)
			if tc.sdp != nil {
				tc.sdp[0] = "PCMU/8000"
				r.sdpNotice(c.id, relay.SessionStarted, tc.sdp, 0)
			}
			for range 50 {
				p := c.next()
				p[1] = tc.pt
				r.sendPacket(c, p)
				r.sendPacket(g, g.next())
				r.clock.Advance(20e6)
			}
			warn := fmt.Sprintf("stream 0x%08x of session s1 carries %s, which this build cannot play", c.ssrc, tc.codec)
			if n := strings.Count(logs.String(), warn); n != 1 {
				t.Fatalf("%d log lines %q, want 1; log:\n%s", n, warn, logs)
			}
			if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
				t.Fatalf("%d warnings, want only %q; log:\n%s", n, warn, logs)
			}
			st := r.sup.FullStatus()
			if len(st.Sessions) != 1 || len(st.Sessions[0].Streams) != 2 {
				t.Fatalf("status %+v: want one session with two streams", st.Sessions)
			}
			for _, s := range st.Sessions[0].Streams {
				switch s.SSRC {
				case fmt.Sprintf("0x%08x", c.ssrc):
					if s.Codec != tc.codec || s.Playable() {
						t.Errorf("stream %+v: codec %q supported %v, want %q not supported", s, s.Codec, s.Playable(), tc.codec)
					}
				default:
					if s.Codec != "PCMU" || !s.Playable() {
						t.Errorf("stream %+v: want PCMU supported", s)
					}
				}
			}
			js, _ := json.Marshal(st)
			if want := fmt.Sprintf(`"codec":%q,"active":true`, tc.codec); !bytes.Contains(js, []byte(want)) || !bytes.Contains(js, []byte(`"supported":false`)) {
				t.Fatalf("status JSON %s: want %s and \"supported\":false", js, want)
			}
			m := gather(t, r.sup)
			if v := m[fmt.Sprintf("silentmon_playout_unsupported_streams_total{codec=%q}", tc.label)]; v != 1 {
				t.Fatalf("unsupported_streams_total{codec=%q} %v, want 1 (metrics %v)", tc.label, v, m)
			}
			if st.Unsupported[tc.label] != 1 {
				t.Fatalf("status unsupported_streams %v", st.Unsupported)
			}
		})
	}
}

// TestTelephoneEventsRealCapture: the telephone events of a real call
// (the Wireshark sample SIP_DTMF2, payload type 96 named by its SDP) are
// read as tshark's rtpevent dissector reads them, 6789123, each digit
// once although its packets repeat it, in the direction towards the
// agent (192.168.105.110).
func TestTelephoneEventsRealCapture(t *testing.T) {
	src, err := capture.OpenFile(filepath.Join("testdata", "sip-dtmf-events.pcap"), capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r := newRig(t, Config{Output: "null"})
	r.sdpNotice("dtmf2", relay.SessionStarted, map[uint8]string{8: "PCMA/8000", 96: "telephone-event/8000"}, 0)
	agent := netip.MustParseAddr("192.168.105.110")
	frames, infos := make([][]byte, 16), make([]capture.Info, 16)
	var p capture.Packet
	sent := 0
	for {
		n, err := src.ReadBatch(frames, infos)
		for i := range n {
			if p.Decode(frames[i], src.LinkType(), &infos[i]) != nil || p.Kind != capture.KindRTP {
				continue
			}
			dir := filter.ToAgent
			if p.Src.Addr() == agent {
				dir = filter.FromAgent
			}
			body := relay.AppendMediaHeader(nil, "dtmf2", 1)
			body = relay.AppendMediaPacket(body, &relay.MediaPacket{Direction: dir, Time: infos[i].Timestamp.UnixNano(),
				Src: p.Src, Dst: p.Dst, Data: p.UDP})
			f, err := relay.ParseMedia(body)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.sup.Media(r.peer, &f); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if sent != 35 {
		t.Fatalf("%d RTP packets in the capture, want 35", sent)
	}
	if got := r.sup.FullStatus().Sessions[0].Digits; got != "6789123" {
		t.Fatalf("digits %q, want 6789123", got)
	}
	for _, d := range r.sup.DigitsSince(0) {
		if d.Direction != "to-agent" || !strings.HasPrefix(d.Time, "20") {
			t.Fatalf("digit %+v: want to-agent with the capture's time", d)
		}
	}
}

// TestCodecLeftOut: a G.729 stream (static type 18) is unsupported
// exactly when this build leaves G.729 out (CGO_ENABLED=0, no bcg729):
// then it is reported as "G729 (not supported)" with a WARN, else it is
// played and not reported.
func TestCodecLeftOut(t *testing.T) {
	logs := &testutil.SyncBuffer{}
	r := newRig(t, Config{Output: "null", Logger: slog.New(slog.NewTextHandler(logs, nil))})
	c := newCall("s1", 1000, 1)
	for range 20 {
		p := c.next()[:12+20] // two G.729 frames
		p[1] = 18
		r.sendPacket(c, p)
		r.clock.Advance(20e6)
	}
	built := playout.CodecG729.Decodable()
	st := r.sup.FullStatus().Sessions[0].Streams[0]
	warned := strings.Contains(logs.String(), "carries G729, which this build cannot play")
	if st.Playable() != built || warned == built || st.Codec != "G729" {
		t.Fatalf("G.729 built in %v: stream %+v supported %v, warned %v", built, st, st.Playable(), warned)
	}
	t.Logf("G.729 built in: %v", built)
}
