package gen

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/g729"
	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/zaf/g711"
)

// checksum is a plain one's-complement sum, written independently of the
// generator's.
func checksum(parts ...[]byte) uint16 {
	var all []byte
	for _, p := range parts {
		all = append(all, p...)
	}
	if len(all)%2 == 1 {
		all = append(all, 0)
	}
	var s uint32
	for i := 0; i < len(all); i += 2 {
		s += uint32(all[i])<<8 | uint32(all[i+1])
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// rawFrames returns the frames of a pcap written by Write.
func rawFrames(b []byte) [][]byte {
	var out [][]byte
	b = b[24:]
	for len(b) >= 16 {
		n := binary.LittleEndian.Uint32(b[8:])
		out = append(out, b[16:16+n])
		b = b[16+n:]
	}
	return out
}

// checkChecksums verifies the IPv4 header and UDP checksums of frame.
func checkChecksums(t *testing.T, frame []byte) {
	t.Helper()
	off := 12
	for {
		et := binary.BigEndian.Uint16(frame[off:])
		off += 2
		if et == 0x8100 || et == 0x88a8 {
			off += 2
			continue
		}
		var pseudo, udp []byte
		switch et {
		case 0x0800:
			ip := frame[off : off+20]
			if checksum(ip) != 0xffff {
				t.Fatalf("bad IPv4 header checksum %#04x", binary.BigEndian.Uint16(ip[10:]))
			}
			total := int(binary.BigEndian.Uint16(ip[2:]))
			udp = frame[off+20 : off+total]
			pseudo = append(append([]byte{}, ip[12:20]...), 0, 17, byte(len(udp)>>8), byte(len(udp)))
		case 0x86dd:
			ip := frame[off : off+40]
			plen := int(binary.BigEndian.Uint16(ip[4:]))
			udp = frame[off+40 : off+40+plen]
			pseudo = append(append([]byte{}, ip[8:40]...), 0, 0, byte(len(udp)>>8), byte(len(udp)), 0, 0, 0, 17)
		default:
			t.Fatalf("ethertype %#04x", et)
		}
		if binary.BigEndian.Uint16(udp[6:]) == 0 || checksum(pseudo, udp) != 0xffff {
			t.Fatalf("bad UDP checksum %#04x", binary.BigEndian.Uint16(udp[6:]))
		}
		return
	}
}

func TestHeadersAndChecksums(t *testing.T) {
	v6 := oneCall(PCMU)
	v6.Agent.Addr = netip.MustParseAddrPort("[fd00:10::1]:20000")
	v6.Far.Addr = netip.MustParseAddrPort("[fd00:20::1]:30000")
	qinq := oneCall(PCMA)
	qinq.OuterVLAN, qinq.OuterPriority = 300, 3
	untagged := oneCall(PCMU)
	untagged.VLAN, untagged.Priority = 0, 0
	tests := []struct {
		name  string
		call  Call
		vlans []capture.VLANTag
	}{
		{"ipv4 vlan", oneCall(PCMU), []capture.VLANTag{{TPID: 0x8100, TCI: 5<<13 | 85}}},
		{"ipv6 vlan", v6, []capture.VLANTag{{TPID: 0x8100, TCI: 5<<13 | 85}}},
		{"qinq", qinq, []capture.VLANTag{{TPID: 0x88a8, TCI: 3<<13 | 300}, {TPID: 0x8100, TCI: 5<<13 | 85}}},
		{"untagged", untagged, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.call.TOS = 0xb8
			var buf bytes.Buffer
			if _, err := Write(&buf, &Config{Calls: []Call{tt.call}, Nanosecond: true}); err != nil {
				t.Fatal(err)
			}
			pkts, _ := readFrames(t, buf.Bytes())
			for i, f := range rawFrames(buf.Bytes()) {
				checkChecksums(t, f)
				p := pkts[i]
				if p.Kind != capture.KindRTP || p.TOS != 0xb8 {
					t.Fatalf("frame %d: kind %v TOS %#x", i, p.Kind, p.TOS)
				}
				if got := p.VLANs[:p.NumVLANs]; len(got) != len(tt.vlans) || (len(got) > 0 && !equalTags(got, tt.vlans)) {
					t.Fatalf("frame %d: VLANs %+v, want %+v", i, got, tt.vlans)
				}
				src, dst := tt.call.Agent, tt.call.Far
				if p.RTP.SSRC == tt.call.ToAgent.SSRC {
					src, dst = dst, src
				}
				if p.Src != src.Addr || p.Dst != dst.Addr || p.SrcMAC != src.MAC || p.DstMAC != dst.MAC {
					t.Fatalf("frame %d: %v (%x) -> %v (%x)", i, p.Src, p.SrcMAC, p.Dst, p.DstMAC)
				}
			}
		})
	}
}

func equalTags(a, b []capture.VLANTag) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestAgentScenario expresses the relay tests' scenario: agent 1001 has
// three consecutive calls (new SSRC and ports each time, the second held
// for 20 s in the middle) and a consultation call overlapping the second.
func TestAgentScenario(t *testing.T) {
	phone := [6]byte{2, 0, 10, 10, 0, 1}
	gw := [6]byte{2, 0, 10, 20, 0, 1}
	mk := func(start, dur time.Duration, port uint16, far string, ssrc uint32) Call {
		return Call{
			AgentID: "1001", VLAN: 85, Priority: 5, Start: start, Duration: dur,
			Agent:     Endpoint{MAC: phone, Addr: netip.AddrPortFrom(netip.MustParseAddr("10.10.0.1"), port)},
			Far:       Endpoint{MAC: gw, Addr: netip.MustParseAddrPort(far)},
			FromAgent: Direction{SSRC: ssrc, Seq: 1000, ToneHz: 1000},
			ToAgent:   Direction{SSRC: ssrc + 1, Seq: 2000, ToneHz: 500},
		}
	}
	hold := Interval{From: 5 * time.Second, To: 25 * time.Second}
	calls := []Call{
		mk(0, 5*time.Second, 20000, "10.20.0.1:30000", 0x100),
		mk(6*time.Second, 30*time.Second, 20002, "10.20.0.1:30002", 0x200),
		mk(12*time.Second, 8*time.Second, 20004, "10.10.0.2:20100", 0x300), // consultation with agent 1002
		mk(40*time.Second, 5*time.Second, 20006, "10.20.0.1:30004", 0x400),
	}
	calls[1].FromAgent.Holds = []Interval{hold}
	calls[1].ToAgent.Holds = []Interval{hold}
	var buf bytes.Buffer
	res, err := Write(&buf, &Config{Calls: calls, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	held := res.Streams[2] // call 1, agent side
	if held.Sent != 50*10 {
		t.Fatalf("held call sent %d packets, want 500 (30 s minus 20 s of hold)", held.Sent)
	}
	start := DefaultEpoch.Add(6 * time.Second)
	for i, p := range held.Packets {
		off := p.Time.Sub(start)
		if off >= hold.From && off < hold.To {
			t.Fatalf("packet at %v inside the hold", off)
		}
		if p.Seq != uint16(1000+i) {
			t.Fatalf("packet %d seq %d: hold must not consume sequence numbers", i, p.Seq)
		}
		wantTS := uint32(off / DefaultPtime * 160)
		if p.Timestamp != wantTS {
			t.Fatalf("packet %d timestamp %d, want %d (tracks elapsed time)", i, p.Timestamp, wantTS)
		}
		if p.Marker != (i == 0 || i == 250) {
			t.Fatalf("packet %d marker %v", i, p.Marker)
		}
	}
	for i, s := range res.Streams {
		if s.SSRC != calls[i/2].FromAgent.SSRC+uint32(i%2) {
			t.Fatalf("stream %d SSRC %#x", i, s.SSRC)
		}
	}
}

func TestG729Stream(t *testing.T) {
	if !g729.Available() {
		t.Skip("skipping: G.729 is not built in (cgo and libbcg729)")
	}
	for _, vad := range []bool{false, true} {
		t.Run("vad="+strconv.FormatBool(vad), func(t *testing.T) {
			c := oneCall(G729)
			c.VAD = vad
			c.Duration = 2 * time.Second
			c.FromAgent.PCM = append(Tone(1000, 0, 0, 8000), make([]int16, 8000)...) // 1 s tone, 1 s silence
			var buf bytes.Buffer
			res, err := Write(&buf, &Config{Calls: []Call{c}, Record: true})
			if err != nil {
				t.Fatal(err)
			}
			pkts, _ := readFrames(t, buf.Bytes())
			for _, p := range pkts {
				if p.RTP.PayloadType != 18 {
					t.Fatalf("payload type %d", p.RTP.PayloadType)
				}
			}
			s := res.Streams[0]
			dec, err := g729.NewDecoder()
			if err != nil {
				t.Fatal(err)
			}
			defer dec.Close()
			var out []int16
			pcm := make([]int16, 160)
			for _, p := range s.Packets {
				n, err := dec.DecodePayload(p.Payload, pcm)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, pcm[:n]...)
			}
			if !vad {
				if s.Sent != 100 || len(s.Packets[0].Payload) != 20 {
					t.Fatalf("sent %d packets of %d bytes", s.Sent, len(s.Packets[0].Payload))
				}
				var e1, e2 float64
				for i := 2000; i < 7000; i++ {
					e1 += float64(out[i]) * float64(out[i])
				}
				for i := 10000; i < 15000; i++ {
					e2 += float64(out[i]) * float64(out[i])
				}
				if e1 < 100*e2 || e1 < 5000*5000*1000 {
					t.Fatalf("tone energy %.3g, silence energy %.3g", e1, e2)
				}
			} else {
				if s.Sent >= 100 || s.Sent < 50 {
					t.Fatalf("VAD sent %d packets, want between 50 and 99 (silence suppressed)", s.Sent)
				}
			}
		})
	}
}

func TestPCMSource(t *testing.T) {
	c := oneCall(PCMU)
	c.Duration = 200 * time.Millisecond
	pcm := make([]int16, 1000) // shorter than the call: silence after
	for i := range pcm {
		pcm[i] = int16(i * 30)
	}
	c.FromAgent.PCM = pcm
	res, err := Write(&bytes.Buffer{}, &Config{Calls: []Call{c}, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []int16
	for _, p := range res.Streams[0].Packets {
		for _, b := range p.Payload {
			got = append(got, g711.DecodeUlawFrame(b))
		}
	}
	for i, v := range got {
		var want int16
		if i < len(pcm) {
			want = g711.DecodeUlawFrame(g711.EncodeUlawFrame(pcm[i]))
		}
		if v != want {
			t.Fatalf("sample %d = %d, want %d", i, v, want)
		}
	}
}

func TestBuild(t *testing.T) {
	calls, err := Build(BuildConfig{Calls: 1000, VLAN: 85, Priority: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[netip.AddrPort]bool{}
	ssrcs := map[uint32]bool{}
	for i, c := range calls {
		for _, a := range []netip.AddrPort{c.Agent.Addr, c.Far.Addr} {
			if addrs[a] {
				t.Fatalf("call %d: address %v used twice", i, a)
			}
			addrs[a] = true
		}
		ssrcs[c.FromAgent.SSRC] = true
		ssrcs[c.ToAgent.SSRC] = true
		if c.AgentID != strconv.Itoa(1001+i) {
			t.Fatalf("call %d agent %q", i, c.AgentID)
		}
		if i > 0 && (c.FromAgent.ToneHz == 1000 || c.ToAgent.ToneHz == 1000 || c.FromAgent.ToneHz == 0 || c.ToAgent.ToneHz == 0) {
			t.Fatalf("call %d tones %v/%v collide with the agent's tone or are silent", i, c.FromAgent.ToneHz, c.ToAgent.ToneHz)
		}
	}
	if len(ssrcs) != 2000 {
		t.Fatalf("%d distinct SSRCs, want 2000", len(ssrcs))
	}
	if c := calls[0]; c.Agent.Addr.String() != "10.10.0.1:20000" || c.FromAgent.ToneHz != 1000 || c.ToAgent.ToneHz != 0 {
		t.Fatalf("call 0: %v tones %v/%v", c.Agent.Addr, c.FromAgent.ToneHz, c.ToAgent.ToneHz)
	}
	if c := calls[999]; c.Agent.Addr.String() != "10.10.3.250:21998" || c.Far.Addr.String() != "10.20.3.250:31998" {
		t.Fatalf("call 999: %v -> %v", c.Agent.Addr, c.Far.Addr)
	}
	tones := map[float64]bool{}
	for _, c := range calls[:20] {
		tones[c.FromAgent.ToneHz] = true
	}
	if len(tones) != 20 {
		t.Fatalf("the first 20 calls' agents send %d distinct tones, want 20", len(tones))
	}
	if _, err := Build(BuildConfig{Calls: 0}); err == nil {
		t.Fatal("0 calls accepted")
	}
}

// TestTshark has tshark read a capture and checks streams, packet counts
// and VLAN as tshark sees them.
func TestTshark(t *testing.T) {
	tshark := testutil.NeedTool(t, "tshark")
	for _, v6 := range []bool{false, true} {
		t.Run("ipv6="+strconv.FormatBool(v6), func(t *testing.T) {
			calls, err := Build(BuildConfig{Calls: 5, VLAN: 85, Priority: 5, Duration: 2 * time.Second, IPv6: v6,
				FixedSeq: true, StartSeq: 65500})
			if err != nil {
				t.Fatal(err)
			}
			path := t.TempDir() + "/c.pcap"
			var buf bytes.Buffer
			res, err := Write(&buf, &Config{Calls: calls, Impair: Impairments{Loss: 0.1}, Seed: 9, Record: true})
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, path, buf.Bytes())
			out, err := exec.Command(tshark, "-n", "-r", path, "-o", "rtp.heuristic_rtp:TRUE",
				"-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
				"-Y", "rtp && vlan.id == 85 && vlan.priority == 5 && !_ws.expert",
				"-T", "fields", "-e", "rtp.ssrc").Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			count := map[string]int{}
			for _, l := range strings.Fields(string(out)) {
				count[l]++
			}
			if len(count) != 10 {
				t.Fatalf("tshark sees %d RTP streams, want 10: %v", len(count), count)
			}
			for _, s := range res.Streams {
				key := "0x" + strconv.FormatUint(uint64(s.SSRC)|1<<32, 16)[1:]
				if count[key] != s.Written {
					t.Fatalf("SSRC %s: tshark sees %d packets, want %d", key, count[key], s.Written)
				}
			}
			// tshark's own stream statistics count the losses across the wrap.
			out, err = exec.Command(tshark, "-n", "-q", "-r", path, "-o", "rtp.heuristic_rtp:TRUE", "-z", "rtp,streams").Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			lost := 0
			for _, l := range strings.Split(string(out), "\n") {
				f := strings.Fields(l)
				if len(f) > 10 && strings.HasPrefix(f[6], "0x") {
					n, _ := strconv.Atoi(f[9])
					lost += n
				}
			}
			// tshark counts the gaps between the first and the last packet
			// it saw; losses at either end are invisible to it.
			want := 0
			for _, s := range res.Streams {
				first, last := s.Packets[0].Seq, s.Packets[len(s.Packets)-1].Seq
				want += int(uint16(last-first)) + 1 - len(s.Packets)
			}
			if lost != want || want == 0 {
				t.Fatalf("tshark counts %d lost, generator dropped %d", lost, want)
			}
		})
	}
}
