package gen

import (
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pion/sdp/v3"
)

// SIPPort is the SIP port of every user agent and of the PBX in the
// scenarios, over UDP and TCP.
const SIPPort = 5060

// PBXAddr is the SIP address of the scenarios' PBX (call manager),
// cucm1.example.com in the scenarios' DNS look-ups. Every call is
// signalled between an agent's phone (or a mobile agent's voice gateway)
// and the PBX; the media flows directly between the phone and the far
// side's gateway, as the SDP says.
var PBXAddr = netip.MustParseAddrPort("10.0.0.10:5060")

var pbxEndpoint = Endpoint{MAC: [6]byte{2, 0, 10, 0, 0, 10}, Addr: PBXAddr}

// SIPInfo is the signalling truth of a capture with SIP: what a SIP
// tracker reading the capture must learn.
type SIPInfo struct {
	Registrations []SIPRegistration `json:"registrations"`
	Calls         []SIPCall         `json:"calls"`
}

// SIPRegistration is one REGISTER answered with 200 OK.
type SIPRegistration struct {
	// AtMS is the REGISTER's capture time in milliseconds from the epoch
	// (negative before it).
	AtMS      int64  `json:"at_ms"`
	Agent     string `json:"agent"`
	Extension string `json:"extension"`
	// Contact is the registered contact URI, e.g. sip:1001@10.10.0.1:5060.
	Contact   string  `json:"contact"`
	Transport string  `json:"transport"` // "udp" or "tcp"
	VLAN      *uint16 `json:"vlan"`
	Expires   int     `json:"expires"`
}

// SIPCall is one SIP dialog between an agent's user agent and the PBX.
type SIPCall struct {
	CallID string `json:"call_id"`
	// Agent is the agent whose phone (or mobile gateway) is a party.
	Agent string `json:"agent"`
	// Direction is "inbound" (the PBX sent the INVITE to the agent) or
	// "outbound" (the agent's phone sent it).
	Direction string `json:"direction"`
	// Caller and Callee are the user parts of the From and To URIs of the
	// INVITE: extensions or numbers.
	Caller string `json:"caller"`
	Callee string `json:"callee"`
	// Mobile is true when the agent is reached through a voice gateway
	// shared with other agents.
	Mobile    bool   `json:"mobile,omitempty"`
	Transport string `json:"transport"` // "udp" or "tcp"
	// AgentSignalling and PBXSignalling are the two SIP addresses.
	AgentSignalling string  `json:"agent_signalling"`
	PBXSignalling   string  `json:"pbx_signalling"`
	VLAN            *uint16 `json:"vlan"`
	// InviteMS and ByeMS are the capture times of the INVITE and the BYE.
	InviteMS int64 `json:"invite_ms"`
	ByeMS    int64 `json:"bye_ms"`
	// Messages lists the dialog's messages in capture order: a request by
	// its method ("INVITE", "ACK"), a response by its code and the method
	// of its CSeq ("180 INVITE", "200 BYE").
	Messages []string `json:"messages"`
	// Media lists the SDP bodies in capture order.
	Media []SDPMedia `json:"media"`
	// ReferTo is the Refer-To URI of a transfer, if any.
	ReferTo string `json:"refer_to,omitempty"`
}

// SDPMedia is one SDP body's audio description.
type SDPMedia struct {
	AtMS int64 `json:"at_ms"`
	// Party is "agent" (the agent's side wrote the SDP) or "far".
	Party string `json:"party"`
	// Message carries the SDP: "INVITE" or "200 INVITE".
	Message string `json:"message"`
	// Addr is the media address and port (c= and m=).
	Addr  string `json:"addr"`
	Proto string `json:"proto"` // RTP/AVP or RTP/SAVP
	// PayloadTypes are the m= line's formats in order; Rtpmap maps each
	// to its encoding name and clock rate ("PCMU/8000").
	PayloadTypes []int             `json:"payload_types"`
	Rtpmap       map[string]string `json:"rtpmap"`
	Direction    string            `json:"direction"` // sendrecv, sendonly, recvonly, inactive
	// Crypto is the a=crypto attribute's value, for SRTP.
	Crypto string `json:"crypto,omitempty"`
}

