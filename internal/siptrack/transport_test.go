package siptrack

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// callMessages is a complete call over one TCP connection: the INVITE
// from 1001, the answer from 1002, then the ACK.
func callMessages(id string) (fromA [][]byte, fromB [][]byte) {
	d := dialog{callID: id, from: "1001", to: "1002", fromTag: "a", toTag: "b", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
	fromA = [][]byte{d.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000, "8 101", "rtpmap:101 telephone-event/8000")), d.request("ACK", 1, true, "")}
	fromB = [][]byte{d.response(100, "Trying", "INVITE", 1, ""), d.response(200, "OK", "INVITE", 1, sdpOf("10.10.0.12", 40100, "8"))}
	return fromA, fromB
}

func wantTalking(t *testing.T, tr *Tracker, id string) {
	t.Helper()
	got := tr.MediaOf("1001")
	if len(got) != 1 || got[0].CallID != id || got[0].State != StateTalking ||
		!slices.Equal(addrs(got[0].Local), []string{"10.10.0.11:40000"}) ||
		!slices.Equal(addrs(got[0].Remote), []string{"10.10.0.12:40100"}) {
		t.Fatalf("MediaOf(1001) = %+v, want call %s talking between 10.10.0.11:40000 and 10.10.0.12:40100", got, id)
	}
}

// TestTCPReassembly: messages split across segments (at every possible
// point), several messages in one segment, and keep-alives between them
// are read as over UDP.
func TestTCPReassembly(t *testing.T) {
	a, b := callMessages("tcp-1")
	invite := a[0]
	tests := []struct {
		name     string
		segments func() [][]byte // from 1001 to 1002; the answers come whole
	}{
		{"whole messages", func() [][]byte { return [][]byte{invite} }},
		{"three segments across headers and body", func() [][]byte {
			return [][]byte{invite[:20], invite[20 : len(invite)-30], invite[len(invite)-30:]}
		}},
		{"one byte at a time", func() [][]byte {
			var s [][]byte
			for i := range invite {
				s = append(s, invite[i:i+1])
			}
			return s
		}},
		{"CRLF keep-alive before the message", func() [][]byte {
			return [][]byte{[]byte("\r\n\r\n"), invite}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(Config{})
			ts := t0
			for _, s := range tc.segments() {
				ts = ts.Add(time.Millisecond)
				tr.Packet(ts, 0, phone1001, phone1002, true, s)
			}
			if n := len(tr.Snapshot().Calls); n != 1 {
				t.Fatalf("%d calls after the INVITE, want 1", n)
			}
			tr.Packet(ts, 0, phone1002, phone1001, true, bytes.Join(b, nil)) // two messages in one segment
			tr.Packet(ts, 0, phone1001, phone1002, true, a[1])
			wantTalking(t, tr, "tcp-1")
			if st := tr.Stats(); st.Messages != 4 || st.Malformed != 0 {
				t.Errorf("stats = %+v, want 4 messages, none malformed", st)
			}
		})
	}

	// Every split point of two messages sent back to back.
	both := bytes.Join(b, nil)
	for i := 1; i < len(both); i++ {
		tr := New(Config{})
		tr.Packet(t0, 0, phone1001, phone1002, true, invite)
		tr.Packet(t0, 0, phone1002, phone1001, true, both[:i])
		tr.Packet(t0, 0, phone1002, phone1001, true, both[i:])
		if st := tr.Stats(); st.Messages != 3 || st.Malformed != 0 {
			t.Fatalf("split at %d: stats = %+v, want 3 messages", i, st)
		}
		if c := tr.Snapshot().Calls[0]; c.State != StateTalking {
			t.Fatalf("split at %d: state %s", i, c.State)
		}
	}
}

