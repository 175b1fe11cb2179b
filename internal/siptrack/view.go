package siptrack

import (
	"net/netip"
	"sync"
	"time"
)

// Call states.
const (
	StateRinging = "ringing"
	StateTalking = "talking"
	StateHeld    = "held"
	StateEnded   = "ended"
)

// Snapshot is an immutable view of what the tracker knows. It is safe to
// keep and to read from any goroutine; it must not be modified (its maps
// and slices are shared with later snapshots).
type Snapshot struct {
	// Registrations in the order they were first learned.
	Registrations []Registration
	// Calls in the order they started.
	Calls []Call
}

// Registration is one binding of an extension to a contact address,
// valid from the registrar's 200 OK until Expires.
type Registration struct {
	Extension string // the user part of the To URI of the REGISTER
	// Contact is the Contact URI's address when it is an IP address,
	// otherwise the address the REGISTER came from.
	Contact netip.AddrPort
	// Source is the address the REGISTER came from (the phone, or the
	// NAT in front of it); for a 200 OK seen without its request, the
	// address the 200 OK went to.
	Source  netip.AddrPort
	VLAN    uint16 // 802.1Q VLAN of the REGISTER, 0 for none
	Expires time.Time
	Learned time.Time // capture time of the 200 OK that (re)validated it
}

// Call is one SIP dialog, matched by Call-ID.
type Call struct {
	CallID   string
	From, To string // user parts (extensions, numbers) of From and To of the INVITE
	State    string // StateRinging, StateTalking, StateHeld or StateEnded
	// Legs holds one entry per party whose SDP was seen, the offerer
	// first; a party's newer SDP replaces its media.
	Legs                     []Leg
	Started, Answered, Ended time.Time // zero when not (yet) seen
	ReferredTo               string    // user part of the last REFER's Refer-To, if any
}

// Leg is the media one party of a call announced in SDP.
type Leg struct {
	// User is the user part of the party that sent this SDP: From of a
	// request (the INVITE's offer, a late-offer ACK, a re-INVITE from
	// either side), To of a response.
	User   string
	Signal netip.AddrPort // where that party's SIP message came from
	VLAN   uint16         // 802.1Q VLAN of that message, 0 for none
	Media  []Media
}

// Media is one m= line of an SDP.
type Media struct {
	// Addr is the c= address (media level, else session level) with the
	// m= port: where this party receives RTP. Port 0 means the stream
	// was refused or disabled; an unspecified address (0.0.0.0) is the
	// old way of putting a call on hold.
	Addr netip.AddrPort
	// RTCP is where this party receives RTCP: a=rtcp when given, Addr
	// with a=rtcp-mux, otherwise Addr's port plus one.
	RTCP netip.AddrPort
	Kind string // "audio", "video", "image"...
	// PayloadTypes maps each RTP payload type of the m= line to its
	// encoding from a=rtpmap ("PCMA/8000", "telephone-event/8000");
	// static types without rtpmap get their RFC 3551 names; a dynamic
	// type without rtpmap maps to "". Empty for non-RTP media.
	PayloadTypes map[uint8]string
	Direction    string   // sendrecv, sendonly, recvonly or inactive
	Crypto       []string // a=crypto values as given (SDES), nil if none
	Profile      string   // RTP/AVP, RTP/SAVP, RTP/SAVPF, udptl...
}

// CallMedia is one call of a user, from MediaOf.
type CallMedia struct {
	CallID, State string
	Local         []Media // the user's own legs' media
	Remote        []Media // the other parties' media
}

// Stats counts what the tracker read. Counters only grow; Calls,
// Registrations and TCPFlows are current sizes.
type Stats struct {
	Messages             uint64 // SIP messages parsed
	Requests             uint64
	Responses            uint64
	Malformed            uint64 // messages (or UDP datagrams, or TCP resynchronisations) that could not be read
	SDPMalformed         uint64 // SDP bodies that could not be read (the message itself was used)
	Keepalives           uint64 // CRLF keep-alives and empty datagrams
	TCPDropped           uint64 // TCP flows reset because a message outgrew TCPBufferLimit
	TCPFlowsEvicted      uint64 // TCP flows dropped because MaxTCPFlows was reached
	TCPGaps              uint64 // TCP flows reset because a segment was missing (TCPSegment)
	TCPRetransmits       uint64 // TCP segments already seen, ignored (TCPSegment)
	CallsRefused         uint64 // new calls refused because MaxCalls was reached
	CallsTimedOut        uint64 // calls ended by RingTimeout or CallIdle
	RegistrationsRefused uint64 // bindings or REGISTER transactions refused by MaxRegistrations

	Calls         int // calls kept, ended ones included
	Registrations int
	TCPFlows      int
}

// view is what the readers see: a snapshot and, built on first use, the
// index MediaOf needs.
type view struct {
	gen  uint64
	snap *Snapshot

	once   sync.Once
	byUser map[string][]int // user → indexes into snap.Calls (not ended)
}

func (v *view) index() map[string][]int {
	v.once.Do(func() {
		m := make(map[string][]int)
		for i := range v.snap.Calls {
			c := &v.snap.Calls[i]
			if c.State == StateEnded {
				continue
			}
			add := func(u string) {
				if u == "" {
					return
				}
				l := m[u]
				if len(l) > 0 && l[len(l)-1] == i {
					return
				}
				m[u] = append(l, i)
			}
			add(c.From)
			add(c.To)
			for _, l := range c.Legs {
				add(l.User)
			}
		}
		v.byUser = m
	})
	return v.byUser
}

// mediaOf gives the calls of user in v; see Tracker.MediaOf.
func (v *view) mediaOf(user string) []CallMedia {
	idx := v.index()[user]
	if len(idx) == 0 {
		return nil
	}
	out := make([]CallMedia, 0, len(idx))
	for _, i := range idx {
		c := &v.snap.Calls[i]
		cm := CallMedia{CallID: c.CallID, State: c.State}
		for _, l := range c.Legs {
			for _, m := range l.Media {
				if !m.Addr.IsValid() || m.Addr.Port() == 0 || m.Addr.Addr().IsUnspecified() {
					continue
				}
				if l.User == user {
					cm.Local = append(cm.Local, m)
				} else {
					cm.Remote = append(cm.Remote, m)
				}
			}
		}
		out = append(out, cm)
	}
	return out
}