// LegSRTP says how a leg's stream is encrypted.
type LegSRTP struct {
	Suite string `json:"suite"` // SRTPSuite
	// Key is the master key then salt in base64, as in a=crypto inline:.
	Key string `json:"key"`
}

// sipUA is a SIP user agent of an agent: a desk phone, a softphone, or the
// voice gateway a mobile agent is reached through.
type sipUA struct {
	agent string
	ext   string
	ep    Endpoint // IP with SIPPort
	vlan  uint16
	// tcpPort, when non-zero, signals over TCP from this client port to
	// the PBX's SIPPort.
	tcpPort uint16
	// mobile agents are reached through a gateway that does not register.
	mobile bool
}

func (u *sipUA) transport() string {
	if u.tcpPort != 0 {
		return "tcp"
	}
	return "udp"
}

func (u *sipUA) contact() string {
	c := fmt.Sprintf("sip:%s@%s", u.ext, u.ep.Addr)
	if u.tcpPort != 0 {
		c += ";transport=tcp"
	}
	return c
}

// sameUA reports whether two user agents are the same device.
func (u *sipUA) same(v *sipUA) bool {
	return u.agent == v.agent && u.ep == v.ep && u.vlan == v.vlan && u.tcpPort == v.tcpPort
}

// registration is a REGISTER to write.
type registration struct {
	at time.Duration
	ua sipUA
}

// dialogDef is a SIP dialog to write: the calls whose media it describes
// and what happens in it.
type dialogDef struct {
	ua      sipUA
	inbound bool
	far     string // the far party's user part
	// calls are indices in Config.Calls; the first gives the initial
	// media, re-INVITEs name others.
	calls []int
	// invite and bye are the INVITE and BYE times; zero means 400 ms
	// before the first call's start and 20 ms after the last call's end.
	invite, bye time.Duration
	byeByAgent  bool
	events      []dialogEvent

	callID string // set when written
}

// dialogEvent is a re-INVITE or a REFER within a dialog.
type dialogEvent struct {
	// at is when the media changes (a re-INVITE is sent 40 ms before) or
	// when the REFER is sent.
	at      time.Duration
	byAgent bool
	// call is the Config call whose addresses the re-INVITE's SDP gives.
	call int
	// agentDir is the direction in the agent's SDP after the re-INVITE.
	agentDir string
	// referTo, when set, makes the event a REFER to this user; replaces
	// makes it an attended transfer of that dialog.
	referTo  string
	replaces *dialogDef
}

// Directions of SDP media.
const (
	sendrecv = "sendrecv"
	sendonly = "sendonly"
	recvonly = "recvonly"
	inactive = "inactive"
)

func peerDir(d string) string {
	switch d {
	case sendonly:
		return recvonly
	case recvonly:
		return sendonly
	}
	return d
}

// sipMsg is one SIP message ready to frame.
type sipMsg struct {
	at     time.Duration
	fromUA bool
	ua     *sipUA
	text   []byte
	// parts splits the message over this many TCP segments; join sends it
	// in one segment with the next message in the same direction.
	parts int
	join  bool
}

// sipWriter turns registrations and dialogs into messages and the
// manifest's SIP truth. Its random draws come from a generator of its
// own, so adding signalling never changes the RTP.
type sipWriter struct {
	rng  *rand.Rand
	cfg  *Config
	msgs []sipMsg
	info SIPInfo
}

func (w *sipWriter) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[w.rng.IntN(16)]
	}
	return string(b)
}

func vlanPtr(v uint16) *uint16 {
	if v == 0 {
		return nil
	}
	return &v
}

func (w *sipWriter) via(u *sipUA, fromUA bool) string {
	host := PBXAddr.String()
	if fromUA {
		host = u.ep.Addr.String()
	}
	return fmt.Sprintf("SIP/2.0/%s %s;branch=z9hG4bK%s", strings.ToUpper(u.transport()), host, w.hex(10))
}