// TestTCPSegment: with sequence numbers, retransmitted and overlapping
// segments are skipped, a gap resets the flow and reading resumes at the
// next message.
func TestTCPSegment(t *testing.T) {
	a, b := callMessages("seq-1")
	invite := a[0]
	const isn = 4294967000 // wraps during the test
	tr := New(Config{})
	seq := uint32(isn)
	tr.TCPSegment(t0, 0, phone1001, phone1002, seq, invite[:100])
	tr.TCPSegment(t0, 0, phone1001, phone1002, seq, invite[:100])        // retransmission
	tr.TCPSegment(t0, 0, phone1001, phone1002, seq+50, invite[50:200])   // overlap
	tr.TCPSegment(t0, 0, phone1001, phone1002, seq+200, invite[200:])    // rest
	tr.TCPSegment(t0, 0, phone1001, phone1002, seq+100, invite[100:300]) // old again
	seq += uint32(len(invite))
	st := tr.Stats()
	if st.Messages != 1 || st.TCPRetransmits != 3 || st.Malformed != 0 {
		t.Fatalf("stats = %+v, want 1 message, 3 retransmissions", st)
	}
	// A lost segment in the middle of the next message: that message is
	// lost, the one after it is read.
	bseq := uint32(7)
	tr.TCPSegment(t0, 0, phone1002, phone1001, bseq, b[0][:40])
	tr.TCPSegment(t0, 0, phone1002, phone1001, bseq+60, b[0][60:]) // 40..60 missing
	bseq += uint32(len(b[0]))
	tr.TCPSegment(t0, 0, phone1002, phone1001, bseq, b[1])
	tr.TCPSegment(t0, 0, phone1001, phone1002, seq, a[1])
	if st := tr.Stats(); st.TCPGaps != 1 {
		t.Errorf("gaps = %d, want 1", st.TCPGaps)
	}
	wantTalking(t, tr, "seq-1")
}

// TestCompactHeaders: the compact forms of Call-ID, From, To,
// Content-Length, Contact, Via and Content-Type are understood.
func TestCompactHeaders(t *testing.T) {
	body := sdpOf("10.10.0.11", 40000, "0 8")
	invite := sipMsg("INVITE sip:1002@10.10.0.12 SIP/2.0", []string{
		"v: SIP/2.0/UDP 10.10.0.11:5060;branch=z9hG4bKc1",
		"f: <sip:1001@10.10.0.11>;tag=a",
		"t: <sip:1002@10.10.0.12>",
		"i: compact-1",
		"CSeq: 1 INVITE",
		"m: <sip:1001@10.10.0.11>",
		"c: application/sdp",
		fmt.Sprintf("l: %d", len(body)),
	}, body)
	answer := sdpOf("10.10.0.12", 40100, "0")
	ok := sipMsg("SIP/2.0 200 OK", []string{
		"v: SIP/2.0/UDP 10.10.0.11:5060;branch=z9hG4bKc1",
		"f: <sip:1001@10.10.0.11>;tag=a",
		"t: <sip:1002@10.10.0.12>;tag=b",
		"i: compact-1",
		"CSeq: 1 INVITE",
		"c: application/sdp",
		fmt.Sprintf("l: %d", len(answer)),
	}, answer)
	for _, tcp := range []bool{false, true} {
		t.Run(fmt.Sprintf("tcp=%v", tcp), func(t *testing.T) {
			tr := New(Config{})
			tr.Packet(t0, 0, phone1001, phone1002, tcp, invite)
			tr.Packet(t0, 0, phone1002, phone1001, tcp, ok)
			got := tr.MediaOf("1001")
			if len(got) != 1 || got[0].CallID != "compact-1" ||
				!slices.Equal(addrs(got[0].Local), []string{"10.10.0.11:40000"}) ||
				!slices.Equal(addrs(got[0].Remote), []string{"10.10.0.12:40100"}) {
				t.Fatalf("MediaOf = %+v", got)
			}
		})
	}
}

