package siptrack

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/silentmon/silentmon/capture"
)

// Feed gives the tracker a decoded packet that is not RTP: a UDP datagram
// or a TCP segment with a SIP port on either side; anything else is
// ignored. It is how a capture loop hands SIP over.
func (t *Tracker) Feed(ts time.Time, p *capture.Packet) {
	if !t.IsSIPPort(p.Src.Port()) && !t.IsSIPPort(p.Dst.Port()) {
		return
	}
	var vlan uint16
	if p.NumVLANs > 0 {
		vlan = p.VLANs[0].ID()
	}
	switch {
	case p.Kind == capture.KindUDP:
		t.Packet(ts, vlan, p.Src, p.Dst, false, p.UDP)
	case p.IPProto == 6 && len(p.TCP) > 0:
		t.TCPSegment(ts, vlan, p.Src, p.Dst, p.TCPSeq, p.TCP)
	}
}

// AgentMedia is one audio stream of a user's current call as its SDP
// describes it: the user's own media address (where both directions of
// the stream can be matched), and, for SRTP, the a=crypto lines of the
// user's side (the keys it sends with) and of the other side (the keys
// it receives with).
type AgentMedia struct {
	Addr               netip.AddrPort
	SRTP               bool
	Crypto, PeerCrypto []string
}

// AgentMedia returns the audio streams of the current calls of users (an
// agent's id and extensions as SIP user parts), each address once,
// leaving out refused (port 0) and held (0.0.0.0) media.
func (t *Tracker) AgentMedia(users []string) []AgentMedia {
	var out []AgentMedia
	for _, u := range users {
		for _, cm := range t.MediaOf(u) {
			var peer []string
			for _, m := range cm.Remote {
				if m.Kind == "audio" && len(m.Crypto) > 0 {
					peer = m.Crypto
					break
				}
			}
			for _, m := range cm.Local {
				if m.Kind != "audio" || !m.Addr.IsValid() || m.Addr.Port() == 0 || m.Addr.Addr().IsUnspecified() ||
					slices.ContainsFunc(out, func(a AgentMedia) bool { return a.Addr == m.Addr }) {
					continue
				}
				a := AgentMedia{Addr: m.Addr, SRTP: strings.Contains(m.Profile, "SAVP")}
				if a.SRTP {
					a.Crypto, a.PeerCrypto = m.Crypto, peer
				}
				out = append(out, a)
			}
		}
	}
	return out
}