// register writes a REGISTER and its 200 OK.
func (w *sipWriter) register(r *registration) {
	u := &r.ua
	callID := w.hex(16) + "@" + u.ep.Addr.Addr().String()
	aor := fmt.Sprintf("<sip:%s@%s>", u.ext, PBXAddr.Addr())
	via, from := w.via(u, true), aor+";tag="+w.hex(8)
	req := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\n"+
		"CSeq: 1 REGISTER\r\nContact: <%s>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n",
		PBXAddr.Addr(), via, from, aor, callID, u.contact())
	resp := fmt.Sprintf("SIP/2.0 200 OK\r\nVia: %s\r\nFrom: %s\r\nTo: %s;tag=%s\r\nCall-ID: %s\r\nCSeq: 1 REGISTER\r\n"+
		"Contact: <%s>;expires=3600\r\nContent-Length: 0\r\n\r\n", via, from, aor, w.hex(8), callID, u.contact())
	w.msgs = append(w.msgs, sipMsg{at: r.at, fromUA: true, ua: u, text: []byte(req)},
		sipMsg{at: r.at + 8*time.Millisecond, ua: u, text: []byte(resp)})
	w.info.Registrations = append(w.info.Registrations, SIPRegistration{AtMS: r.at.Milliseconds(), Agent: u.agent,
		Extension: u.ext, Contact: u.contact(), Transport: u.transport(), VLAN: vlanPtr(u.vlan), Expires: 3600})
}

// dialogState holds what the messages of one dialog share.
type dialogState struct {
	w        *sipWriter
	d        *dialogDef
	call     *SIPCall
	uaTag    string
	pbxTag   string
	uaCSeq   int
	pbxCSeq  int
	sessID   uint64
	sessVer  uint64
	agentVer uint64
	agentURI string
	farURI   string
}

// request is a request's headers that its responses copy.
type request struct {
	method         string
	fromUA         bool
	via, from, to  string
	cseq           string
	callID, reqURI string
}

func (s *dialogState) newRequest(method string, fromUA bool, cseq int) request {
	u := &s.d.ua
	uaHdr := fmt.Sprintf("<%s>;tag=%s", s.agentURI, s.uaTag)
	farHdr := fmt.Sprintf("<%s>", s.farURI)
	if s.pbxTag != "" {
		farHdr += ";tag=" + s.pbxTag
	}
	if s.d.inbound { // the far party is the caller: From is the far URI in its requests
		farHdr = fmt.Sprintf("<%s>;tag=%s", s.farURI, s.pbxTag)
		uaHdr = fmt.Sprintf("<%s>", s.agentURI)
		if s.uaTag != "" {
			uaHdr += ";tag=" + s.uaTag
		}
	}
	r := request{method: method, fromUA: fromUA, via: s.w.via(u, fromUA), callID: s.call.CallID,
		cseq: fmt.Sprintf("%d %s", cseq, method)}
	if fromUA {
		r.from, r.to = uaHdr, farHdr
		r.reqURI = fmt.Sprintf("sip:%s@%s", s.d.far, PBXAddr)
	} else {
		r.from, r.to = farHdr, uaHdr
		r.reqURI = u.contact()
	}
	return r
}

func (s *dialogState) contact(fromUA bool) string {
	if fromUA {
		return "<" + s.d.ua.contact() + ">"
	}
	c := fmt.Sprintf("<sip:%s@%s", s.d.far, PBXAddr)
	if s.d.ua.tcpPort != 0 {
		c += ";transport=tcp"
	}
	return c + ">"
}

// send appends a request with body and extra headers at at.
func (s *dialogState) send(at time.Duration, r request, extra []string, ctype string, body []byte) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s SIP/2.0\r\nVia: %s\r\nMax-Forwards: 70\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n",
		r.method, r.reqURI, r.via, r.from, r.to, r.callID, r.cseq)
	if r.method == "INVITE" || r.method == "REFER" || r.method == "NOTIFY" {
		fmt.Fprintf(&b, "Contact: %s\r\n", s.contact(r.fromUA))
	}
	s.finish(&b, at, r.fromUA, r.method, extra, ctype, body)
}

