package relay

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/silentmon/silentmon/filter"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestFrameRoundTrip(t *testing.T) {
	var b []byte
	b = AppendFrame(b, MsgHeartbeat, []byte(`{"seq":1}`))
	b = AppendFrame(b, MsgMedia, []byte{1, 2, 3})
	b = AppendFrame(b, MsgStatus, nil)
	r := NewReader(bytes.NewReader(b), 0)
	for _, want := range []struct {
		t    MsgType
		body string
	}{{MsgHeartbeat, `{"seq":1}`}, {MsgMedia, "\x01\x02\x03"}, {MsgStatus, ""}} {
		typ, body, err := r.Next()
		if err != nil || typ != want.t || string(body) != want.body {
			t.Fatalf("Next = %v %q %v, want %v %q", typ, body, err, want.t, want.body)
		}
	}
	if _, _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	big := binary.BigEndian.AppendUint32(nil, 1<<20)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"zero length", []byte{0, 0, 0, 0, 1}, ErrBadFrame},
		{"too large", append(big, byte(MsgMedia)), ErrFrameTooLarge},
		{"truncated body", AppendFrame(nil, MsgHello, []byte("{}"))[:6], io.ErrUnexpectedEOF},
		{"truncated header", []byte{0, 0}, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := NewReader(bytes.NewReader(tc.in), 1024).Next()
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func samplePackets() []MediaPacket {
	return []MediaPacket{
		{Direction: filter.FromAgent, Time: 1_700_000_000_123_456_789, Src: netip.MustParseAddrPort("10.10.0.1:20000"),
			Dst: netip.MustParseAddrPort("10.20.0.1:30000"), VLAN: 0xa055, Data: bytes.Repeat([]byte{0x80}, 172)},
		{Direction: filter.ToAgent, Time: 42, Src: netip.MustParseAddrPort("[2001:db8::2]:30000"),
			Dst: netip.MustParseAddrPort("[2001:db8::1]:20000"), Data: []byte{0x80, 0, 0, 1}},
		{Direction: filter.ToAgent, Time: 43, Src: netip.MustParseAddrPort("10.20.0.1:30000"),
			Dst: netip.MustParseAddrPort("10.10.0.1:20000"), Data: nil},
	}
}

func TestMediaRoundTrip(t *testing.T) {
	ps := samplePackets()
	body := AppendMediaHeader(nil, "abc123", len(ps))
	size := len(body)
	for i := range ps {
		body = AppendMediaPacket(body, &ps[i])
		size += MediaPacketLen(&ps[i])
	}
	if size != len(body) {
		t.Fatalf("MediaPacketLen sums to %d, body is %d", size, len(body))
	}
	f, err := ParseMedia(body)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.Session) != "abc123" || f.Len() != len(ps) {
		t.Fatalf("header: session %q, %d packets", f.Session, f.Len())
	}
	for i := range ps {
		var p MediaPacket
		ok, err := f.Next(&p)
		if !ok || err != nil {
			t.Fatalf("packet %d: %v %v", i, ok, err)
		}
		w := ps[i]
		if p.Direction != w.Direction || p.Time != w.Time || p.Src != w.Src || p.Dst != w.Dst || p.VLAN != w.VLAN || !bytes.Equal(p.Data, w.Data) {
			t.Fatalf("packet %d = %+v, want %+v", i, p, w)
		}
	}
	if ok, err := f.Next(new(MediaPacket)); ok || err != nil {
		t.Fatalf("after the last packet: %v %v", ok, err)
	}
}

func TestMediaMalformed(t *testing.T) {
	ps := samplePackets()
	good := AppendMediaPacket(AppendMediaHeader(nil, "s", 1), &ps[0])
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"no session", []byte{0, 0, 1}},
		{"count too high", AppendMediaPacket(AppendMediaHeader(nil, "s", 2), &ps[0])},
		{"trailing bytes", append(append([]byte(nil), good...), 0)},
		{"cut packet", good[:len(good)-1]},
		{"bad direction", func() []byte { b := append([]byte(nil), good...); b[4] = 9; return b }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseMedia(tc.body)
			for err == nil {
				var ok bool
				ok, err = f.Next(new(MediaPacket))
				if !ok && err == nil {
					t.Fatal("malformed media frame parsed without error")
				}
			}
			if !errors.Is(err, ErrBadMedia) {
				t.Fatalf("err = %v, want ErrBadMedia", err)
			}
		})
	}
}

func TestMediaParseAllocs(t *testing.T) {
	ps := samplePackets()
	body := AppendMediaHeader(nil, "abc", len(ps))
	for i := range ps {
		body = AppendMediaPacket(body, &ps[i])
	}
	var p MediaPacket
	n := testing.AllocsPerRun(100, func() {
		f, _ := ParseMedia(body)
		for ok, _ := f.Next(&p); ok; ok, _ = f.Next(&p) {
		}
	})
	if n != 0 {
		t.Fatalf("parsing a media frame allocates %v times", n)
	}
}

