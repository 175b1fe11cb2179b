package siptrack

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// t0 is the capture time tests start from.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

var (
	phone1001 = netip.MustParseAddrPort("10.10.0.11:5060")
	phone1002 = netip.MustParseAddrPort("10.10.0.12:5060")
	pbx       = netip.MustParseAddrPort("10.20.0.1:5060")
	gateway   = netip.MustParseAddrPort("192.0.2.50:5060")
)

// sipMsg builds a SIP message: the start line, the headers, and the body
// with its Content-Length (added unless a header already gives one).
func sipMsg(start string, headers []string, body string) []byte {
	var b strings.Builder
	b.WriteString(start + "\r\n")
	hasLen := false
	for _, h := range headers {
		b.WriteString(h + "\r\n")
		l := strings.ToLower(h)
		if strings.HasPrefix(l, "content-length:") || strings.HasPrefix(l, "l:") {
			hasLen = true
		}
	}
	if !hasLen {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.WriteString(body)
	return []byte(b.String())
}

// dialog describes one call's identities for building its messages.
type dialog struct {
	callID           string
	from, to         string // user parts
	fromTag, toTag   string
	fromHost, toHost string
}

func (d dialog) hdrs(method string, cseq int, toTag bool, extra ...string) []string {
	to := fmt.Sprintf("To: <sip:%s@%s>", d.to, d.toHost)
	if toTag && d.toTag != "" {
		to += ";tag=" + d.toTag
	}
	h := []string{
		"Via: SIP/2.0/UDP " + d.fromHost + ";branch=z9hG4bK" + d.callID + method + fmt.Sprint(cseq),
		fmt.Sprintf("From: <sip:%s@%s>;tag=%s", d.from, d.fromHost, d.fromTag),
		to,
		"Call-ID: " + d.callID,
		fmt.Sprintf("CSeq: %d %s", cseq, method),
		"Max-Forwards: 70",
	}
	return append(h, extra...)
}

// reversed returns the dialog as seen by requests from the callee.
func (d dialog) reversed() dialog {
	return dialog{callID: d.callID, from: d.to, to: d.from, fromTag: d.toTag, toTag: d.fromTag, fromHost: d.toHost, toHost: d.fromHost}
}

func (d dialog) request(method string, cseq int, inDialog bool, sdp string, extra ...string) []byte {
	h := d.hdrs(method, cseq, inDialog, extra...)
	h = append(h, fmt.Sprintf("Contact: <sip:%s@%s>", d.from, d.fromHost))
	if sdp != "" {
		h = append(h, "Content-Type: application/sdp")
	}
	return sipMsg(fmt.Sprintf("%s sip:%s@%s SIP/2.0", method, d.to, d.toHost), h, sdp)
}

func (d dialog) response(code int, reason, method string, cseq int, sdp string, extra ...string) []byte {
	h := d.hdrs(method, cseq, code > 100, extra...)
	if sdp != "" {
		h = append(h, "Content-Type: application/sdp")
	}
	return sipMsg(fmt.Sprintf("SIP/2.0 %d %s", code, reason), h, sdp)
}

// sdpOf builds an SDP with one audio stream at addr:port offering the
// payload types pts (rtpmap lines for those in rtpmaps) plus attrs.
func sdpOf(addr string, port int, pts string, attrs ...string) string {
	var b strings.Builder
	b.WriteString("v=0\r\n")
	fmt.Fprintf(&b, "o=- 1 1 IN IP4 %s\r\n", addr)
	b.WriteString("s=-\r\n")
	fmt.Fprintf(&b, "c=IN IP4 %s\r\n", addr)
	b.WriteString("t=0 0\r\n")
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %s\r\n", port, pts)
	for _, a := range attrs {
		b.WriteString("a=" + a + "\r\n")
	}
	return b.String()
}

// feeder sends messages to a tracker with an advancing capture time.
type feeder struct {
	t  *testing.T
	tr *Tracker
	ts time.Time
}

func newFeeder(t *testing.T, cfg Config) *feeder {
	return &feeder{t: t, tr: New(cfg), ts: t0}
}

func (f *feeder) udp(src, dst netip.AddrPort, msg []byte) {
	f.ts = f.ts.Add(10 * time.Millisecond)
	f.tr.Packet(f.ts, 0, src, dst, false, msg)
}

func (f *feeder) call(id string) Call {
	f.t.Helper()
	for _, c := range f.tr.Snapshot().Calls {
		if c.CallID == id {
			return c
		}
	}
	f.t.Fatalf("call %q not in snapshot", id)
	return Call{}
}

// addrs lists the media addresses of a media list, for comparisons.
func addrs(ms []Media) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Addr.String())
	}
	return out
}
