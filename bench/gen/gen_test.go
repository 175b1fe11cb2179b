package gen

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/zaf/g711"
)

// readFrames parses a pcap written by Write (little endian, Ethernet) and
// decodes every frame with the capture package.
func readFrames(t *testing.T, b []byte) (pkts []capture.Packet, times []time.Time) {
	t.Helper()
	if len(b) < 24 {
		t.Fatalf("pcap of %d bytes", len(b))
	}
	nano := le32(b[0:]) == pcapMagicNano
	if !nano && le32(b[0:]) != pcapMagicMicro {
		t.Fatalf("bad magic %#x", le32(b[0:]))
	}
	if le32(b[20:]) != linkEthernet {
		t.Fatalf("link type %d", le32(b[20:]))
	}
	b = b[24:]
	for len(b) > 0 {
		if len(b) < 16 {
			t.Fatalf("truncated record header")
		}
		sec, frac, incl := le32(b[0:]), le32(b[4:]), le32(b[8:])
		if le32(b[12:]) != incl {
			t.Fatalf("orig len %d != incl len %d", le32(b[12:]), incl)
		}
		frame := b[16 : 16+incl]
		b = b[16+incl:]
		var p capture.Packet
		if err := p.Decode(bytes.Clone(frame), capture.LinkEthernet, nil); err != nil {
			t.Fatalf("frame %d: %v", len(pkts), err)
		}
		if !nano {
			frac *= 1000
		}
		pkts = append(pkts, p)
		times = append(times, time.Unix(int64(sec), int64(frac)).UTC())
	}
	return pkts, times
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func oneCall(codec Codec) Call {
	return Call{
		AgentID:   "1001",
		Agent:     Endpoint{MAC: [6]byte{2, 0, 0, 0, 0, 1}, Addr: netip.MustParseAddrPort("10.10.0.1:20000")},
		Far:       Endpoint{MAC: [6]byte{2, 0, 0, 0, 0, 2}, Addr: netip.MustParseAddrPort("10.20.0.1:30000")},
		VLAN:      85,
		Priority:  5,
		Codec:     codec,
		Duration:  time.Second,
		FromAgent: Direction{SSRC: 0x11111111, Seq: 65500, Timestamp: 4294967000, ToneHz: 1000},
		ToAgent:   Direction{SSRC: 0x22222222, Seq: 100, Timestamp: 0},
	}
}

func TestWriteDecodesToTone(t *testing.T) {
	for _, codec := range []Codec{PCMU, PCMA} {
		t.Run(codec.String(), func(t *testing.T) {
			var buf bytes.Buffer
			cfg := &Config{Calls: []Call{oneCall(codec)}, Record: true}
			res, err := Write(&buf, cfg)
			if err != nil {
				t.Fatal(err)
			}
			pkts, times := readFrames(t, buf.Bytes())
			if len(pkts) != 100 || res.Frames != 100 {
				t.Fatalf("%d frames decoded, %d reported, want 100", len(pkts), res.Frames)
			}
			want := Tone(1000, 0, 0, 8000)
			var got []int16
			var seqs []uint16
			for i, p := range pkts {
				if p.Kind != capture.KindRTP {
					t.Fatalf("frame %d kind %v, RTP err %v", i, p.Kind, p.RTPErr)
				}
				if p.NumVLANs != 1 || p.VLANs[0].ID() != 85 || p.VLANs[0].Priority() != 5 {
					t.Fatalf("frame %d VLAN %+v", i, p.VLANs[:p.NumVLANs])
				}
				if p.RTP.PayloadType != codec.PayloadType() {
					t.Fatalf("payload type %d", p.RTP.PayloadType)
				}
				if i > 0 && times[i].Before(times[i-1]) {
					t.Fatalf("frame %d time goes back", i)
				}
				for _, v := range p.RTP.Payload {
					if p.RTP.SSRC == 0x11111111 {
						if codec == PCMU {
							got = append(got, g711.DecodeUlawFrame(v))
						} else {
							got = append(got, g711.DecodeAlawFrame(v))
						}
					} else if (codec == PCMU && v != 0xff) || (codec == PCMA && v != 0xd5) {
						t.Fatalf("silent side payload byte %#x", v)
					}
				}
				if p.RTP.SSRC == 0x11111111 {
					seqs = append(seqs, p.RTP.SequenceNumber)
					if p.RTP.Timestamp != 4294967000+uint32(160*(len(seqs)-1)) {
						t.Fatalf("timestamp %d for packet %d", p.RTP.Timestamp, len(seqs)-1)
					}
					if p.RTP.Marker != (len(seqs) == 1) {
						t.Fatalf("marker %v on packet %d", p.RTP.Marker, len(seqs)-1)
					}
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d samples, want %d", len(got), len(want))
			}
			for i := range want {
				var enc byte
				if codec == PCMU {
					enc = g711.EncodeUlawFrame(want[i])
					if got[i] != g711.DecodeUlawFrame(enc) {
						t.Fatalf("sample %d = %d, want %d", i, got[i], g711.DecodeUlawFrame(enc))
					}
				} else {
					enc = g711.EncodeAlawFrame(want[i])
					if got[i] != g711.DecodeAlawFrame(enc) {
						t.Fatalf("sample %d = %d, want %d", i, got[i], g711.DecodeAlawFrame(enc))
					}
				}
			}
			// The sequence crosses the wrap: 65500 .. 65535, 0 .. 13.
			for i, s := range seqs {
				if s != uint16(65500+i) {
					t.Fatalf("seq[%d] = %d", i, s)
				}
			}
			if s := res.Streams[0]; s.FirstSeq != 65500 || s.LastSeq != 13 || s.Sent != 50 || len(s.Packets) != 50 {
				t.Fatalf("stream result: first %d last %d sent %d recorded %d", s.FirstSeq, s.LastSeq, s.Sent, len(s.Packets))
			}
		})
	}
}

func TestWriteRejectsBadInput(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Config)
		want error
	}{
		{"vlan", func(c *Config) { c.Calls[0].VLAN = 4095 }, ErrBadCall},
		{"priority", func(c *Config) { c.Calls[0].Priority = 8 }, ErrBadCall},
		{"ptime", func(c *Config) { c.Calls[0].Ptime = 100 * time.Microsecond }, ErrBadCall},
		{"duration", func(c *Config) { c.Calls[0].Duration = 0 }, ErrBadCall},
		{"family", func(c *Config) { c.Calls[0].Far.Addr = netip.MustParseAddrPort("[fd00::1]:4000") }, ErrBadCall},
		{"tone", func(c *Config) { c.Calls[0].FromAgent.ToneHz = 4000 }, ErrBadCall},
		{"hold", func(c *Config) { c.Calls[0].ToAgent.Holds = []Interval{{From: 2, To: 1}} }, ErrBadCall},
		{"loss", func(c *Config) { c.Impair.Loss = 1.5 }, ErrBadImpairment},
		{"jitter", func(c *Config) { c.Impair.Jitter = -1 }, ErrBadImpairment},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := &Config{Calls: []Call{oneCall(PCMU)}}
			tt.mod(cfg)
			var buf bytes.Buffer
			_, err := Write(&buf, cfg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}
