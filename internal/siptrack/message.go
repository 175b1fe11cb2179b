package siptrack

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Bounds inside one call.
const (
	maxLegs     = 8  // parties (forks included) whose SDP is kept per call
	maxMedia    = 16 // m= lines kept per SDP
	maxContacts = 16 // Contact entries read per REGISTER or 200 OK
)

type callState struct {
	id          string
	from, to    string
	fromTag     string
	state       string
	established bool // a 2xx to an INVITE was seen (or an in-dialog INVITE)
	started     time.Time
	answered    time.Time
	ended       time.Time
	lastSeen    time.Time
	referredTo  string
	legs        []*legState
	removed     bool
	pub         *Call // immutable copy for views, rebuilt on every change
}

type legState struct {
	key    string // the party's tag, else its user part
	user   string
	signal netip.AddrPort
	vlan   uint16
	media  []Media // immutable once set; replaced whole
}

type regKey struct {
	ext     string
	contact netip.AddrPort
}

type regEntry struct {
	pub     *Registration // immutable; replaced on every change
	removed bool
}

type pendingKey struct {
	callID string
	cseq   uint32
}

// pendingReg is a REGISTER waiting for its final response.
type pendingReg struct {
	ts       time.Time
	src      netip.AddrPort
	vlan     uint16
	contacts []contact
	wildcard bool
	expires  int // Expires header, -1 when absent
}

type contact struct {
	addr    netip.AddrPort // IP-literal Contact URI address, invalid otherwise
	expires int            // expires parameter, -1 when absent
}

func (c *callState) end(ts time.Time) {
	if c.state != StateEnded {
		c.state = StateEnded
		c.ended = ts
	}
}

// publish rebuilds the call's immutable copy.
func (c *callState) publish() {
	p := &Call{
		CallID:     c.id,
		From:       c.from,
		To:         c.to,
		State:      c.state,
		Started:    c.started,
		Answered:   c.answered,
		Ended:      c.ended,
		ReferredTo: c.referredTo,
	}
	if len(c.legs) > 0 {
		p.Legs = make([]Leg, len(c.legs))
		for i, l := range c.legs {
			p.Legs[i] = Leg{User: l.user, Signal: l.signal, VLAN: l.vlan, Media: l.media}
		}
	}
	c.pub = p
}

// updateHold sets talking or held from the legs' media: a call is held
// when one party has no active stream (every stream with a port is
// sendonly, recvonly or inactive, or has the address 0.0.0.0).
func (c *callState) updateHold() {
	if !c.established || c.state == StateEnded {
		return
	}
	c.state = StateTalking
	for _, l := range c.legs {
		if legHeld(l.media) {
			c.state = StateHeld
			return
		}
	}
}

func legHeld(media []Media) bool {
	streams := 0
	for _, m := range media {
		if m.Addr.Port() == 0 {
			continue
		}
		streams++
		if m.Direction == "sendrecv" && !m.Addr.Addr().IsUnspecified() {
			return false
		}
	}
	return streams > 0
}

// touch records a change to c: its copy is rebuilt and the view marked
// out of date; notify asks for OnChange.
func (t *Tracker) touch(c *callState, notify bool) {
	c.publish()
	t.changed = true
	t.notify = t.notify || notify
}

// handle applies one parsed SIP message.
func (t *Tracker) handle(ts time.Time, vlan uint16, src, dst netip.AddrPort, msg sip.Message) {
	cid, cseq, from, to := msg.CallID(), msg.CSeq(), msg.From(), msg.To()
	if cid == nil || cseq == nil || from == nil || to == nil || string(*cid) == "" {
		t.st.malformed.Add(1)
		return
	}
	t.st.messages.Add(1)
	switch m := msg.(type) {
	case *sip.Request:
		t.st.requests.Add(1)
		t.request(ts, vlan, src, m, string(*cid), cseq)
	case *sip.Response:
		t.st.responses.Add(1)
		t.response(ts, vlan, src, dst, m, string(*cid), cseq)
	}
}