// TestMalformed: unreadable input is counted and ignored, never a panic,
// and does not stop the messages that follow.
func TestMalformed(t *testing.T) {
	good := dialog{callID: "ok", from: "1001", to: "1002", fromTag: "a", fromHost: "10.10.0.11", toHost: "10.10.0.12"}.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000, "8"))
	tests := []struct {
		name         string
		payload      []byte
		tcp          bool
		malformed    uint64
		sdpMalformed uint64
		keepalives   uint64
		calls        int
	}{
		{"binary noise", []byte{0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00}, false, 1, 0, 0, 0},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), false, 1, 0, 0, 0},
		{"no Call-ID", sipMsg("INVITE sip:1002@10.10.0.12 SIP/2.0", []string{"From: <sip:1001@x>;tag=a", "To: <sip:1002@y>", "CSeq: 1 INVITE"}, ""), false, 1, 0, 0, 0},
		{"bad CSeq", sipMsg("INVITE sip:1002@10.10.0.12 SIP/2.0", []string{"From: <sip:1001@x>;tag=a", "To: <sip:1002@y>", "Call-ID: x", "CSeq: many INVITE"}, ""), false, 1, 0, 0, 0},
		{"body shorter than Content-Length", bytes.Clone(good[:len(good)-10]), false, 1, 0, 0, 0},
		{"unreadable SDP: the call is still learned", dialog{callID: "bad-sdp", from: "1001", to: "1002", fromTag: "a", fromHost: "h", toHost: "h"}.request("INVITE", 1, false, "this is not SDP\r\n"), false, 0, 1, 0, 1},
		{"bad multipart", sipMsg("INVITE sip:1002@10.10.0.12 SIP/2.0", []string{"From: <sip:1001@x>;tag=a", "To: <sip:1002@y>", "Call-ID: mp", "CSeq: 1 INVITE", "Content-Type: multipart/mixed"}, "--x\r\n"), false, 0, 1, 0, 1},
		{"keep-alive", []byte("\r\n\r\n"), false, 0, 0, 1, 0},
		{"garbage lines then a message over TCP", append([]byte("garbage\r\nmore garbage\r\n"), good...), true, 1, 0, 0, 1},
		{"bad headers then a message over TCP", append(sipMsg("INVITE sip:1002@x SIP/2.0", []string{"Via: nonsense", "CSeq: x"}, ""), good...), true, 1, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := New(Config{})
			if tc.tcp {
				// A flow whose start was seen, so that what follows is
				// judged, not skipped as a capture started mid-message.
				tr.Packet(t0, 0, phone1002, phone1001, true, good)
				tr = New(Config{})
				tr.flows[flowKey{0, phone1001, phone1002}] = &flow{}
			}
			tr.Packet(t0, 0, phone1001, phone1002, tc.tcp, tc.payload)
			st := tr.Stats()
			if st.Malformed != tc.malformed || st.SDPMalformed != tc.sdpMalformed || st.Keepalives != tc.keepalives {
				t.Errorf("stats = %+v, want %d malformed, %d bad SDP, %d keep-alives", st, tc.malformed, tc.sdpMalformed, tc.keepalives)
			}
			if n := len(tr.Snapshot().Calls); n != tc.calls {
				t.Errorf("%d calls, want %d", n, tc.calls)
			}
		})
	}
}