// FuzzReader feeds arbitrary bytes to the frame reader and the media
// parser: no panic, every error is one of the package's.
func FuzzReader(f *testing.F) {
	ps := samplePackets()
	media := AppendMediaHeader(nil, "sess", len(ps))
	for i := range ps {
		media = AppendMediaPacket(media, &ps[i])
	}
	f.Add(AppendFrame(nil, MsgMedia, media))
	f.Add(AppendFrame(nil, MsgHello, []byte(`{"versions":[1],"role":"client"}`)))
	f.Add(AppendFrame(AppendFrame(nil, MsgHeartbeat, []byte(`{"seq":7}`)), MsgStartMonitor, []byte(`{"request_id":1,"agent":"1001","endpoints":["10.0.0.1"]}`)))
	f.Add([]byte{0, 0, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x10})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewReader(bytes.NewReader(b), 4096)
		for {
			typ, body, err := r.Next()
			if err != nil {
				return
			}
			switch typ {
			case MsgMedia:
				m, err := ParseMedia(body)
				for err == nil {
					var p MediaPacket
					var ok bool
					ok, err = m.Next(&p)
					if !ok {
						break
					}
				}
			default:
				var v map[string]any
				DecodeJSON(typ, body, &v)
			}
		}
	})
}

func TestDedup(t *testing.T) {
	d := NewDedup()
	rtp := func(seq uint16, ssrc uint32) []byte {
		b := make([]byte, 12)
		b[0] = 0x80
		binary.BigEndian.PutUint16(b[2:], seq)
		binary.BigEndian.PutUint32(b[8:], ssrc)
		return b
	}
	sess := []byte("s1")
	steps := []struct {
		seq  uint16
		ssrc uint32
		dir  filter.Direction
		dup  bool
	}{
		{65534, 1, filter.FromAgent, false},
		{65535, 1, filter.FromAgent, false},
		{65534, 1, filter.FromAgent, true}, // second capture server
		{0, 1, filter.FromAgent, false},    // wrap
		{65535, 1, filter.FromAgent, true}, // late duplicate across the wrap
		{0, 1, filter.ToAgent, false},      // other direction
		{0, 2, filter.FromAgent, false},    // other SSRC
		{5, 1, filter.FromAgent, false},    // gap
		{3, 1, filter.FromAgent, false},    // reordered, first time
		{3, 1, filter.FromAgent, true},
		{5, 1, filter.FromAgent, true},
	}
	for i, s := range steps {
		if got := d.Seen(sess, s.dir, rtp(s.seq, s.ssrc)); got != s.dup {
			t.Fatalf("step %d (seq %d ssrc %d dir %v): Seen = %v, want %v", i, s.seq, s.ssrc, s.dir, got, s.dup)
		}
	}
	if d.Duplicates() != 4 {
		t.Fatalf("Duplicates = %d, want 4", d.Duplicates())
	}
}

// TestDedupAllocsAndExpiry: a known stream costs no allocation per packet,
// and streams unseen for a minute are forgotten.
func TestDedupAllocsAndExpiry(t *testing.T) {
	d := NewDedup()
	now := time.Unix(1000, 0)
	d.now = func() time.Time { return now }
	pkt := make([]byte, 12)
	pkt[0] = 0x80
	sess := []byte("s1")
	var seq uint16
	d.Seen(sess, filter.FromAgent, pkt)
	if n := testing.AllocsPerRun(1000, func() {
		seq++
		binary.BigEndian.PutUint16(pkt[2:], seq)
		d.Seen(sess, filter.FromAgent, pkt)
	}); n != 0 {
		t.Fatalf("Seen of a known stream allocates %v times", n)
	}
	if d.Streams() != 1 {
		t.Fatalf("Streams = %d, want 1", d.Streams())
	}
	now = now.Add(2 * time.Minute) // the call ended long ago
	binary.BigEndian.PutUint32(pkt[8:], 99)
	d.Seen([]byte("s2"), filter.ToAgent, pkt) // a new call's stream
	if d.Streams() != 1 {
		t.Fatalf("Streams = %d after the first call went idle, want 1 (only the new one)", d.Streams())
	}
}

// testHandler records what a Server hands it.
type testHandler struct {
	mu       sync.Mutex
	started  []StartMonitor
	media    []MediaPacket
	sessions []string
	closed   atomic.Int32
	block    chan struct{} // if not nil, Media blocks on it
}

func (h *testHandler) StartMonitor(ctx context.Context, p *Peer, req *StartMonitor) (*SessionStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.Agent == "" {
		return nil, &Error{Code: CodeBadRequest, Message: "no agent"}
	}
	h.started = append(h.started, *req)
	id := req.Session
	if id == "" {
		id = "s" + req.Agent
	}
	return &SessionStatus{Session: id, State: "started", Agent: req.Agent}, nil
}