func (t *Tracker) request(ts time.Time, vlan uint16, src netip.AddrPort, m *sip.Request, id string, cseq *sip.CSeqHeader) {
	if m.Method == sip.REGISTER {
		t.registerRequest(ts, vlan, src, m, id, cseq)
		return
	}
	c := t.calls[id]
	if m.Method == sip.INVITE {
		toTag, _ := m.To().Params.Get("tag")
		switch {
		case c == nil:
			c = t.newCall(ts, id, m.From(), m.To())
			if c == nil {
				return
			}
			if toTag != "" {
				// An in-dialog INVITE of a call that started before the
				// capture: the dialog is established.
				c.established = true
				c.state = StateTalking
			}
		case c.state == StateEnded && toTag == "" && !c.established:
			// The INVITE again after a challenge (401, 407) or a
			// redirect: the same call goes on.
			c.state = StateRinging
			c.ended = time.Time{}
		case c.state == StateEnded:
			return
		}
		c.lastSeen = ts
		t.applySDP(c, ts, vlan, src, m, true)
		t.touch(c, true)
		return
	}
	if c == nil || c.state == StateEnded {
		return
	}
	c.lastSeen = ts
	switch m.Method {
	case sip.BYE:
		c.end(ts)
		t.touch(c, true)
	case sip.CANCEL:
		if !c.established {
			c.end(ts)
			t.touch(c, true)
		}
	case sip.REFER:
		if u := referTo(m); u != "" && u != c.referredTo {
			c.referredTo = u
			t.touch(c, false)
		}
	default: // ACK (late offer's answer), UPDATE, PRACK, INFO...
		if t.applySDP(c, ts, vlan, src, m, true) {
			t.touch(c, true)
		}
	}
}

func (t *Tracker) response(ts time.Time, vlan uint16, src, dst netip.AddrPort, m *sip.Response, id string, cseq *sip.CSeqHeader) {
	code := m.StatusCode
	if cseq.MethodName == sip.REGISTER {
		t.registerResponse(ts, vlan, dst, m, id, cseq)
		return
	}
	c := t.calls[id]
	if cseq.MethodName == sip.INVITE && c == nil && code > 100 && code < 300 {
		// The INVITE was not seen (the capture started after it).
		if c = t.newCall(ts, id, m.From(), m.To()); c == nil {
			return
		}
	}
	if c == nil || c.state == StateEnded {
		return
	}
	c.lastSeen = ts
	switch cseq.MethodName {
	case sip.INVITE:
		switch {
		case code < 200:
			if t.applySDP(c, ts, vlan, src, m, false) {
				t.touch(c, true)
			}
		case code < 300:
			toTag, _ := m.To().Params.Get("tag")
			if !c.established {
				c.established = true
				c.answered = ts
				c.state = StateTalking
				// Early media of other forks is gone.
				c.legs = slices.DeleteFunc(c.legs, func(l *legState) bool {
					return l.key != c.fromTag && l.key != toTag && toTag != ""
				})
			}
			t.applySDP(c, ts, vlan, src, m, false)
			c.updateHold()
			t.touch(c, true)
		case !c.established || code == 481:
			c.end(ts)
			t.touch(c, true)
		}
	case sip.BYE:
		if code >= 200 {
			c.end(ts)
			t.touch(c, true)
		}
	default: // UPDATE, PRACK answers
		if code >= 200 && code < 300 && t.applySDP(c, ts, vlan, src, m, false) {
			t.touch(c, true)
		}
	}
}

// newCall adds a call, dropping the oldest ended call when full; nil when
// the table is full of calls not ended.
func (t *Tracker) newCall(ts time.Time, id string, from *sip.FromHeader, to *sip.ToHeader) *callState {
	if len(t.calls) >= t.cfg.MaxCalls {
		var oldest *callState
		for _, c := range t.callOrder {
			if !c.removed && c.state == StateEnded {
				oldest = c
				break
			}
		}
		if oldest == nil {
			t.st.callsRefused.Add(1)
			return nil
		}
		t.removeCall(oldest.id, oldest)
	}
	tag, _ := from.Params.Get("tag")
	c := &callState{
		id:       id,
		from:     userPart(&from.Address),
		to:       userPart(&to.Address),
		fromTag:  tag,
		state:    StateRinging,
		started:  ts,
		lastSeen: ts,
	}
	t.calls[id] = c
	t.callOrder = append(t.callOrder, c)
	return c
}