// TestLimits: calls, registrations, TCP flows and each TCP flow's buffer
// stay within their bounds, and what is refused or dropped is counted.
func TestLimits(t *testing.T) {
	t.Run("calls: ended ones dropped first, then new ones refused", func(t *testing.T) {
		f := newFeeder(t, Config{MaxCalls: 3})
		mk := func(id string) dialog {
			return dialog{callID: id, from: "1001", to: "1002", fromTag: "a", toTag: "b", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
		}
		f.udp(phone1001, phone1002, mk("c1").request("INVITE", 1, false, ""))
		f.udp(phone1001, phone1002, mk("c2").request("INVITE", 1, false, ""))
		f.udp(phone1001, phone1002, mk("c3").request("INVITE", 1, false, ""))
		f.udp(phone1002, phone1001, mk("c2").response(486, "Busy Here", "INVITE", 1, ""))
		f.udp(phone1001, phone1002, mk("c4").request("INVITE", 1, false, "")) // drops c2
		f.udp(phone1001, phone1002, mk("c5").request("INVITE", 1, false, "")) // refused
		var ids []string
		for _, c := range f.tr.Snapshot().Calls {
			ids = append(ids, c.CallID)
		}
		if !slices.Equal(ids, []string{"c1", "c3", "c4"}) {
			t.Errorf("calls %v, want [c1 c3 c4]", ids)
		}
		if st := f.tr.Stats(); st.CallsRefused != 1 || st.Calls != 3 {
			t.Errorf("stats %+v, want 1 refused, 3 calls", st)
		}
	})
	t.Run("registrations", func(t *testing.T) {
		f := newFeeder(t, Config{MaxRegistrations: 2})
		for i := range 3 {
			ext := fmt.Sprint(2000 + i)
			id := "reg" + ext
			f.udp(phone1001, pbx, register(id, 1, ext, fmt.Sprintf("Contact: <sip:%s@10.10.1.%d>", ext, i)))
			f.udp(pbx, phone1001, registerReply(id, 1, 200, ext))
		}
		if st := f.tr.Stats(); st.Registrations != 2 || st.RegistrationsRefused != 1 {
			t.Errorf("stats %+v, want 2 registrations, 1 refused", st)
		}
	})
	t.Run("pending REGISTER transactions", func(t *testing.T) {
		f := newFeeder(t, Config{MaxRegistrations: 2})
		for i := range 5 {
			f.udp(phone1001, pbx, register(fmt.Sprint("p", i), 1, "1001", "Contact: <sip:1001@10.10.0.11>"))
		}
		if n, st := len(f.tr.pending), f.tr.Stats(); n != 2 || st.RegistrationsRefused != 3 {
			t.Errorf("%d pending, stats %+v; want 2 pending, 3 refused", n, st)
		}
		f.tr.Expire(f.ts.Add(pendingRegisterLife))
		if n := len(f.tr.pending); n != 0 {
			t.Errorf("%d pending after 32 s, want 0", n)
		}
	})
	t.Run("TCP flows: least recently used dropped", func(t *testing.T) {
		tr := New(Config{MaxTCPFlows: 2})
		half := []byte("INVITE sip:1002@10.10.0.12 SIP/2.0\r\nVia: SIP/2.0/TCP 10.10.0.11\r\n")
		for i := range 3 {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 10, 0, byte(i)}), 5060)
			tr.Packet(t0.Add(time.Duration(i)*time.Second), 0, src, pbx, true, half)
		}
		st := tr.Stats()
		if st.TCPFlows != 2 || st.TCPFlowsEvicted != 1 {
			t.Errorf("stats %+v, want 2 flows, 1 evicted", st)
		}
		if _, ok := tr.flows[flowKey{0, netip.MustParseAddrPort("10.10.0.0:5060"), pbx}]; ok {
			t.Error("the oldest flow was kept")
		}
		tr.Expire(t0.Add(2*time.Second + DefaultTCPIdle))
		if st := tr.Stats(); st.TCPFlows != 0 {
			t.Errorf("%d flows after TCPIdle, want 0", st.TCPFlows)
		}
	})
	t.Run("TCP buffer: a message over the bound resets the flow", func(t *testing.T) {
		tr := New(Config{TCPBufferLimit: 1024})
		head := "INVITE sip:1002@10.10.0.12 SIP/2.0\r\nVia: SIP/2.0/TCP 10.10.0.11\r\nX-Filler: "
		for range 10 {
			tr.Packet(t0, 0, phone1001, phone1002, true, []byte(head))
			head = strings.Repeat("x", 200)
		}
		st := tr.Stats()
		if st.TCPDropped == 0 {
			t.Fatalf("stats %+v, want a dropped flow", st)
		}
		if n := len(tr.flows[flowKey{0, phone1001, phone1002}].buf); n > 1024 {
			t.Fatalf("buffer holds %d bytes, bound 1024", n)
		}
		// The next message on the flow is read.
		a, _ := callMessages("after-reset")
		tr.Packet(t0, 0, phone1001, phone1002, true, []byte("\r\n"))
		tr.Packet(t0, 0, phone1001, phone1002, true, a[0])
		if n := len(tr.Snapshot().Calls); n != 1 {
			t.Errorf("%d calls after the reset, want 1", n)
		}
	})
	t.Run("TCP: a declared body over the bound is skipped", func(t *testing.T) {
		tr := New(Config{TCPBufferLimit: 1024})
		big := sipMsg("MESSAGE sip:1002@10.10.0.12 SIP/2.0", []string{"From: <sip:1001@x>;tag=a", "To: <sip:1002@y>", "Call-ID: big", "CSeq: 1 MESSAGE", "Content-Type: text/plain"}, strings.Repeat("y", 4000))
		a, _ := callMessages("after-big")
		stream := append(big, a[0]...)
		for i := 0; i < len(stream); i += 500 {
			tr.Packet(t0, 0, phone1001, phone1002, true, stream[i:min(i+500, len(stream))])
		}
		st := tr.Stats()
		if st.TCPDropped != 1 || st.Messages != 1 || st.Malformed != 0 {
			t.Errorf("stats %+v, want 1 dropped, the INVITE read", st)
		}
	})
	t.Run("legs per call", func(t *testing.T) {
		f := newFeeder(t, Config{})
		d := dialog{callID: "forks", from: "1001", to: "2000", fromTag: "a", fromHost: "10.10.0.11", toHost: "10.20.0.1"}
		f.udp(phone1001, pbx, d.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000, "8")))
		for i := range 20 {
			e := d
			e.toTag = fmt.Sprint("fork", i)
			f.udp(pbx, phone1001, e.response(183, "Session Progress", "INVITE", 1, sdpOf("10.30.0.1", 50000+2*i, "8")))
		}
		if n := len(f.call("forks").Legs); n != maxLegs {
			t.Errorf("%d legs, want the bound %d", n, maxLegs)
		}
	})
}