func (h *testHandler) StopMonitor(ctx context.Context, p *Peer, req *StopMonitor) (*SessionStatus, error) {
	return nil, &Error{Code: CodeUnknown, Message: "session " + req.Session + " does not exist"}
}

func (h *testHandler) Status(ctx context.Context, p *Peer) (any, error) {
	return map[string]int{"answer": 42}, nil
}

func (h *testHandler) Media(p *Peer, f *MediaFrame) error {
	if h.block != nil {
		<-h.block
	}
	var mp MediaPacket
	for {
		ok, err := f.Next(&mp)
		if err != nil || !ok {
			return err
		}
		mp.Data = append([]byte(nil), mp.Data...)
		h.mu.Lock()
		h.media = append(h.media, mp)
		h.sessions = append(h.sessions, string(f.Session))
		h.mu.Unlock()
	}
}

func (h *testHandler) Closed(p *Peer, err error) { h.closed.Add(1) }

func (h *testHandler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.media)
}

func startServer(t *testing.T, h Handler, cfg ServerConfig) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = h
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	s := NewServer(cfg)
	done := make(chan struct{})
	go func() { s.Serve(ln); close(done) }()
	t.Cleanup(func() { s.Close(); <-done })
	return s, ln.Addr().String()
}

func rawDial(t *testing.T, addr string) (net.Conn, *Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, NewReader(c, 0)
}

func expectError(t *testing.T, r *Reader, code string) {
	t.Helper()
	typ, body, err := r.Next()
	if err != nil {
		t.Fatalf("want an error frame (%s), got %v", code, err)
	}
	var e Error
	if typ != MsgError || DecodeJSON(typ, body, &e) != nil || e.Code != code {
		t.Fatalf("got %v %s, want error %s", typ, body, code)
	}
	if _, _, err := r.Next(); err == nil {
		t.Fatal("connection still open after a fatal error")
	}
}