func (t *Tracker) removeCall(id string, c *callState) {
	delete(t.calls, id)
	c.removed = true
	t.callsRemoved++
	if t.callsRemoved > len(t.callOrder)/2 {
		t.callOrder = slices.DeleteFunc(t.callOrder, func(c *callState) bool { return c.removed })
		t.callsRemoved = 0
	}
	t.changed = true
	t.notify = true
}

// applySDP reads the SDP of msg, if any, into the leg of the party that
// sent it (From of a request, To of a response) and reports whether the
// call changed.
func (t *Tracker) applySDP(c *callState, ts time.Time, vlan uint16, src netip.AddrPort, msg sip.Message, request bool) bool {
	var ct string
	if h := header(msg, "content-type"); h != nil {
		ct = h.Value()
	}
	body, err := sdpBody(ct, msg.Body())
	if err != nil {
		t.st.sdpMalformed.Add(1)
		return false
	}
	if body == nil {
		return false
	}
	media, err := parseSDPSafe(body)
	if err != nil {
		t.st.sdpMalformed.Add(1)
		return false
	}
	if len(media) > maxMedia {
		media = media[:maxMedia]
	}
	if t.sdpSeen != nil {
		t.sdpSeen(c.id, media)
	}
	var user, tag string
	if request {
		user = userPart(&msg.From().Address)
		tag, _ = msg.From().Params.Get("tag")
	} else {
		user = userPart(&msg.To().Address)
		tag, _ = msg.To().Params.Get("tag")
	}
	key := tag
	if key == "" {
		key = "user:" + user
	}
	var leg *legState
	for _, l := range c.legs {
		if l.key == key {
			leg = l
			break
		}
	}
	if leg == nil {
		if len(c.legs) >= maxLegs {
			return false
		}
		leg = &legState{key: key}
		c.legs = append(c.legs, leg)
	}
	leg.user, leg.signal, leg.vlan, leg.media = user, src, vlan, media
	c.updateHold()
	return true
}

func parseSDPSafe(b []byte) (m []Media, err error) {
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: %v", errBadSDP, r)
		}
	}()
	return parseSDP(b)
}

// referTo returns the user part of a REFER's Refer-To (long or compact
// form).
func referTo(m *sip.Request) string {
	if h := m.ReferTo(); h != nil {
		return userPart(&h.Address)
	}
	if h := m.GetHeader("r"); h != nil {
		var u sip.Uri
		if _, err := sip.ParseAddressValue(h.Value(), &u, nil); err == nil {
			return userPart(&u)
		}
	}
	return ""
}

// header returns the first header named name (lower case), nil if none.
func header(msg sip.Message, name string) sip.Header {
	if hs := msg.GetHeaders(name); len(hs) > 0 {
		return hs[0]
	}
	return nil
}

// userPart returns the user of a SIP URI, the number of a tel URI.
func userPart(u *sip.Uri) string {
	if u.User != "" {
		return u.User
	}
	if strings.EqualFold(u.Scheme, "tel") {
		n, _, _ := strings.Cut(u.Raw(), ";")
		return n
	}
	return ""
}

// uriAddr returns the address of a URI whose host is an IP address.
func uriAddr(u *sip.Uri) (netip.AddrPort, bool) {
	a, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return netip.AddrPort{}, false
	}
	port := u.Port
	if port <= 0 || port > 65535 {
		port = 5060
		if strings.EqualFold(u.Scheme, "sips") {
			port = 5061
		}
	}
	return netip.AddrPortFrom(a.Unmap(), uint16(port)), true
}

// contacts reads the Contact entries of msg.
func contacts(msg sip.Message) (list []contact, wildcard bool) {
	for _, h := range msg.GetHeaders("contact") {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			continue
		}
		if ch.Address.Wildcard {
			wildcard = true
			continue
		}
		if len(list) >= maxContacts {
			break
		}
		c := contact{expires: -1}
		c.addr, _ = uriAddr(&ch.Address)
		if v, ok := ch.Params.Get("expires"); ok {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
				c.expires = int(min(n, 1<<31-1))
			}
		}
		list = append(list, c)
	}
	return list, wildcard
}