// TestTimeouts: a call that rings too long or goes silent too long is
// ended by Expire and counted.
func TestTimeouts(t *testing.T) {
	d := dialog{callID: "to", from: "1001", to: "1002", fromTag: "a", toTag: "b", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
	t.Run("ringing", func(t *testing.T) {
		f := newFeeder(t, Config{RingTimeout: time.Minute})
		f.udp(phone1001, phone1002, d.request("INVITE", 1, false, ""))
		f.tr.Expire(f.ts.Add(59 * time.Second))
		if s := f.call("to").State; s != StateRinging {
			t.Fatalf("state %s before the ring timeout", s)
		}
		f.tr.Expire(f.ts.Add(time.Minute))
		if s := f.call("to").State; s != StateEnded || f.tr.Stats().CallsTimedOut != 1 {
			t.Fatalf("state %s, stats %+v after the ring timeout", s, f.tr.Stats())
		}
	})
	t.Run("idle", func(t *testing.T) {
		f := newFeeder(t, Config{CallIdle: time.Hour})
		f.udp(phone1001, phone1002, d.request("INVITE", 1, false, ""))
		f.udp(phone1002, phone1001, d.response(200, "OK", "INVITE", 1, ""))
		f.tr.Expire(f.ts.Add(DefaultRingTimeout))
		if s := f.call("to").State; s != StateTalking {
			t.Fatalf("answered call %s at the ring timeout", s)
		}
		f.tr.Expire(f.ts.Add(time.Hour))
		if s := f.call("to").State; s != StateEnded {
			t.Fatalf("state %s after CallIdle", s)
		}
	})
}
