package gen

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/silentmon/silentmon/capture"
)

// TestDynamicPayloadTypeAndEvents: with ScenarioOptions, every call of
// sip-inbound-outbound carries G.729 on payload type 96, which its SDP
// maps (a=rtpmap:96 G729/8000, a=rtpmap:101 telephone-event/8000), and
// agent 1001's phone sends the digits 1 and 5 as RFC 4733 events in its
// first call: per digit, packets of growing duration on payload type 101
// with the event's start timestamp, the first with the marker bit, and
// the end packet three times, all in the stream's sequence numbers.
func TestDynamicPayloadTypeAndEvents(t *testing.T) {
	g729 := G729
	s, err := ScenarioWith("sip-inbound-outbound", 3, ScenarioOptions{SIP: true, Codec: &g729, PayloadType: 96, Digits: "15"})
	if errors.Is(err, ErrCodecUnavailable) {
		t.Skip("skipping: this build has no G.729 encoder (bcg729)")
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Manifest.SIP.Calls {
		for _, m := range c.Media {
			if m.Rtpmap["96"] != "G729/8000" || m.Rtpmap["101"] != "telephone-event/8000" || !slices.Equal(m.PayloadTypes, []int{96, 101}) {
				t.Errorf("call %s: SDP media %+v, want 96 G729/8000 and 101 telephone-event/8000", c.CallID, m)
			}
		}
	}
	var buf bytes.Buffer
	if _, err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	pkts, _ := readFrames(t, buf.Bytes())
	agent := s.result.Streams[0] // call 0 from the agent
	type ev struct {
		seq      uint16
		ts       uint32
		marker   bool
		code     byte
		end      bool
		duration uint16
	}
	var evs []ev
	var audio int
	prev := -1
	for _, p := range pkts {
		if p.Kind != capture.KindRTP || p.RTP.SSRC != agent.SSRC {
			continue
		}
		if prev >= 0 && int(p.RTP.SequenceNumber) != (prev+1)&0xffff {
			t.Fatalf("sequence number %d after %d", p.RTP.SequenceNumber, prev)
		}
		prev = int(p.RTP.SequenceNumber)
		switch p.RTP.PayloadType {
		case 96:
			audio++
		case 101:
			pl := p.RTP.Payload
			if len(pl) != 4 {
				t.Fatalf("event payload of %d bytes", len(pl))
			}
			evs = append(evs, ev{p.RTP.SequenceNumber, p.RTP.Timestamp, p.RTP.Marker, pl[0], pl[1]&0x80 != 0, binary.BigEndian.Uint16(pl[2:])})
		default:
			t.Fatalf("payload type %d in the agent's stream", p.RTP.PayloadType)
		}
	}
	// 100 ms at 20 ms: 4 packets of 160..640 samples, then 800 with the
	// end bit three times.
	if len(evs) != 2*7 || audio == 0 {
		t.Fatalf("%d event packets and %d audio packets, want 14 events: %+v", len(evs), audio, evs)
	}
	for d, code := range []byte{1, 5} {
		e := evs[7*d : 7*d+7]
		for i, x := range e {
			wantDur := uint16(160 * min(i+1, 5))
			if x.code != code || x.ts != e[0].ts || x.marker != (i == 0) || x.end != (i >= 4) || x.duration != wantDur {
				t.Errorf("digit %d packet %d: %+v, want code %d, timestamp %d, marker %v, end %v, duration %d",
					d, i, x, code, e[0].ts, i == 0, i >= 4, wantDur)
			}
		}
	}
	// The ideal audio leaves the events out: it is the tone around them.
	if _, _, err := s.IdealAudio("1001"); err != nil {
		t.Fatal(err)
	}
}

// TestHiddenSRTPKeys: with HideSRTPKeys, sip-srtp-sdes still sends SRTP
// and announces RTP/SAVP, but its SDP has no a=crypto line.
func TestHiddenSRTPKeys(t *testing.T) {
	s, err := ScenarioWith("sip-srtp-sdes", 2, ScenarioOptions{SIP: true, HideSRTPKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	savp := 0
	for _, c := range s.Manifest.SIP.Calls {
		for _, m := range c.Media {
			if m.Crypto != "" {
				t.Errorf("call %s: SDP media of %s has a=crypto %q", c.CallID, m.Party, m.Crypto)
			}
			if m.Proto == "RTP/SAVP" {
				savp++
			}
		}
	}
	if savp < 2 {
		t.Fatalf("%d RTP/SAVP media descriptions, want the offer and the answer", savp)
	}
	var buf bytes.Buffer
	if _, err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("a=crypto")) || !bytes.Contains(buf.Bytes(), []byte("RTP/SAVP")) {
		t.Fatal("the capture holds an a=crypto line or no RTP/SAVP")
	}
}
