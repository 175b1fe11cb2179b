package captureserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/internal/g729"
	"github.com/silentmon/silentmon/internal/supervisor"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/silentmon/silentmon/relay"
)

// chanSource is a capture source fed one frame at a time by a test.
type chanSource struct{ c chan []byte }

func (s *chanSource) ReadBatch(frames [][]byte, infos []capture.Info) (int, error) {
	f, ok := <-s.c
	if !ok {
		return 0, io.EOF
	}
	frames[0] = f
	infos[0] = capture.Info{Timestamp: time.Now(), CaptureLength: len(f), Length: len(f)}
	return 1, nil
}
func (s *chanSource) LinkType() capture.LinkType { return capture.LinkType(1) }
func (s *chanSource) Close() error               { return nil }

// sipRig is a capture server with SIP tracking and one worker reading
// frames the test hands it, forwarding to an in-process supervisor
// service (WAV per session in dir) whose clock the test advances.
type sipRig struct {
	t     *testing.T
	s     *server
	w     *worker
	src   *chanSource
	sup   *supervisor.Supervisor
	clock *audiotest.Clock
	dir   string
	sess  string
	stop  func() // ends the worker and waits for it
}

func newSIPRig(t *testing.T) *sipRig {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	cfg := &Config{AuditFile: filepath.Join(t.TempDir(), "audit.jsonl"), SIP: true, SIPPorts: []uint16{5060}}
	cfg.Name = "cap-1"
	s := newServer(cfg, log)
	s.newForwarder(relay.DialConfig{})
	var err error
	if s.audit, err = audit.OpenWith(cfg.AuditFile, audit.Options{Member: cfg.Name}); err != nil {
		t.Fatal(err)
	}
	r := &sipRig{t: t, s: s, src: &chanSource{c: make(chan []byte)}, clock: audiotest.NewClock(time.Unix(1_700_000_000, 0)), dir: t.TempDir()}
	r.sup, err = supervisor.New(supervisor.Config{Output: "wav:" + filepath.Join(r.dir, "{session}.wav"), Logger: log,
		Clock: r.clock, Playout: playout.Config{Clock: r.clock}})
	if err != nil {
		t.Fatal(err)
	}
	supSrv := relay.NewServer(relay.ServerConfig{Handler: r.sup, Role: relay.RoleSupervisor, Logger: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	supDone := make(chan struct{})
	go func() { defer close(supDone); supSrv.Serve(ln) }()
	st, err := s.StartMonitor(context.Background(), &relay.Peer{Hello: relay.Hello{Role: relay.RoleClient}},
		&relay.StartMonitor{RequestID: 1, Agent: "1001", Supervisor: ln.Addr().String(), Wait: true})
	if err != nil {
		t.Fatalf("start by agent alone: %v", err)
	}
	r.sess = st.Session
	r.w = newWorker(s, r.src, "test", nil)
	s.workers = []*worker{r.w}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.w.run(ctx, false) }()
	var once sync.Once
	r.stop = func() { once.Do(func() { close(r.src.c); <-done }) }
	t.Cleanup(func() {
		cancel()
		r.stop()
		s.fw.Close()
		supSrv.Close()
		<-supDone
		r.sup.Close()
		s.audit.Close()
	})
	return r
}

// frame hands the worker a UDP datagram.
func (r *sipRig) frame(src, dst netip.AddrPort, payload []byte) {
	r.t.Helper()
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	udp.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(payload)); err != nil {
		r.t.Fatal(err)
	}
	r.src.c <- bytes.Clone(buf.Bytes())
}

var (
	agentSIP = netip.MustParseAddrPort("10.10.0.3:5060")
	farSIP   = netip.MustParseAddrPort("10.20.0.3:5060")
	agentRTP = netip.MustParseAddrPort("10.10.0.3:20000")
	farRTP   = netip.MustParseAddrPort("10.20.0.3:30000")
)