// expiresHeader returns the Expires header in seconds, -1 when absent or
// unreadable.
func expiresHeader(msg sip.Message) int {
	h := header(msg, "expires")
	if h == nil {
		return -1
	}
	n, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
	if err != nil {
		return -1
	}
	return int(min(n, 1<<31-1))
}

func (t *Tracker) registerRequest(ts time.Time, vlan uint16, src netip.AddrPort, m *sip.Request, id string, cseq *sip.CSeqHeader) {
	k := pendingKey{id, cseq.SeqNo}
	if _, ok := t.pending[k]; !ok && len(t.pending) >= t.cfg.MaxRegistrations {
		t.st.regsRefused.Add(1)
		return
	}
	list, wild := contacts(m)
	t.pending[k] = &pendingReg{ts: ts, src: src, vlan: vlan, contacts: list, wildcard: wild, expires: expiresHeader(m)}
}

// registerResponse applies a final response to a REGISTER: on 2xx the
// bindings it lists (else those of the request) become valid, those with
// expiry 0 are removed, and when it lists any, the extension's bindings
// it does not list are removed (the registrar lists all current ones).
func (t *Tracker) registerResponse(ts time.Time, vlan uint16, dst netip.AddrPort, m *sip.Response, id string, cseq *sip.CSeqHeader) {
	if m.StatusCode < 200 {
		return
	}
	k := pendingKey{id, cseq.SeqNo}
	p := t.pending[k]
	delete(t.pending, k)
	if m.StatusCode >= 300 {
		return
	}
	ext := userPart(&m.To().Address)
	if ext == "" {
		return
	}
	source, regVLAN := dst, vlan
	if p != nil {
		source, regVLAN = p.src, p.vlan
	}
	defExp := expiresHeader(m)
	list, _ := contacts(m)
	authoritative := len(list) > 0
	if !authoritative && p != nil {
		list = p.contacts
		if defExp < 0 {
			defExp = p.expires
		}
		if p.wildcard && p.expires == 0 {
			t.removeExtension(ext, nil)
			return
		}
	}
	if defExp < 0 {
		defExp = int(t.cfg.RegisterExpires / time.Second)
	}
	keep := make(map[netip.AddrPort]bool, len(list))
	for _, c := range list {
		exp := c.expires
		if exp < 0 {
			exp = defExp
		}
		addr := c.addr
		if !addr.IsValid() {
			addr = source
		}
		if !addr.IsValid() {
			continue
		}
		if exp == 0 {
			if e := t.regs[regKey{ext, addr}]; e != nil {
				t.removeReg(regKey{ext, addr}, e)
			}
			continue
		}
		keep[addr] = true
		t.upsertReg(Registration{
			Extension: ext,
			Contact:   addr,
			Source:    source,
			VLAN:      regVLAN,
			Expires:   ts.Add(time.Duration(exp) * time.Second),
			Learned:   ts,
		})
	}
	if authoritative {
		t.removeExtension(ext, keep)
	}
}

// removeExtension removes the bindings of ext whose contact is not in
// keep.
func (t *Tracker) removeExtension(ext string, keep map[netip.AddrPort]bool) {
	for k, e := range t.regs {
		if k.ext == ext && !keep[k.contact] {
			t.removeReg(k, e)
		}
	}
}

func (t *Tracker) upsertReg(r Registration) {
	k := regKey{r.Extension, r.Contact}
	e := t.regs[k]
	if e == nil {
		if len(t.regs) >= t.cfg.MaxRegistrations {
			t.st.regsRefused.Add(1)
			return
		}
		e = &regEntry{}
		t.regs[k] = e
		t.regOrder = append(t.regOrder, e)
		t.notify = true
	} else if e.pub.Source != r.Source || e.pub.VLAN != r.VLAN {
		t.notify = true
	}
	e.pub = &r
	t.changed = true
}

func (t *Tracker) removeReg(k regKey, e *regEntry) {
	delete(t.regs, k)
	e.removed = true
	t.regsRemoved++
	if t.regsRemoved > len(t.regOrder)/2 {
		t.regOrder = slices.DeleteFunc(t.regOrder, func(e *regEntry) bool { return e.removed })
		t.regsRemoved = 0
	}
	t.changed = true
	t.notify = true
}