// respond appends the response code to r at at.
func (s *dialogState) respond(at time.Duration, r request, code int, extra []string, ctype string, body []byte) {
	reason := map[int]string{100: "Trying", 180: "Ringing", 200: "OK", 202: "Accepted"}[code]
	to := r.to
	if code != 100 && !strings.Contains(to, ";tag=") {
		tag := s.pbxTag
		if !r.fromUA {
			tag = s.uaTag
		}
		to += ";tag=" + tag
	}
	var b strings.Builder
	fmt.Fprintf(&b, "SIP/2.0 %d %s\r\nVia: %s\r\nFrom: %s\r\nTo: %s\r\nCall-ID: %s\r\nCSeq: %s\r\n",
		code, reason, r.via, r.from, to, r.callID, r.cseq)
	if r.method == "INVITE" && code != 100 {
		fmt.Fprintf(&b, "Contact: %s\r\n", s.contact(!r.fromUA))
	}
	s.finish(&b, at, !r.fromUA, fmt.Sprintf("%d %s", code, r.method), extra, ctype, body)
}

func (s *dialogState) finish(b *strings.Builder, at time.Duration, fromUA bool, label string, extra []string, ctype string, body []byte) {
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	if ctype != "" {
		fmt.Fprintf(b, "Content-Type: %s\r\n", ctype)
	}
	fmt.Fprintf(b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	m := sipMsg{at: at, fromUA: fromUA, ua: &s.d.ua, text: []byte(b.String()), parts: 1}
	if s.d.ua.tcpPort != 0 {
		// Over TCP, split the messages with SDP and send each 100 Trying
		// in one segment with the 180 Ringing that follows it.
		switch {
		case len(body) > 0 && label == "INVITE":
			m.parts = 3
		case len(body) > 0:
			m.parts = 2
		case label == "100 INVITE":
			m.join = true
		}
	}
	s.w.msgs = append(s.w.msgs, m)
	s.call.Messages = append(s.call.Messages, label)
}

// sdpBody returns the SDP of one side of call ci with direction dir.
func (s *dialogState) sdpBody(at time.Duration, agent bool, ci int, dir, label string) []byte {
	c := &s.w.cfg.Calls[ci]
	addr := c.Far.Addr
	key := []byte(nil)
	if c.SRTP != nil {
		key = c.SRTP.ToAgent
	}
	ver := &s.sessVer
	if agent {
		addr = c.Agent.Addr
		ver = &s.agentVer
		if c.SRTP != nil {
			key = c.SRTP.FromAgent
		}
	}
	*ver++
	ip := "IP4"
	if addr.Addr().Is6() && !addr.Addr().Is4In6() {
		ip = "IP6"
	}
	pts := []int{int(c.rtpPayloadType())}
	rtpmap := map[string]string{strconv.Itoa(pts[0]): c.Codec.rtpmap()}
	if c.Codec == G729 || c.hasEvents() {
		pts = append(pts, EventPayloadType)
		rtpmap[strconv.Itoa(EventPayloadType)] = "telephone-event/" + strconv.Itoa(c.Codec.ClockRate())
	}
	formats := make([]string, len(pts))
	attrs := []sdp.Attribute{}
	for i, pt := range pts {
		formats[i] = strconv.Itoa(pt)
		attrs = append(attrs, sdp.NewAttribute("rtpmap", formats[i]+" "+rtpmap[formats[i]]))
	}
	if c.Codec == G729 {
		annexb := "no"
		if c.VAD {
			annexb = "yes"
		}
		attrs = append(attrs, sdp.NewAttribute("fmtp", strconv.Itoa(pts[0])+" annexb="+annexb))
	}
	if len(pts) > 1 {
		attrs = append(attrs, sdp.NewAttribute("fmtp", strconv.Itoa(EventPayloadType)+" 0-16"))
	}
	attrs = append(attrs, sdp.NewAttribute("ptime", strconv.Itoa(int(c.ptime()/time.Millisecond))))
	proto := []string{"RTP", "AVP"}
	crypto := ""
	if key != nil {
		proto = []string{"RTP", "SAVP"}
		if !c.SRTP.NotInSDP {
			crypto = "1 " + SRTPSuite + " inline:" + base64.StdEncoding.EncodeToString(key)
			attrs = append(attrs, sdp.NewAttribute("crypto", crypto))
		}
	}
	attrs = append(attrs, sdp.NewPropertyAttribute(dir))
	user, id := "PBX", s.sessID
	if agent {
		user, id = s.d.ua.ext, s.sessID^0x5a5a
	}
	d := sdp.SessionDescription{
		Origin: sdp.Origin{Username: user, SessionID: id, SessionVersion: *ver, NetworkType: "IN",
			AddressType: ip, UnicastAddress: addr.Addr().String()},
		SessionName:           "call",
		ConnectionInformation: &sdp.ConnectionInformation{NetworkType: "IN", AddressType: ip, Address: &sdp.Address{Address: addr.Addr().String()}},
		TimeDescriptions:      []sdp.TimeDescription{{}},
		MediaDescriptions: []*sdp.MediaDescription{{
			MediaName:  sdp.MediaName{Media: "audio", Port: sdp.RangedPort{Value: int(addr.Port())}, Protos: proto, Formats: formats},
			Attributes: attrs,
		}},
	}
	body, err := d.Marshal()
	if err != nil { // only for a description missing a mandatory field
		panic(fmt.Sprintf("gen: marshalling SDP: %v", err))
	}
	party := "far"
	if agent {
		party = "agent"
	}
	s.call.Media = append(s.call.Media, SDPMedia{AtMS: at.Milliseconds(), Party: party, Message: label,
		Addr: addr.String(), Proto: strings.Join(proto, "/"), PayloadTypes: pts, Rtpmap: rtpmap, Direction: dir, Crypto: crypto})
	return body
}

// prepare sets d's default times and draws its Call-ID.
func (w *sipWriter) prepare(d *dialogDef) {
	first, last := &w.cfg.Calls[d.calls[0]], &w.cfg.Calls[d.calls[len(d.calls)-1]]
	if d.invite == 0 {
		d.invite = first.Start - 400*time.Millisecond
	}
	if d.bye == 0 {
		d.bye = last.Start + last.Duration + 20*time.Millisecond
	}
	host := PBXAddr.Addr().String()
	if !d.inbound {
		host = d.ua.ep.Addr.Addr().String()
	}
	d.callID = w.hex(24) + "@" + host
}

// dialog writes the messages of d, prepared.
func (w *sipWriter) dialog(d *dialogDef) {
	u := &d.ua
	first := &w.cfg.Calls[d.calls[0]]
	call := SIPCall{CallID: d.callID, Agent: u.agent, Direction: "outbound", Caller: u.ext, Callee: d.far,
		Mobile: u.mobile, Transport: u.transport(), AgentSignalling: u.ep.Addr.String(), PBXSignalling: PBXAddr.String(),
		VLAN: vlanPtr(u.vlan), InviteMS: d.invite.Milliseconds(), ByeMS: d.bye.Milliseconds()}
	if d.inbound {
		call.Direction, call.Caller, call.Callee = "inbound", d.far, u.ext
	}
	s := &dialogState{w: w, d: d, call: &call, sessID: w.rng.Uint64N(1 << 40), agentURI: fmt.Sprintf("sip:%s@%s", u.ext, PBXAddr.Addr()),
		farURI: fmt.Sprintf("sip:%s@%s", d.far, PBXAddr.Addr())}
	byUA := !d.inbound
	if byUA {
		s.uaTag = w.hex(8)
	} else {
		s.pbxTag = w.hex(8)
	}
	cseq := func(fromUA bool) int {
		if fromUA {
			s.uaCSeq++
			return s.uaCSeq
		}
		s.pbxCSeq++
		return s.pbxCSeq
	}
	sdpType := "application/sdp"

	// The initial INVITE: offer by the caller, answer by the callee.
	t := d.invite
	inv := s.newRequest("INVITE", byUA, cseq(byUA))
	s.send(t, inv, []string{"Allow: INVITE, ACK, CANCEL, BYE, REFER, NOTIFY"}, sdpType,
		s.sdpBody(t, byUA, d.calls[0], sendrecv, "INVITE"))
	s.respond(t+ms(3), inv, 100, nil, "", nil)
	if byUA {
		s.pbxTag = w.hex(8)
	} else {
		s.uaTag = w.hex(8)
	}
	s.respond(t+ms(15), inv, 180, nil, "", nil)
	answer := max(t+ms(40), first.Start-ms(60))
	s.respond(answer, inv, 200, nil, sdpType, s.sdpBody(answer, !byUA, d.calls[0], sendrecv, "200 INVITE"))
	ack := s.newRequest("ACK", byUA, 0)
	ack.cseq = strings.Replace(inv.cseq, "INVITE", "ACK", 1)
	s.send(answer+ms(8), ack, nil, "", nil)

	for _, ev := range d.events {
		if ev.referTo != "" {
			target := fmt.Sprintf("<sip:%s@%s>", ev.referTo, PBXAddr.Addr())
			if ev.replaces != nil {
				target = fmt.Sprintf("<sip:%s@%s?Replaces=%s>", ev.referTo, PBXAddr.Addr(),
					strings.ReplaceAll(strings.ReplaceAll(ev.replaces.callID, "@", "%40"), ";", "%3B"))
			}
			call.ReferTo = strings.Trim(target, "<>")
			ref := s.newRequest("REFER", ev.byAgent, cseq(ev.byAgent))
			s.send(ev.at, ref, []string{"Refer-To: " + target, fmt.Sprintf("Referred-By: <%s>", s.agentURI)}, "", nil)
			s.respond(ev.at+ms(4), ref, 202, nil, "", nil)
			for i, frag := range []string{"SIP/2.0 100 Trying\r\n", "SIP/2.0 200 OK\r\n"} {
				state := "active;expires=60"
				if i == 1 {
					state = "terminated;reason=noresource"
				}
				at := ev.at + ms(10+50*i)
				n := s.newRequest("NOTIFY", !ev.byAgent, cseq(!ev.byAgent))
				s.send(at, n, []string{"Event: refer", "Subscription-State: " + state}, "message/sipfrag;version=2.0", []byte(frag))
				s.respond(at+ms(3), n, 200, nil, "", nil)
			}
			continue
		}
		ci := ev.call
		t := ev.at - ms(40)
		re := s.newRequest("INVITE", ev.byAgent, cseq(ev.byAgent))
		offerDir := ev.agentDir
		if !ev.byAgent {
			offerDir = peerDir(ev.agentDir)
		}
		s.send(t, re, nil, sdpType, s.sdpBody(t, ev.byAgent, ci, offerDir, "INVITE"))
		s.respond(t+ms(10), re, 200, nil, sdpType, s.sdpBody(t+ms(10), !ev.byAgent, ci, peerDir(offerDir), "200 INVITE"))
		a := s.newRequest("ACK", ev.byAgent, 0)
		a.cseq = strings.Replace(re.cseq, "INVITE", "ACK", 1)
		s.send(t+ms(15), a, nil, "", nil)
	}
	bye := s.newRequest("BYE", d.byeByAgent, cseq(d.byeByAgent))
	s.send(d.bye, bye, nil, "", nil)
	s.respond(d.bye+ms(4), bye, 200, nil, "", nil)
	w.info.Calls = append(w.info.Calls, call)
}

// frames returns the messages as datagrams and TCP segments, and the
// manifest's flows for them.
func (w *sipWriter) frames() ([]Datagram, []OtherFlow) {
	slices.SortStableFunc(w.msgs, func(a, b sipMsg) int { return int(a.at - b.at) })
	var out []Datagram
	var connList []*tcpConn
	for i := 0; i < len(w.msgs); i++ {
		m := &w.msgs[i]
		if m.ua.tcpPort == 0 {
			src, dst := pbxEndpoint, m.ua.ep
			if m.fromUA {
				src, dst = dst, src
			}
			out = append(out, Datagram{At: m.at, Src: src, Dst: dst, VLAN: m.ua.vlan, Payload: m.text})
			continue
		}
		var c *tcpConn
		for _, k := range connList {
			if k.ua.same(m.ua) {
				c = k
			}
		}
		if c == nil {
			c = &tcpConn{ua: m.ua, seq: [2]uint32{w.rng.Uint32(), w.rng.Uint32()}}
			connList = append(connList, c)
			out = c.handshake(out, m.at-3*time.Millisecond)
		}
		payload, at := m.text, m.at
		if m.join {
			// The next message the same way goes in the same segment.
			for j := i + 1; j < len(w.msgs); j++ {
				n := &w.msgs[j]
				if n.ua.same(m.ua) && n.fromUA == m.fromUA {
					payload = append(slices.Clip(payload), n.text...)
					at = n.at
					w.msgs = slices.Delete(w.msgs, j, j+1)
					break
				}
			}
		}
		out = c.send(out, at, m.fromUA, payload, m.parts)
	}
	// Flows, one per direction and VLAN.
	type key struct {
		proto, src, dst string
		vlan            uint16
	}
	count := map[key]int{}
	var order []key
	for _, d := range out {
		k := key{"sip", d.Src.Addr.String(), d.Dst.Addr.String(), d.VLAN}
		if d.TCP != nil {
			k.proto = "sip-tcp"
		}
		if count[k] == 0 {
			order = append(order, k)
		}
		count[k]++
	}
	flows := make([]OtherFlow, len(order))
	for i, k := range order {
		flows[i] = OtherFlow{Protocol: k.proto, Src: k.src, Dst: k.dst, VLAN: vlanPtr(k.vlan), Packets: count[k]}
	}
	return out, flows
}

// tcpConn is a SIP connection from a user agent to the PBX.
type tcpConn struct {
	ua  *sipUA
	seq [2]uint32 // next sequence number: [0] from the agent, [1] from the PBX
}

func (c *tcpConn) ends(fromUA bool) (Endpoint, Endpoint, int) {
	ua := Endpoint{MAC: c.ua.ep.MAC, Addr: netip.AddrPortFrom(c.ua.ep.Addr.Addr(), c.ua.tcpPort)}
	if fromUA {
		return ua, pbxEndpoint, 0
	}
	return pbxEndpoint, ua, 1
}

// handshake appends SYN, SYN-ACK and ACK ending at at.
func (c *tcpConn) handshake(out []Datagram, at time.Duration) []Datagram {
	ua, pbx, _ := c.ends(true)
	out = append(out,
		Datagram{At: at - 2*time.Millisecond, Src: ua, Dst: pbx, VLAN: c.ua.vlan, TCP: &TCPHeader{Seq: c.seq[0], Flags: TCPSyn, Window: 65535}},
		Datagram{At: at - time.Millisecond, Src: pbx, Dst: ua, VLAN: c.ua.vlan, TCP: &TCPHeader{Seq: c.seq[1], Ack: c.seq[0] + 1, Flags: TCPSyn | TCPAck, Window: 65535}},
		Datagram{At: at, Src: ua, Dst: pbx, VLAN: c.ua.vlan, TCP: &TCPHeader{Seq: c.seq[0] + 1, Ack: c.seq[1] + 1, Flags: TCPAck, Window: 65535}})
	c.seq[0]++
	c.seq[1]++
	return out
}

// send appends payload as parts segments, 1 ms apart from at.
func (c *tcpConn) send(out []Datagram, at time.Duration, fromUA bool, payload []byte, parts int) []Datagram {
	src, dst, i := c.ends(fromUA)
	parts = max(1, min(parts, len(payload)))
	for p := 0; p < parts; p++ {
		seg := payload[len(payload)*p/parts : len(payload)*(p+1)/parts]
		flags := uint8(TCPAck)
		if p == parts-1 {
			flags |= TCPPsh
		}
		out = append(out, Datagram{At: at + time.Duration(p)*time.Millisecond, Src: src, Dst: dst, VLAN: c.ua.vlan,
			Payload: seg, TCP: &TCPHeader{Seq: c.seq[i], Ack: c.seq[1-i], Flags: flags, Window: 65535}})
		c.seq[i] += uint32(len(seg))
	}
	return out
}