func TestServerRefusesBadPeers(t *testing.T) {
	h := &testHandler{}
	srv, addr := startServer(t, h, ServerConfig{MaxFrame: 1024})
	hello := AppendFrame(nil, MsgHello, []byte(`{"versions":[1],"role":"client"}`))

	// A good client, connected throughout: it must keep working.
	good, err := Dial(context.Background(), ClientConfig{Servers: []string{addr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()

	cases := []struct {
		name string
		send []byte
		code string
	}{
		{"wrong version", AppendFrame(nil, MsgHello, []byte(`{"versions":[7,9],"role":"client"}`)), CodeVersion},
		{"no hello", AppendFrame(nil, MsgStatus, []byte(`{}`)), CodeProtocol},
		{"hello not JSON", AppendFrame(nil, MsgHello, []byte(`{{{`)), CodeProtocol},
		{"oversize", append(append(append([]byte(nil), hello...), binary.BigEndian.AppendUint32(nil, 1<<20)...), byte(MsgMedia)), CodeTooLarge},
		{"unknown type", append(append([]byte(nil), hello...), AppendFrame(nil, MsgType(0x7f), []byte(`{}`))...), CodeProtocol},
		{"malformed media", append(append([]byte(nil), hello...), AppendFrame(nil, MsgMedia, []byte{3, 'a'})...), CodeProtocol},
		{"bad JSON request", append(append([]byte(nil), hello...), AppendFrame(nil, MsgStartMonitor, []byte(`[1,2`))...), CodeProtocol},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, r := rawDial(t, addr)
			c.Write(tc.send)
			if bytes.HasPrefix(tc.send, hello) {
				if typ, _, err := r.Next(); err != nil || typ != MsgHello {
					t.Fatalf("hello answer: %v %v", typ, err)
				}
			}
			expectError(t, r, tc.code)
			if _, err := good.Status(context.Background()); err != nil {
				t.Fatalf("the good client failed after a bad peer: %v", err)
			}
		})
	}
	if srv.Stats().ProtocolErrors < uint64(len(cases)) {
		t.Fatalf("ProtocolErrors = %d, want ≥ %d", srv.Stats().ProtocolErrors, len(cases))
	}
}

func TestClientRequests(t *testing.T) {
	h := &testHandler{}
	_, addr := startServer(t, h, ServerConfig{Name: "cap-1"})
	cl, err := Dial(context.Background(), ClientConfig{Servers: []string{addr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st, err := cl.StartMonitor(context.Background(), StartMonitor{Agent: "1001", Endpoints: []string{"10.0.0.1"}, Supervisor: "127.0.0.1:1"})
	if err != nil || st.Session != "s1001" || st.Server != "cap-1" {
		t.Fatalf("StartMonitor = %+v, %v", st, err)
	}
	_, err = cl.StartMonitor(context.Background(), StartMonitor{})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeBadRequest {
		t.Fatalf("refused start: err = %v, want a bad-request *Error", err)
	}
	if _, err := cl.StopMonitor(context.Background(), "nope"); !errors.As(err, &e) || e.Code != CodeUnknown {
		t.Fatalf("stop of an unknown session: %v", err)
	}
	raw, err := cl.Status(context.Background())
	if err != nil || string(raw) != `{"answer":42}` {
		t.Fatalf("Status = %s, %v", raw, err)
	}
}

// TestClientFailsOverOnBrokenSocket: a server dies; the client is on the
// other one within a second and re-asserts its session there.
func TestClientFailsOverOnBrokenSocket(t *testing.T) {
	h1, h2 := &testHandler{}, &testHandler{}
	s1, a1 := startServer(t, h1, ServerConfig{Name: "a"})
	s2, a2 := startServer(t, h2, ServerConfig{Name: "b"})
	cl, err := Dial(context.Background(), ClientConfig{Servers: []string{a1, a2}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.StartMonitor(context.Background(), StartMonitor{Agent: "1001", Endpoints: []string{"10.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	first := cl.Server()
	victim, other := s1, h2
	if first == a2 {
		victim, other = s2, h1
	}
	killed := time.Now()
	victim.Close()
	deadline := killed.Add(time.Second)
	for {
		other.mu.Lock()
		n := len(other.started)
		var re StartMonitor
		if n > 0 {
			re = other.started[0]
		}
		other.mu.Unlock()
		if n > 0 {
			if re.Session != "s1001" {
				t.Fatalf("re-asserted session id %q, want s1001", re.Session)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("client not on the other server within 1 s (on %q)", cl.Server())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("failed over from %s to %s in %v", first, cl.Server(), time.Since(killed))
	if cl.Failovers() != 1 {
		t.Fatalf("Failovers = %d, want 1", cl.Failovers())
	}
}

// blackhole accepts connections, answers the hello, then reads and never
// answers: a server behind a pulled cable.
func blackhole(t *testing.T) string {
	return serveLoopback(t, func(c net.Conn) {
		defer c.Close()
		r := NewReader(c, 0)
		if _, _, err := r.Next(); err != nil {
			return
		}
		c.Write(AppendFrame(nil, MsgHello, []byte(`{"version":1,"role":"server"}`)))
		io.Copy(io.Discard, c)
	})
}

// serveLoopback listens on a loopback port and runs handle on its own
// goroutine for every connection until the test ends, then closes the
// listener and waits for the handlers; it returns the address.
func serveLoopback(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); handle(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestClientDetectsSilentServer: heartbeats unanswered → failover after
// HeartbeatRetries intervals, not before.
func TestClientDetectsSilentServer(t *testing.T) {
	hole := blackhole(t)
	h := &testHandler{}
	_, good := startServer(t, h, ServerConfig{})
	const interval = 40 * time.Millisecond
	cl, err := Dial(context.Background(), ClientConfig{Servers: []string{hole}, Logger: quiet(),
		HeartbeatInterval: interval, HeartbeatRetries: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// With the silent server alone in the list, the client must give it
	// up (and reconnect to it) after 5 unanswered heartbeats.
	start := time.Now()
	for cl.Failovers() == 0 && time.Since(start) < 5*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	took := time.Since(start)
	if cl.Failovers() == 0 {
		t.Fatal("silent server never detected")
	}
	if took < 5*interval {
		t.Fatalf("gave up after %v, before 5 heartbeats (%v)", took, 5*interval)
	}
	t.Logf("silent server detected after %v (interval %v, 5 retries)", took, interval)

	// With two servers the client ends on the answering one.
	cl2, err := Dial(context.Background(), ClientConfig{Servers: []string{hole, good}, Logger: quiet(),
		HeartbeatInterval: interval, HeartbeatRetries: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for cl2.Server() != good {
		if time.Now().After(deadline) {
			t.Fatalf("client stayed on %s", cl2.Server())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := cl2.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestServerDropsSilentPeer: a peer silent for the heartbeat timeout is
// dropped.
func TestServerDropsSilentPeer(t *testing.T) {
	h := &testHandler{}
	srv, addr := startServer(t, h, ServerConfig{HeartbeatTimeout: 100 * time.Millisecond})
	c, r := rawDial(t, addr)
	c.Write(AppendFrame(nil, MsgHello, []byte(`{"versions":[1],"role":"client"}`)))
	if typ, _, err := r.Next(); err != nil || typ != MsgHello {
		t.Fatal(typ, err)
	}
	start := time.Now()
	if _, _, err := r.Next(); err == nil {
		t.Fatal("silent peer got a frame instead of being dropped")
	}
	if d := time.Since(start); d < 90*time.Millisecond || d > 2*time.Second {
		t.Fatalf("dropped after %v, want about 100 ms", d)
	}
	for h.closed.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	if srv.Stats().Active != 0 {
		t.Fatalf("Active = %d after the drop", srv.Stats().Active)
	}
}

func TestDialSetsTOS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	nc, err := dial(context.Background(), ln.Addr().String(), DialConfig{TOS: 0xB8})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var tos int
	var serr error
	rc.Control(func(fd uintptr) { tos, serr = unix.GetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS) })
	if serr != nil || tos != 0xB8 {
		t.Fatalf("IP_TOS = %#x, %v; want 0xb8", tos, serr)
	}
}

func mediaPacket(seq uint16) *MediaPacket {
	rtp := make([]byte, 172)
	rtp[0] = 0x80
	binary.BigEndian.PutUint16(rtp[2:], seq)
	return &MediaPacket{Direction: filter.FromAgent, Time: time.Now().UnixNano(),
		Src: netip.MustParseAddrPort("10.10.0.1:20000"), Dst: netip.MustParseAddrPort("10.20.0.1:30000"), Data: rtp}
}

// TestForwarderDeliversInOrder: packets of two sessions reach the
// supervisor in order, batched.
func TestForwarderDeliversInOrder(t *testing.T) {
	h := &testHandler{}
	_, addr := startServer(t, h, ServerConfig{Role: RoleSupervisor})
	fw := NewForwarder(ForwarderConfig{Logger: quiet()})
	defer fw.Close()
	s1 := &filter.Session{ID: "one", Supervisor: addr}
	s2 := &filter.Session{ID: "two", Supervisor: addr}
	const n = 2000
	for i := 0; i < n; i++ {
		s := s1
		if i%3 == 0 {
			s = s2
		}
		fw.Forward(s, mediaPacket(uint16(i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := fw.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for h.count() < n && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.media) != n {
		t.Fatalf("supervisor got %d packets, want %d", len(h.media), n)
	}
	for i, p := range h.media {
		seq := binary.BigEndian.Uint16(p.Data[2:])
		want := "one"
		if seq%3 == 0 {
			want = "two"
		}
		if h.sessions[i] != want {
			t.Fatalf("packet seq %d arrived for session %s, want %s", seq, h.sessions[i], want)
		}
		if i > 0 {
			prev := binary.BigEndian.Uint16(h.media[i-1].Data[2:])
			if h.sessions[i] == h.sessions[i-1] && seq <= prev {
				t.Fatalf("out of order within session: %d after %d", seq, prev)
			}
		}
	}
	st := fw.Stats()
	if len(st) != 1 || st[0].Sent != n || st[0].Dropped != 0 || st[0].State != "connected" {
		t.Fatalf("stats %+v", st)
	}
}

// TestForwarderBackPressure: a stuck supervisor never blocks Forward;
// the queue stays bounded and drops the oldest, counted.
func TestForwarderBackPressure(t *testing.T) {
	h := &testHandler{block: make(chan struct{})}
	_, addr := startServer(t, h, ServerConfig{Role: RoleSupervisor})
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), QueueLen: 256})
	defer fw.Close()
	defer close(h.block)
	fast := &filter.Session{ID: "x", Supervisor: addr}
	start := time.Now()
	const n = 200_000
	for i := 0; i < n; i++ {
		fw.Forward(fast, mediaPacket(uint16(i)))
	}
	// Blocking would never end; the bound only has to tell that from a
	// loaded machine (about 1 s here alone under the race detector).
	if d := time.Since(start); d > time.Minute {
		t.Fatalf("Forward of %d packets to a stuck supervisor took %v", n, d)
	}
	st := fw.Stats()[0]
	if st.Queued > 256 {
		t.Fatalf("queue holds %d packets, bound is 256", st.Queued)
	}
	if st.Dropped == 0 {
		t.Fatal("no drop counted with a stuck supervisor")
	}
	if int(st.Dropped)+st.Queued+int(st.Sent)+int(st.Lost) < n-64*16 {
		t.Fatalf("packets unaccounted for: %+v", st)
	}
	t.Logf("stuck supervisor: %+v", st)
}

// TestForwarderResumesAfterSupervisorRestart: the supervisor goes away and
// comes back on the same address; media flows again within a second.
func TestForwarderResumesAfterSupervisorRestart(t *testing.T) {
	h := &testHandler{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	srv := NewServer(ServerConfig{Handler: h, Logger: quiet(), Role: RoleSupervisor})
	go srv.Serve(ln)
	fw := NewForwarder(ForwarderConfig{Logger: quiet()})
	defer fw.Close()
	sess := &filter.Session{ID: "x", Supervisor: addr}
	fw.Forward(sess, mediaPacket(1))
	for h.count() < 1 {
		time.Sleep(time.Millisecond)
	}
	srv.Close()
	// Once the sender has seen the connection go (bytes written into a
	// socket the peer has just closed are gone with it, as with any TCP
	// sender), packets captured while the supervisor is down wait in the
	// queue.
	for fw.Stats()[0].State == "connected" {
		time.Sleep(time.Millisecond)
	}
	for i := 2; i < 50; i++ {
		fw.Forward(sess, mediaPacket(uint16(i)))
		time.Sleep(time.Millisecond)
	}
	h2 := &testHandler{}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot rebind %s: %v", addr, err)
	}
	back := time.Now()
	srv2 := NewServer(ServerConfig{Handler: h2, Logger: quiet(), Role: RoleSupervisor})
	go srv2.Serve(ln2)
	defer srv2.Close()
	fw.Forward(sess, mediaPacket(50))
	for h2.count() == 0 {
		if time.Since(back) > time.Second {
			t.Fatalf("media did not resume within 1 s of the supervisor coming back: %+v", fw.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("resumed %v after the supervisor came back", time.Since(back))
	// What was queued during the outage arrives (nothing beyond the bound
	// is lost), minus what a write to the dead socket swallowed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	fw.Flush(ctx)
	for h2.count() < 49 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	st := fw.Stats()[0]
	if got := h.count() + h2.count() + int(st.Lost); got < 50 {
		t.Fatalf("delivered %d + %d, lost in write %d: want all 50 accounted for", h.count(), h2.count(), st.Lost)
	}
	if st.Reconnects == 0 {
		t.Fatal("no reconnection counted")
	}
	if !strings.Contains(st.State, "connected") {
		t.Fatalf("state %q", st.State)
	}
}

// noticeHandler is a testHandler that takes session notices; events
// lists, in arrival order, "start:SESSION:AGENT", "stop:SESSION" and
// "media:SESSION".
type noticeHandler struct {
	testHandler
	emu    sync.Mutex
	events []string
}

func (h *noticeHandler) Session(p *Peer, n *SessionNotice) error {
	h.emu.Lock()
	defer h.emu.Unlock()
	if n.State == SessionStarted {
		h.events = append(h.events, "start:"+n.Session+":"+n.Agent)
	} else {
		h.events = append(h.events, "stop:"+n.Session)
	}
	return nil
}

func (h *noticeHandler) Media(p *Peer, f *MediaFrame) error {
	h.emu.Lock()
	h.events = append(h.events, "media:"+string(f.Session))
	h.emu.Unlock()
	return h.testHandler.Media(p, f)
}

func (h *noticeHandler) snapshot() []string {
	h.emu.Lock()
	defer h.emu.Unlock()
	return append([]string(nil), h.events...)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestForwarderAnnouncesSessions: each session is announced, with its
// agent, before its first media frame; Sync announces a session that is no
// longer listed stopped after its media; Retain announces the rest stopped
// when it closes the connection.
func TestForwarderAnnouncesSessions(t *testing.T) {
	h := &noticeHandler{}
	_, addr := startServer(t, h, ServerConfig{Role: RoleSupervisor})
	fw := NewForwarder(ForwarderConfig{Logger: quiet(), Name: "cap-1"})
	defer fw.Close()
	s1 := &filter.Session{ID: "one", Agent: "1001", Supervisor: addr}
	s2 := &filter.Session{ID: "two", Agent: "1002", Supervisor: addr}
	const n = 300
	for i := 0; i < n; i++ {
		s := s1
		if i%2 == 0 {
			s = s2
		}
		fw.Forward(s, mediaPacket(uint16(i)))
	}
	waitFor(t, "media", func() bool { return h.count() == n })
	fw.Sync([]*filter.Session{s2})
	waitFor(t, "stop of one", func() bool { return slices.Contains(h.snapshot(), "stop:one") })
	fw.Retain(nil)
	waitFor(t, "stop of two", func() bool { return slices.Contains(h.snapshot(), "stop:two") })
	ev := h.snapshot()
	for _, id := range []string{"one", "two"} {
		agent := map[string]string{"one": "1001", "two": "1002"}[id]
		first := slices.IndexFunc(ev, func(e string) bool { return strings.HasSuffix(e, ":"+id) || strings.Contains(e, ":"+id+":") })
		if first < 0 || ev[first] != "start:"+id+":"+agent {
			t.Fatalf("session %s: first event %d of %q, want its start notice with agent %s", id, first, ev, agent)
		}
		if c := slices.Index(ev, "start:"+id+":"+agent); slices.Index(ev[c+1:], "start:"+id+":"+agent) >= 0 {
			t.Fatalf("session %s announced twice on one connection: %q", id, ev)
		}
		stop := slices.Index(ev, "stop:"+id)
		if last := slices.Index(ev, "media:"+id); last > stop {
			t.Fatalf("session %s: media after its stop notice: %q", id, ev)
		}
		for _, e := range ev[stop+1:] {
			if e == "media:"+id {
				t.Fatalf("session %s: media after its stop notice: %q", id, ev)
			}
		}
	}
}

// TestForwarderNoNoticesToOldSupervisor: a supervisor that does not list
// FeatureSessions gets media only (an older supervisor would refuse the
// unknown frame type).
func TestForwarderNoNoticesToOldSupervisor(t *testing.T) {
	h := &testHandler{}
	srv, addr := startServer(t, h, ServerConfig{Role: RoleSupervisor})
	fw := NewForwarder(ForwarderConfig{Logger: quiet()})
	defer fw.Close()
	s := &filter.Session{ID: "x", Agent: "1001", Supervisor: addr}
	for i := 0; i < 10; i++ {
		fw.Forward(s, mediaPacket(uint16(i)))
	}
	waitFor(t, "media", func() bool { return h.count() == 10 })
	fw.Sync(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	fw.Flush(ctx)
	if st := srv.Stats(); st.ProtocolErrors != 0 {
		t.Fatalf("server counted %d protocol errors", st.ProtocolErrors)
	}
}

// TestServerSessionNoticeErrors: a SessionHandler error closes the
// connection after an error frame with its code.
func TestServerSessionNoticeErrors(t *testing.T) {
	h := &refusingHandler{}
	_, addr := startServer(t, h, ServerConfig{Role: RoleSupervisor})
	c, r := rawDial(t, addr)
	defer c.Close()
	c.Write(AppendFrame(nil, MsgHello, []byte(`{"versions":[1],"role":"client"}`)))
	typ, body, err := r.Next()
	if err != nil || typ != MsgHello {
		t.Fatalf("hello reply %v %v", typ, err)
	}
	var hello Hello
	DecodeJSON(typ, body, &hello)
	if !hello.HasFeature(FeatureSessions) {
		t.Fatalf("hello %+v does not list %s", hello, FeatureSessions)
	}
	c.Write(AppendFrame(nil, MsgSession, []byte(`{"session":"x","state":"started"}`)))
	expectError(t, r, CodeUnauthorized)
}

type refusingHandler struct{ MediaOnly }

func (refusingHandler) Status(context.Context, *Peer) (any, error) { return nil, nil }
func (refusingHandler) Media(*Peer, *MediaFrame) error             { return nil }
func (refusingHandler) Closed(*Peer, error)                        {}
func (refusingHandler) Session(p *Peer, n *SessionNotice) error {
	return &Error{Code: CodeUnauthorized, Message: "role " + p.Hello.Role + " may not send session notices"}
}

// bigStatus is a handler whose status is the object v.
type bigStatus struct {
	testHandler
	v any
}

func (h *bigStatus) Status(ctx context.Context, p *Peer) (any, error) { return h.v, nil }

// sessionsObject returns a status-like object holding n sessions.
func sessionsObject(n int) map[string]any {
	ss := make([]map[string]any, n)
	for i := range ss {
		ss[i] = map[string]any{"id": fmt.Sprintf("%032x", i), "agent": fmt.Sprint(1000 + i),
			"endpoints": []string{fmt.Sprintf("10.%d.%d.1", i>>8&255, i&255), "10.0.0.2:20000-20999"}}
	}
	return map[string]any{"server": "big", "sessions": ss}
}

// TestStatusInParts: a status far larger than a frame (10,000 sessions,
// about 1.2 MB) reaches a client through Client.Status whole and
// byte-for-byte; a small one still comes as one status-reply frame; a
// client that does not list FeatureStatusParts gets an error naming the
// size, on a connection that stays up. (The old server wrote the whole
// status as one frame, which the client refused: "frame too large".)
func TestStatusInParts(t *testing.T) {
	v := sessionsObject(10000)
	want, _ := json.Marshal(v)
	if len(want) < 4*DefaultMaxFrame {
		t.Fatalf("the test status is only %d bytes", len(want))
	}
	h := &bigStatus{v: v}
	_, addr := startServer(t, h, ServerConfig{})
	cl, err := Dial(context.Background(), ClientConfig{Servers: []string{addr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got, err := cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("status of %d bytes, want the %d bytes sent", len(got), len(want))
	}

	// A client without the feature, speaking the wire by hand.
	c, r := rawDial(t, addr)
	defer c.Close()
	c.Write(AppendFrame(nil, MsgHello, []byte(`{"versions":[1],"role":"client"}`)))
	if typ, _, err := r.Next(); err != nil || typ != MsgHello {
		t.Fatalf("hello: %v %v", typ, err)
	}
	c.Write(AppendFrame(nil, MsgStatus, []byte(`{"request_id":7}`)))
	typ, body, err := r.Next()
	if err != nil || typ != MsgError {
		t.Fatalf("old client's status: %v %v", typ, err)
	}
	var e Error
	DecodeJSON(typ, body, &e)
	if e.RequestID != 7 || e.Code != CodeTooLarge || !strings.Contains(e.Message, fmt.Sprint(len(want))) || !strings.Contains(e.Message, FeatureStatusParts) {
		t.Fatalf("old client's error %+v", e)
	}
	h.v = map[string]int{"answer": 42}
	c.Write(AppendFrame(nil, MsgStatus, []byte(`{"request_id":8}`)))
	typ, body, err = r.Next()
	if err != nil || typ != MsgStatusReply || !strings.Contains(string(body), `"request_id":8`) || !strings.Contains(string(body), `"answer":42`) {
		t.Fatalf("small status to the old client: %v %q %v", typ, body, err)
	}
}

// TestStatusPartsBounded: a client takes at most its bound
// (MaxStatusBytes) of one status; beyond, the request ends with
// ErrFrameTooLarge, and nothing of it is kept.
func TestStatusPartsBounded(t *testing.T) {
	sp := &statusParts{max: 10, m: map[uint64][]byte{}}
	if _, done, err := sp.add(StatusPart{RequestID: 1, Data: []byte(`{"a":`)}); done || err != nil {
		t.Fatalf("first part: done %v, %v", done, err)
	}
	_, done, err := sp.add(StatusPart{RequestID: 1, Data: []byte(`123456`)})
	if !done || !errors.Is(err, ErrFrameTooLarge) || len(sp.m) != 0 {
		t.Fatalf("beyond the bound: done %v, %v, %d kept", done, err, len(sp.m))
	}
	whole, done, err := sp.add(StatusPart{RequestID: 2, Last: true, Data: []byte(`{}`)})
	if !done || err != nil || string(whole) != "{}" {
		t.Fatalf("one part: %q %v %v", whole, done, err)
	}
}

// FuzzStatusPart feeds arbitrary bodies to ParseStatusPart: no panic, an
// error wraps ErrBadFrame, and what parses encodes back to the same frame.
func FuzzStatusPart(f *testing.F) {
	f.Add(AppendStatusPart(nil, &StatusPart{RequestID: 3, Data: []byte(`{"sessions":[`)})[headerLen:])
	f.Add(AppendStatusPart(nil, &StatusPart{RequestID: 1 << 60, Last: true, Data: []byte(`]}`)})[headerLen:])
	f.Add(AppendStatusPart(nil, &StatusPart{Last: true})[headerLen:])
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 2, 'x'})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseStatusPart(body)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v does not wrap ErrBadFrame", err)
			}
			return
		}
		if got, want := AppendStatusPart(nil, &p), AppendFrame(nil, MsgStatusPart, body); !bytes.Equal(got, want) {
			t.Fatalf("re-encoded %x, want %x", got, want)
		}
	})
}

// orderHandler records the starts and stops it is asked for, in order, and
// stops the sessions it knows.
type orderHandler struct {
	testHandler
	log []string
}

func (h *orderHandler) StartMonitor(ctx context.Context, p *Peer, req *StartMonitor) (*SessionStatus, error) {
	h.mu.Lock()
	h.log = append(h.log, "start "+req.Session)
	h.mu.Unlock()
	return h.testHandler.StartMonitor(ctx, p, req)
}

func (h *orderHandler) StopMonitor(ctx context.Context, p *Peer, req *StopMonitor) (*SessionStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log = append(h.log, "stop "+req.Session)
	return &SessionStatus{Session: req.Session, State: SessionStopped}, nil
}

// TestStopDuringReassert: a session stopped while a failover re-asserts
// the sessions it listed is not started again after its stop (a stray
// start the server must refuse and audit).
func TestStopDuringReassert(t *testing.T) {
	h := &orderHandler{}
	_, addr := startServer(t, h, ServerConfig{Name: "a"})
	px := newBreakProxy(t, addr)
	cl, err := Dial(context.Background(), ClientConfig{Servers: []string{px.addr}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	st, err := cl.StartMonitor(context.Background(), StartMonitor{Agent: "1001", Endpoints: []string{"10.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	cl.mu.Lock()
	cl.afterSnapshot = func() {
		_, err := cl.StopMonitor(context.Background(), st.Session)
		stopped <- err
	}
	cl.mu.Unlock()
	px.breakAll()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop during the re-assertion: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no failover within 5 s")
	}
	// Anything the re-assertion sends goes on the connection after the
	// stop; a status request behind it makes sure it has arrived.
	if _, err := cl.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if want := []string{"start ", "stop " + st.Session}; !slices.Equal(h.log, want) {
		t.Fatalf("server saw %q, want %q", h.log, want)
	}
}

// breakProxy carries connections to a backend until breakAll closes the
// ones open; later connections are carried again.
type breakProxy struct {
	addr  string
	mu    sync.Mutex
	conns []net.Conn
}

func newBreakProxy(t *testing.T, backend string) *breakProxy {
	t.Helper()
	p := &breakProxy{}
	p.addr = serveLoopback(t, func(c net.Conn) {
		b, err := net.Dial("tcp", backend)
		if err != nil {
			c.Close()
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, b)
		p.mu.Unlock()
		go func() { io.Copy(b, c); b.Close() }()
		io.Copy(c, b)
		c.Close()
	})
	t.Cleanup(p.breakAll) // before serveLoopback's wait: cleanups run last first
	return p
}

func (p *breakProxy) breakAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
