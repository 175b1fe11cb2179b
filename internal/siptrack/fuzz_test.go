package siptrack

import (
	"bytes"
	"net/netip"
	"testing"
	"time"
)

// FuzzPacket feeds arbitrary bytes as a UDP datagram and, split in two, as
// TCP segments of one flow (before and after a complete INVITE), then
// checks the tracker's invariants: no panic, bounded tables and buffers,
// and a consistent snapshot.
func FuzzPacket(f *testing.F) {
	a, b := callMessages("seed")
	f.Add(a[0], uint8(0))
	f.Add(bytes.Join(b, nil), uint8(100))
	f.Add(register("seed", 1, "1001", "Contact: <sip:1001@10.10.0.11>;expires=60"), uint8(30))
	f.Add(registerReply("seed", 1, 200, "1001", "Contact: *"), uint8(5))
	f.Add([]byte("\r\n\r\n"), uint8(1))
	f.Add(sipMsg("INVITE sip:1002@10.10.0.12 SIP/2.0", []string{"i: x", "f: <sip:1@h>;tag=a", "t: <sip:2@h>", "CSeq: 1 INVITE", "c: multipart/mixed;boundary=b"},
		"--b\r\nContent-Type: application/sdp\r\n\r\n"+sdpOf("10.0.0.1", 4000, "0")+"\r\n--b--\r\n"), uint8(50))
	src, dst := netip.MustParseAddrPort("10.0.0.1:5060"), netip.MustParseAddrPort("10.0.0.2:5060")
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		tr := New(Config{MaxCalls: 4, MaxRegistrations: 4, MaxTCPFlows: 2, TCPBufferLimit: 4096})
		tr.Packet(t0, 7, src, dst, false, data)
		cut := min(int(split), len(data))
		tr.Packet(t0, 0, src, dst, true, data[:cut])
		tr.Packet(t0, 0, src, dst, true, data[cut:])
		tr.Packet(t0, 0, src, dst, true, a[0])
		tr.TCPSegment(t0, 0, dst, src, 1, data)
		tr.TCPSegment(t0, 0, dst, src, 1+uint32(cut), data[cut:])
		tr.Expire(t0.Add(time.Hour))
		st := tr.Stats()
		s := tr.Snapshot()
		if st.Calls > 4 || st.Registrations > 4 || st.TCPFlows > 2 || len(s.Calls) != st.Calls || len(s.Registrations) != st.Registrations {
			t.Fatalf("stats %+v, snapshot %d calls %d registrations", st, len(s.Calls), len(s.Registrations))
		}
		for _, fl := range tr.flows {
			if len(fl.buf) > 4096 {
				t.Fatalf("flow buffer %d bytes over its bound", len(fl.buf))
			}
		}
		for _, c := range s.Calls {
			for _, l := range c.Legs {
				if len(l.Media) > maxMedia {
					t.Fatalf("%d media in a leg", len(l.Media))
				}
			}
			tr.MediaOf(c.From)
		}
	})
}

// BenchmarkPacket measures reading an INVITE with SDP over UDP: the SIP
// parse, the SDP parse and the update of the call's leg (after the first,
// each is a retransmission of the same INVITE).
func BenchmarkPacket(b *testing.B) {
	d := dialog{callID: "bench", from: "1001", to: "5550100", fromTag: "a", fromHost: "10.10.0.11", toHost: "192.0.2.50"}
	msg := d.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000, "8 0 18 101", "rtpmap:8 PCMA/8000", "rtpmap:0 PCMU/8000", "rtpmap:18 G729/8000", "rtpmap:101 telephone-event/8000", "fmtp:101 0-15", "ptime:20", "sendrecv"))
	tr := New(Config{})
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		tr.Packet(t0, 0, phone1001, gateway, false, msg)
	}
	if tr.Stats().Messages == 0 {
		b.Fatal("no message read")
	}
}
