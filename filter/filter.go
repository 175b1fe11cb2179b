package filter

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/silentmon/silentmon/capture"
)

// Direction says which way a packet travels relative to the agent.
type Direction uint8

// Directions. The numbering is part of the relay wire format.
const (
	FromAgent Direction = 1 // sent by the agent's phone or gateway leg
	ToAgent   Direction = 2 // sent to the agent
)

func (d Direction) String() string {
	switch d {
	case FromAgent:
		return "from-agent"
	case ToAgent:
		return "to-agent"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Session is a monitor session: deliver the voice of Agent, carried by
// Endpoints, to the supervisor service at Supervisor. A session is not a
// call: it lasts until stopped, and every call on its endpoints belongs to
// it. A Session is immutable once given to a Filter.
type Session struct {
	ID         string     `json:"id"`
	Agent      string     `json:"agent"`
	Endpoints  []Endpoint `json:"endpoints"`
	Supervisor string     `json:"supervisor"` // host:port of the supervisor service
	Record     bool       `json:"record,omitempty"`

	// RequestID is the client's id of the start request that made the
	// session: a retry of that request, on any member, returns this
	// session instead of making another.
	RequestID string `json:"request_id,omitempty"`
	// Requester is the SHA-256 fingerprint (hex) of the certificate that
	// started the session and RequesterSubject its subject: only that
	// identity or an administrator may stop it. Empty without TLS.
	Requester        string `json:"requester,omitempty"`
	RequesterSubject string `json:"requester_subject,omitempty"`
	// Started is when the session was accepted. Until, when not zero, is
	// the end of its lifetime (smctl monitor start --for).
	Started time.Time `json:"started,omitzero"`
	Until   time.Time `json:"until,omitzero"`

	// Extensions are the agent's telephone extensions (SIP user parts)
	// besides its id: each member follows their calls from the SIP on
	// its SPAN and matches the media the SDP names. Wait marks a
	// session started before anything was known about the agent: it
	// captures from the agent's next call on.
	Extensions []string `json:"extensions,omitempty"`
	Wait       bool     `json:"wait,omitempty"`
	// Informed marks a session "agent informed": watchers of the agent
	// are told it is monitored. A session without it is silent.
	Informed bool `json:"informed,omitempty"`
}

// Bounds of the ids and names a session carries.
const (
	MaxIDLen        = 64
	MaxAgentLen     = 64
	MaxExtensionLen = 32
	MaxExtensions   = 16
)

// ValidExtension reports whether x can be an agent's extension (a SIP
// user part): 1 to MaxExtensionLen of A-Z a-z 0-9 + * # . _ -.
func ValidExtension(x string) bool {
	if x == "" || len(x) > MaxExtensionLen {
		return false
	}
	for i := 0; i < len(x); i++ {
		c := x[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '*' || c == '#' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidID reports whether id can name a session or a request: 1 to
// MaxIDLen characters of A-Z a-z 0-9 . _ -, not "." or "..". Ids come from
// the wire and end up in file names and logs; nothing else is accepted.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLen || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidAgent reports whether name can name an agent: 1 to MaxAgentLen
// printable characters, no control characters and no path separator.
func ValidAgent(name string) bool {
	if name == "" || len(name) > MaxAgentLen || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if r == '/' || r == '\\' || !unicode.IsPrint(r) { // IsPrint: no control characters
			return false
		}
	}
	return true
}

// Validate reports the first problem with s as one sentence.
func (s *Session) Validate() error {
	if s.ID == "" {
		return fmt.Errorf("session has no id")
	}
	if !ValidID(s.ID) {
		return fmt.Errorf("session id %q is not 1 to %d of A-Z a-z 0-9 . _ -", s.ID, MaxIDLen)
	}
	if s.RequestID != "" && !ValidID(s.RequestID) {
		return fmt.Errorf("request id %q is not 1 to %d of A-Z a-z 0-9 . _ -", s.RequestID, MaxIDLen)
	}
	if s.Agent == "" {
		return fmt.Errorf("session %s has no agent", s.ID)
	}
	if !ValidAgent(s.Agent) {
		return fmt.Errorf("agent %q of session %s is not 1 to %d printable characters without a slash", s.Agent, s.ID, MaxAgentLen)
	}
	// A session without endpoints follows its agent's calls from SIP
	// (the agent id and its extensions are SIP user parts).
	if len(s.Extensions) > MaxExtensions {
		return fmt.Errorf("session %s for agent %s has %d extensions, more than %d", s.ID, s.Agent, len(s.Extensions), MaxExtensions)
	}
	for _, x := range s.Extensions {
		if !ValidExtension(x) {
			return fmt.Errorf("extension %q of session %s is not 1 to %d of A-Z a-z 0-9 + * # . _ -", x, s.ID, MaxExtensionLen)
		}
	}
	for _, e := range s.Endpoints {
		if !e.Valid() {
			return fmt.Errorf("session %s for agent %s has an empty endpoint", s.ID, s.Agent)
		}
	}
	return nil
}

// Match is one session a packet belongs to, with the packet's direction.
type Match struct {
	Session   *Session
	Direction Direction
}

type rule struct {
	sess   *Session
	lo, hi uint16
	vlan   vlanRule
}

// acceptsPacket is accepts for packet p, whose VLAN tags are read only
// when the rule names a VLAN or a port range (small enough to be inlined:
// a rule with neither, nearly all, costs two comparisons).
func (r *rule) acceptsPacket(port uint16, p *capture.Packet) bool {
	return r.vlan.vlan == 0 && r.hi == 0 || r.acceptsVLANs(port, p)
}

// acceptsVLANs is accepts with p's VLAN tags.
//
//go:noinline
func (r *rule) acceptsVLANs(port uint16, p *capture.Packet) bool {
	return r.accepts(port, packetVLANs(p))
}

func (r *rule) accepts(port uint16, vlan vlanTags) bool {
	if !r.vlan.accepts(vlan) {
		return false
	}
	return r.hi == 0 || (port >= r.lo && port <= r.hi)
}

// table is an immutable lookup table; a new one is built on every change.
type table struct {
	byIP     *addrIndex // nil without IP endpoints
	byMAC    map[[6]byte][]rule
	sessions []*Session // sorted by ID
}

var emptyTable = &table{}

// Filter maps packets to monitor sessions. Match and MatchAll are safe for
// concurrent use and take no lock: they read an immutable table published
// with an atomic pointer. Set, Add and Remove serialise among themselves
// and publish a new table. The zero value is not usable; call New.
type Filter struct {
	mu sync.Mutex // serialises writers
	t  atomic.Pointer[table]
}

// New returns an empty Filter.
func New() *Filter {
	f := &Filter{}
	f.t.Store(emptyTable)
	return f
}

// Set replaces all sessions.
func (f *Filter) Set(sessions []*Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t.Store(build(sessions))
}

// Add adds s, replacing a session with the same ID.
func (f *Filter) Add(s *Session) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.t.Load().sessions
	next := make([]*Session, 0, len(old)+1)
	for _, o := range old {
		if o.ID != s.ID {
			next = append(next, o)
		}
	}
	f.t.Store(build(append(next, s)))
}

// Remove removes the session with the given ID and reports whether it
// existed.
func (f *Filter) Remove(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.t.Load().sessions
	next := make([]*Session, 0, len(old))
	for _, o := range old {
		if o.ID != id {
			next = append(next, o)
		}
	}
	if len(next) == len(old) {
		return false
	}
	f.t.Store(build(next))
	return true
}

// Sessions returns the current sessions sorted by ID. The slice is shared
// and must not be modified.
func (f *Filter) Sessions() []*Session { return f.t.Load().sessions }

// Session returns the session with the given ID.
func (f *Filter) Session(id string) (*Session, bool) {
	ss := f.t.Load().sessions
	i := sort.Search(len(ss), func(i int) bool { return ss[i].ID >= id })
	if i < len(ss) && ss[i].ID == id {
		return ss[i], true
	}
	return nil, false
}

func build(sessions []*Session) *table {
	byIP := make(map[netip.Addr][]rule)
	t := &table{
		byMAC:    make(map[[6]byte][]rule),
		sessions: append([]*Session(nil), sessions...),
	}
	sort.Slice(t.sessions, func(i, j int) bool { return t.sessions[i].ID < t.sessions[j].ID })
	for _, s := range t.sessions {
		for _, e := range s.Endpoints {
			r := rule{sess: s, lo: e.PortLo, hi: e.PortHi, vlan: vlanRule{vlan: e.VLAN, outer: e.OuterVLAN}}
			if e.HasMAC {
				t.byMAC[e.MAC] = append(t.byMAC[e.MAC], r)
			} else if e.IP.IsValid() {
				byIP[e.IP] = append(byIP[e.IP], r)
			}
		}
	}
	if len(byIP) != 0 {
		t.byIP = newAddrIndex(byIP)
	}
	if len(t.byMAC) == 0 {
		t.byMAC = nil
	}
	return t
}

// Match returns the first session p belongs to: the first that MatchAll
// would return. It does not allocate, however many sessions match.
func (f *Filter) Match(p *capture.Packet) (Match, bool) {
	t := f.t.Load()
	if p.Kind == capture.KindOther {
		return Match{}, false
	}
	vlan := packetVLANs(p)
	if t.byIP != nil {
		if r := firstRule(t.byIP.lookup(p.Src.Addr()), p.Src.Port(), vlan); r != nil {
			return Match{Session: r.sess, Direction: FromAgent}, true
		}
		if r := firstRule(t.byIP.lookup(p.Dst.Addr()), p.Dst.Port(), vlan); r != nil {
			return Match{Session: r.sess, Direction: ToAgent}, true
		}
	}
	if t.byMAC != nil && p.HasMAC {
		if r := firstRule(t.byMAC[p.SrcMAC], p.Src.Port(), vlan); r != nil {
			return Match{Session: r.sess, Direction: FromAgent}, true
		}
		if r := firstRule(t.byMAC[p.DstMAC], p.Dst.Port(), vlan); r != nil {
			return Match{Session: r.sess, Direction: ToAgent}, true
		}
	}
	return Match{}, false
}

func firstRule(rs []rule, port uint16, vlan vlanTags) *rule {
	for i := range rs {
		if rs[i].accepts(port, vlan) {
			return &rs[i]
		}
	}
	return nil
}

// MatchAll appends to dst every session p belongs to (several supervisors
// may monitor one agent, and two monitored agents may talk to each other)
// and returns it. A session appears once, with the direction of the first
// endpoint that matched (the source side first). It allocates only if dst
// lacks capacity.
func (f *Filter) MatchAll(p *capture.Packet, dst []Match) []Match {
	t := f.t.Load()
	if p.Kind == capture.KindOther {
		return dst
	}
	if x := t.byIP; x != nil {
		s4, d4, ok := p.IPv4()
		if !ok {
			src, dsta := p.Src.Addr(), p.Dst.Addr()
			if !src.Is4() || !dsta.Is4() {
				dst = matchIP(dst, p, x.lookup(src), x.lookup(dsta))
				goto mac
			}
			s4, d4 = addr4(src), addr4(dsta)
		}
		// Both IPv4 (nearly every packet).
		se, de := x.find4(s4, d4)
		switch {
		case se == nil && de == nil:
		case se != nil && de == nil && se.meta == 1 && len(dst) == 0:
			// The common hit: one session on the source address, read
			// from the entry itself.
			if r := &se.one[0]; r.acceptsPacket(p.Src.Port(), p) {
				dst = append(dst, Match{Session: r.sess, Direction: FromAgent})
			}
		case de != nil && se == nil && de.meta == 1 && len(dst) == 0:
			// The same on the destination address.
			if r := &de.one[0]; r.acceptsPacket(p.Dst.Port(), p) {
				dst = append(dst, Match{Session: r.sess, Direction: ToAgent})
			}
		default:
			dst = matchIP(dst, p, x.rulesOf(se), x.rulesOf(de))
		}
	}
mac:
	if t.byMAC != nil && p.HasMAC {
		vlan := packetVLANs(p)
		if rs, ok := t.byMAC[p.SrcMAC]; ok {
			dst = appendRules(dst, rs, p.Src.Port(), vlan, FromAgent)
		}
		if rs, ok := t.byMAC[p.DstMAC]; ok {
			dst = appendRules(dst, rs, p.Dst.Port(), vlan, ToAgent)
		}
	}
	return dst
}

// MatchBrief is MatchAll for a packet that capture's Brief.Decode took
// (RTP over IPv4 and Ethernet, at most one VLAN tag): the same sessions in
// the same order, from the Brief alone. It allocates only if dst lacks
// capacity.
func (f *Filter) MatchBrief(b *capture.Brief, dst []Match) []Match {
	return f.t.Load().matchBrief(b, dst)
}

// matchBrief is MatchBrief with table t.
func (t *table) matchBrief(b *capture.Brief, dst []Match) []Match {
	s4, d4, ok := b.IPv4()
	if !ok {
		return dst
	}
	if x := t.byIP; x != nil {
		se, de := x.find4(s4, d4)
		switch {
		case se == nil && de == nil:
		case se != nil && de == nil && se.meta == 1 && len(dst) == 0:
			if r := &se.one[0]; r.accepts(b.SrcPort(), briefVLANs(b)) {
				dst = append(dst, Match{Session: r.sess, Direction: FromAgent})
			}
		case de != nil && se == nil && de.meta == 1 && len(dst) == 0:
			if r := &de.one[0]; r.accepts(b.DstPort(), briefVLANs(b)) {
				dst = append(dst, Match{Session: r.sess, Direction: ToAgent})
			}
		default:
			vlan := briefVLANs(b)
			if se != nil {
				dst = appendRules(dst, x.rulesOf(se), b.SrcPort(), vlan, FromAgent)
			}
			if de != nil {
				dst = appendRules(dst, x.rulesOf(de), b.DstPort(), vlan, ToAgent)
			}
		}
	}
	if t.byMAC != nil {
		vlan := briefVLANs(b)
		if rs, ok := t.byMAC[b.SrcMAC()]; ok {
			dst = appendRules(dst, rs, b.SrcPort(), vlan, FromAgent)
		}
		if rs, ok := t.byMAC[b.DstMAC()]; ok {
			dst = appendRules(dst, rs, b.DstPort(), vlan, ToAgent)
		}
	}
	return dst
}

// briefVLANs is packetVLANs of a Brief: its one tag, if any, is the outer.
func briefVLANs(b *capture.Brief) vlanTags {
	if id, ok := b.VLAN(); ok {
		return vlanTags{outer: id}
	}
	return vlanTags{}
}

// addr4 returns IPv4 address a as a number (a.b.c.d is a<<24 | b<<16 |
// c<<8 | d).
func addr4(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

// matchIP appends the sessions of the rules of p's source address and of
// its destination address, in that order.
func matchIP(dst []Match, p *capture.Packet, srcRules, dstRules []rule) []Match {
	if srcRules == nil && dstRules == nil {
		return dst
	}
	vlan := packetVLANs(p)
	if srcRules != nil {
		dst = appendRules(dst, srcRules, p.Src.Port(), vlan, FromAgent)
	}
	if dstRules != nil {
		dst = appendRules(dst, dstRules, p.Dst.Port(), vlan, ToAgent)
	}
	return dst
}

func appendRules(dst []Match, rs []rule, port uint16, vlan vlanTags, d Direction) []Match {
	if len(rs) == 1 && len(dst) == 0 { // one session on the address: nothing to deduplicate
		if rs[0].accepts(port, vlan) {
			dst = append(dst, Match{Session: rs[0].sess, Direction: d})
		}
		return dst
	}
next:
	for i := range rs {
		r := &rs[i]
		if !r.accepts(port, vlan) {
			continue
		}
		for _, m := range dst {
			if m.Session == r.sess {
				continue next
			}
		}
		dst = append(dst, Match{Session: r.sess, Direction: d})
	}
	return dst
}
