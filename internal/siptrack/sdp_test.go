package siptrack

import (
	"net/netip"
	"reflect"
	"sync"
	"testing"
	"time"
)

// TestParseSDP: addresses (session and media level, IPv6), RTCP (port+1,
// a=rtcp, a=rtcp-mux), payload type names (rtpmap, static, unknown
// dynamic), direction (media over session level), SDES crypto lines,
// profiles and T.38.
func TestParseSDP(t *testing.T) {
	tests := []struct {
		name string
		sdp  string
		want []Media
	}{
		{"session-level address, static types, RTCP port+1",
			"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 18 13 96\r\n",
			[]Media{{Addr: ap("10.0.0.1:4000"), RTCP: ap("10.0.0.1:4001"), Kind: "audio", Profile: "RTP/AVP", Direction: "sendrecv",
				PayloadTypes: map[uint8]string{0: "PCMU/8000", 18: "G729/8000", 13: "CN/8000", 96: ""}}}},
		{"media-level address and direction over the session's, a=rtcp",
			"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 8\r\nc=IN IP4 10.0.0.9\r\na=rtcp:4011 IN IP4 10.0.0.8\r\na=recvonly\r\nm=video 5000 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n",
			[]Media{
				{Addr: ap("10.0.0.9:4000"), RTCP: ap("10.0.0.8:4011"), Kind: "audio", Profile: "RTP/AVP", Direction: "recvonly", PayloadTypes: map[uint8]string{8: "PCMA/8000"}},
				{Addr: ap("10.0.0.1:5000"), RTCP: ap("10.0.0.1:5001"), Kind: "video", Profile: "RTP/AVP", Direction: "sendonly", PayloadTypes: map[uint8]string{97: "H264/90000"}},
			}},
		{"SDES-SRTP over IPv6 with rtcp-mux",
			"v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\nm=audio 6000 RTP/SAVP 9 101\r\na=rtpmap:9 G722/8000\r\na=rtpmap:101 telephone-event/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj\r\na=rtcp-mux\r\n",
			[]Media{{Addr: ap("[2001:db8::1]:6000"), RTCP: ap("[2001:db8::1]:6000"), Kind: "audio", Profile: "RTP/SAVP", Direction: "sendrecv",
				PayloadTypes: map[uint8]string{9: "G722/8000", 101: "telephone-event/8000"},
				Crypto:       []string{"1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32", "2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj"}}}},
		{"T.38 fax after audio",
			"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 8\r\nm=image 4002 udptl t38\r\na=T38FaxVersion:0\r\n",
			[]Media{
				{Addr: ap("10.0.0.1:0"), RTCP: ap("10.0.0.1:0"), Kind: "audio", Profile: "RTP/AVP", Direction: "sendrecv", PayloadTypes: map[uint8]string{8: "PCMA/8000"}},
				{Addr: ap("10.0.0.1:4002"), RTCP: ap("10.0.0.1:4003"), Kind: "image", Profile: "udptl", Direction: "sendrecv"},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSDP([]byte(tc.sdp))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("media\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestMultipartBody: the SDP part of a multipart body (SIP-I/SIP-T trunks
// send SDP with ISUP) is read.
func TestMultipartBody(t *testing.T) {
	body := "--b1\r\nContent-Type: application/isup;version=itu-t92+\r\n\r\n\x01\x02\x03\r\n--b1\r\nContent-Type: application/sdp\r\n\r\n" +
		sdpOf("192.0.2.50", 30000, "8") + "\r\n--b1--\r\n"
	msg := sipMsg("INVITE sip:1001@10.10.0.11 SIP/2.0", []string{
		"Via: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKm", "From: <sip:5550100@192.0.2.50>;tag=g", "To: <sip:1001@10.10.0.11>",
		"Call-ID: mp-1", "CSeq: 1 INVITE", `Content-Type: multipart/mixed;boundary="b1"`,
	}, body)
	tr := New(Config{})
	tr.Packet(t0, 0, gateway, phone1001, false, msg)
	got := tr.MediaOf("1001")
	if len(got) != 1 || len(got[0].Remote) != 1 || got[0].Remote[0].Addr != ap("192.0.2.50:30000") {
		t.Fatalf("MediaOf = %+v, want the gateway's media from the SDP part", got)
	}
}

// TestIsSIPPort: the configured ports and only them.
func TestIsSIPPort(t *testing.T) {
	def, custom := New(Config{}), New(Config{Ports: []uint16{5060, 5080, 65535}})
	for _, tc := range []struct {
		tr   *Tracker
		port uint16
		want bool
	}{{def, 5060, true}, {def, 5061, false}, {def, 0, false}, {custom, 5080, true}, {custom, 65535, true}, {custom, 5081, false}} {
		if got := tc.tr.IsSIPPort(tc.port); got != tc.want {
			t.Errorf("IsSIPPort(%d) = %v, want %v", tc.port, got, tc.want)
		}
	}
	if n := testing.AllocsPerRun(100, func() { def.IsSIPPort(5060) }); n != 0 {
		t.Errorf("IsSIPPort allocates %v times", n)
	}
}

// TestSnapshotImmutable: a snapshot kept by a caller does not change when
// the tracker learns more.
func TestSnapshotImmutable(t *testing.T) {
	d := dialog{callID: "imm", from: "1001", to: "1002", fromTag: "a", toTag: "b", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
	f := newFeeder(t, Config{})
	f.udp(phone1001, phone1002, d.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000, "8")))
	before := f.tr.Snapshot()
	again := f.tr.Snapshot()
	if before != again {
		t.Error("Snapshot rebuilt without a change")
	}
	f.udp(phone1002, phone1001, d.response(200, "OK", "INVITE", 1, sdpOf("10.10.0.12", 40100, "8")))
	f.udp(phone1001, phone1002, d.request("INVITE", 2, true, sdpOf("10.10.0.11", 40010, "8")))
	c := before.Calls[0]
	if c.State != StateRinging || len(c.Legs) != 1 || c.Legs[0].Media[0].Addr != ap("10.10.0.11:40000") {
		t.Errorf("kept snapshot changed: %+v", c)
	}
	if now := f.call("imm"); now.State != StateTalking || now.Legs[0].Media[0].Addr != ap("10.10.0.11:40010") {
		t.Errorf("new snapshot: %+v", now)
	}
}

// TestConcurrentReaders: Snapshot, MediaOf and Stats run while Packet and
// Expire do (run with -race); OnChange may read the tracker.
func TestConcurrentReaders(t *testing.T) {
	var tr *Tracker
	seen := 0
	tr = New(Config{MaxCalls: 50, OnChange: func() { seen += len(tr.MediaOf("1001")) }})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := tr.Snapshot()
				for _, c := range s.Calls {
					_ = len(c.Legs)
				}
				tr.MediaOf("1001")
				tr.Stats()
			}
		})
	}
	ts := t0
	for i := range 300 {
		d := dialog{callID: "cc" + string(rune('a'+i%26)) + string(rune('a'+i/26)), from: "1001", to: "1002", fromTag: "a", toTag: "b", fromHost: "10.10.0.11", toHost: "10.10.0.12"}
		ts = ts.Add(time.Second)
		tr.Packet(ts, 0, phone1001, phone1002, false, d.request("INVITE", 1, false, sdpOf("10.10.0.11", 40000+2*(i%1000), "8")))
		tr.Packet(ts, 0, phone1002, phone1001, false, d.response(200, "OK", "INVITE", 1, sdpOf("10.10.0.12", 40100, "8")))
		tr.Packet(ts, 0, phone1001, phone1002, false, d.request("BYE", 2, true, ""))
		tr.Expire(ts)
	}
	close(stop)
	wg.Wait()
	if seen == 0 {
		t.Error("OnChange never saw a call")
	}
	if st := tr.Stats(); st.Messages != 900 || st.Calls > 50 {
		t.Errorf("stats %+v", st)
	}
}