// call hands the worker an INVITE from extension 1001 to 2000 and its
// 200 OK and ACK, both SDP offering profile with the lines given, and
// waits until the capture server learned the call.
func (r *sipRig) call(profile string, lines ...string) {
	r.t.Helper()
	sdp := func(addr netip.AddrPort) string {
		b := fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 %s\r\ns=-\r\nc=IN IP4 %s\r\nt=0 0\r\nm=audio %d %s 96 101\r\n",
			addr.Addr(), addr.Addr(), addr.Port(), profile)
		for _, l := range lines {
			b += l + "\r\n"
		}
		return b
	}
	msg := func(first string, via netip.AddrPort, cseq, body string) []byte {
		ctype := ""
		if body != "" {
			ctype = "Content-Type: application/sdp\r\n"
		}
		return []byte(first + "\r\n" +
			"Via: SIP/2.0/UDP " + via.String() + ";branch=z9hG4bK-1\r\n" +
			"From: <sip:1001@example.com>;tag=a1\r\n" +
			"To: <sip:2000@example.com>" + map[bool]string{true: "", false: ";tag=b2"}[first[:6] == "INVITE"] + "\r\n" +
			"Call-ID: codecs-test-1\r\n" +
			"CSeq: " + cseq + "\r\n" +
			"Contact: <sip:1001@" + agentSIP.String() + ">\r\n" +
			"Max-Forwards: 70\r\n" + ctype +
			fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body)
	}
	r.frame(agentSIP, farSIP, msg("INVITE sip:2000@example.com SIP/2.0", agentSIP, "1 INVITE", sdp(agentRTP)))
	r.frame(farSIP, agentSIP, msg("SIP/2.0 200 OK", agentSIP, "1 INVITE", sdp(farRTP)))
	r.frame(agentSIP, farSIP, msg("ACK sip:2000@example.com SIP/2.0", agentSIP, "1 ACK", ""))
	waitUntil(r.t, "the call learned from SIP", func() bool { return len(r.s.agents.learned.Sessions()) > 0 })
}

// g729Stream makes the agent's G.729 packets on payload type 96 (a
// 1 kHz tone, two frames a packet) with a telephone event on 101 after
// every fifth; want is bcg729's decode of the frames.
type g729Stream struct {
	enc  *g729.Encoder
	ref  *g729.Decoder
	seq  uint16
	ts   uint32
	k, n int
	want []int16
}

func (g *g729Stream) next(t *testing.T) [][]byte {
	b := make([]byte, 12, 32)
	b[0], b[1] = 0x80, 96
	binary.BigEndian.PutUint16(b[2:], g.seq)
	binary.BigEndian.PutUint32(b[4:], g.ts)
	binary.BigEndian.PutUint32(b[8:], 0x1001)
	for range 2 {
		pcm := make([]int16, 80)
		for i := range pcm {
			pcm[i] = int16(8000 * math.Sin(2*math.Pi*1000*float64(g.k)/playout.SampleRate))
			g.k++
		}
		var f [10]byte
		if n, err := g.enc.Encode(pcm, f[:]); err != nil || n != 10 {
			t.Fatalf("encode: %d, %v", n, err)
		}
		b = append(b, f[:]...)
		out := make([]int16, 80)
		if err := g.ref.Decode(f[:], false, out); err != nil {
			t.Fatal(err)
		}
		g.want = append(g.want, out...)
	}
	g.seq++
	g.ts += 160
	g.n++
	out := [][]byte{b}
	if g.n%5 == 0 {
		e := make([]byte, 12, 16)
		e[0], e[1] = 0x80, 101
		binary.BigEndian.PutUint16(e[2:], g.seq)
		binary.BigEndian.PutUint32(e[4:], g.ts)
		binary.BigEndian.PutUint32(e[8:], 0x1001)
		g.seq++
		out = append(out, append(e, 5, 10, 0, 160))
	}
	return out
}

// TestG729DynamicFromSDPLive: a SIP call whose SDP puts G.729 on 96 and
// telephone-event on 101, monitored by --agent alone, reaches the
// supervisor service through the forwarder and plays as G.729 with no
// --codec: its WAV is, sample for sample, bcg729's decode of the frames
// sent, the telephone events adding nothing. (Without the payload types
// in the session notice, 96 is unknown at the supervisor and the WAV
// holds nothing.)
func TestG729DynamicFromSDPLive(t *testing.T) {
	if !g729.Available() {
		t.Skip("skipping: G.729 is not built in (needs cgo and libbcg729-dev)")
	}
	r := newSIPRig(t)
	r.call("RTP/AVP", "a=rtpmap:96 G729/8000", "a=fmtp:96 annexb=no", "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15")
	enc, err := g729.NewEncoder(false)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	ref, err := g729.NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	g := &g729Stream{enc: enc, ref: ref, seq: 100, ts: 5000}
	sent := uint64(0)
	for range 100 {
		for _, p := range g.next(t) {
			r.frame(agentRTP, farRTP, p)
			sent++
		}
		waitUntil(t, "the packets at the supervisor", func() bool { return r.sup.Totals().Packets == sent })
		r.clock.Advance(20 * time.Millisecond)
	}
	r.clock.Advance(time.Second)
	if err := r.sup.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, r.sess+".wav"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := gen.ReadWAV(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	off := audiotest.Align(got, g.want)
	if off < 0 {
		t.Fatalf("WAV of %d samples: cannot align the %d samples of the G.729 decode", len(got), len(g.want))
	}
	for i, w := range g.want {
		if got[off+i] != w {
			t.Fatalf("sample %d is %d, want %d (bcg729's decode of the frames sent)", i, got[off+i], w)
		}
	}
	if n := len(got) - off - len(g.want); n > 0 {
		for _, v := range got[off+len(g.want):] {
			if v != 0 {
				t.Fatalf("%d samples after the call's audio are not silent", n)
			}
		}
	}
}

// TestSRTPWithoutKeysNotForwarded: a call whose SDP negotiated SRTP
// without a=crypto (the keys are not visible) is never sent to the
// supervisor as RTP (nothing to play as noise); its stream shows
// encrypted in status, with the packets seen, and the packets are
// counted for silentmon_capture_srtp_undecryptable_total.
func TestSRTPWithoutKeysNotForwarded(t *testing.T) {
	r := newSIPRig(t)
	r.call("RTP/SAVP", "a=rtpmap:96 PCMU/8000", "a=rtpmap:101 telephone-event/8000")
	const n = 50
	for i := range n {
		p := make([]byte, 12+160)
		p[0], p[1] = 0x80, 0
		binary.BigEndian.PutUint16(p[2:], uint16(i))
		binary.BigEndian.PutUint32(p[4:], uint32(160*i))
		binary.BigEndian.PutUint32(p[8:], 0x5555)
		for j := 12; j < len(p); j++ {
			p[j] = byte(i*31 + j*17) // ciphertext-like
		}
		r.frame(agentRTP, farRTP, p)
		r.frame(farRTP, agentRTP, p)
	}
	waitUntil(t, "the packets counted", func() bool { return r.s.srtpUndecryptable() == 2*n })
	if got := r.sup.Totals().Packets; got != 0 {
		t.Fatalf("the supervisor got %d packets of SRTP without keys", got)
	}
	for _, x := range r.s.fw.Stats() {
		if x.Sent+uint64(x.Queued) != 0 {
			t.Fatalf("forwarder %+v sent or queued SRTP without keys", x)
		}
	}
	r.stop()
	r.w.publish(true) // the worker's figures, as its loop publishes them
	st := r.s.status()
	if len(st.Sessions) != 1 {
		t.Fatalf("%d sessions in status", len(st.Sessions))
	}
	sj := st.Sessions[0]
	if sj.SRTPUndecryptable != 2*n || sj.Packets != 0 || len(sj.Streams) != 2 {
		t.Fatalf("session %+v: want 2 streams, %d undecryptable packets, none forwarded", sj, 2*n)
	}
	for _, x := range sj.Streams {
		if x.Encrypted != EncryptedNoKeys || x.Packets != n {
			t.Fatalf("stream %+v: want encrypted %q with %d packets", x, EncryptedNoKeys, n)
		}
	}
}
