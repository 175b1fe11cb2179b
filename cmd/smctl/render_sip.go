package main

import (
	"errors"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/sdes"
	"github.com/silentmon/silentmon/internal/siptrack"
	"github.com/silentmon/silentmon/playout"
)

// sipMedia reads the SIP of the capture at path (UDP and TCP on the SIP
// ports) and returns the media addresses the SDP gave the sides of users
// (an agent id and its extensions) in all their calls, ended ones too,
// as exact IP:PORT endpoints, and the payload types the SDP mapped to a
// codec the player knows (dynamic G.729, telephone-event), and the number
// of calls found.
func sipMedia(path string, users []string, ports []uint16) ([]filter.Endpoint, map[uint8]playout.Codec, int, error) {
	src, err := capture.OpenFile(path, capture.FileOptions{})
	if err != nil {
		return nil, nil, 0, err
	}
	defer src.Close()
	tr := siptrack.New(siptrack.Config{Ports: ports, CallLinger: 1 << 62})
	frames := make([][]byte, 64)
	infos := make([]capture.Info, 64)
	var p capture.Packet
	lt := src.LinkType()
	for {
		n, err := src.ReadBatch(frames, infos)
		for i := range n {
			if p.Decode(frames[i], lt, &infos[i]) != nil || p.Kind == capture.KindRTP || p.Kind == capture.KindRTCP {
				continue
			}
			if !tr.IsSIPPort(p.Src.Port()) && !tr.IsSIPPort(p.Dst.Port()) {
				continue
			}
			var vlan uint16
			if p.NumVLANs > 0 {
				vlan = p.VLANs[0].ID()
			}
			switch {
			case p.Kind == capture.KindUDP:
				tr.Packet(infos[i].Timestamp, vlan, p.Src, p.Dst, false, p.UDP)
			case p.IPProto == 6 && len(p.TCP) > 0:
				tr.TCPSegment(infos[i].Timestamp, vlan, p.Src, p.Dst, p.TCPSeq, p.TCP)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, 0, err
		}
	}
	var eps []filter.Endpoint
	seen := map[netip.AddrPort]bool{}
	codecs := map[uint8]playout.Codec{}
	calls := 0
	for _, c := range tr.Snapshot().Calls {
		mine := false
		for _, l := range c.Legs {
			if !slices.Contains(users, l.User) {
				continue
			}
			mine = true
			for _, m := range l.Media {
				for pt, name := range m.PayloadTypes {
					enc, _, _ := strings.Cut(name, "/")
					if cd, err := playout.ParseCodec(enc); err == nil && pt >= 96 {
						codecs[pt] = cd
					}
				}
				if m.Kind != "audio" || m.Addr.Port() == 0 || !m.Addr.Addr().IsValid() || m.Addr.Addr().IsUnspecified() || seen[m.Addr] {
					continue
				}
				seen[m.Addr] = true
				eps = append(eps, filter.Endpoint{IP: m.Addr.Addr(), PortLo: m.Addr.Port(), PortHi: m.Addr.Port()})
			}
		}
		if mine {
			calls++
		}
	}
	return eps, codecs, calls, nil
}

func mediaAddresses(n int) string {
	if n == 1 {
		return "1 media address"
	}
	return strconv.Itoa(n) + " media addresses"
}

// sipFollower feeds the SIP of a capture being rendered to a tracker and
// keeps the render's filter on the media of the agent's current calls
// (and the endpoints given with --endpoint), as a capture server does.
type sipFollower struct {
	users  []string
	ports  []uint16
	static []filter.Endpoint
	tr     *siptrack.Tracker
	f      *filter.Filter
	lastTS time.Time
	// keys are the SDES keys of the agent's SRTP media, by its media
	// address: [0] what it sends, [1] what it receives.
	keys map[netip.AddrPort][2]*sdes.Key
	dec  sdes.Decrypter
}

func (s *sipFollower) start(f *filter.Filter) {
	s.f = f
	s.tr = siptrack.New(siptrack.Config{Ports: s.ports, OnChange: s.rebuild})
}

// packet takes a packet that is not RTP.
func (s *sipFollower) packet(p *capture.Packet, ts time.Time) {
	if ts.Sub(s.lastTS) > time.Second {
		s.lastTS = ts
		s.tr.Expire(ts)
	}
	if !s.tr.IsSIPPort(p.Src.Port()) && !s.tr.IsSIPPort(p.Dst.Port()) {
		return
	}
	var vlan uint16
	if p.NumVLANs > 0 {
		vlan = p.VLANs[0].ID()
	}
	switch {
	case p.Kind == capture.KindUDP:
		s.tr.Packet(ts, vlan, p.Src, p.Dst, false, p.UDP)
	case p.IPProto == 6 && len(p.TCP) > 0:
		s.tr.TCPSegment(ts, vlan, p.Src, p.Dst, p.TCPSeq, p.TCP)
	}
}

func (s *sipFollower) rebuild() {
	eps := slices.Clone(s.static)
	seen := map[netip.AddrPort]bool{}
	s.keys = map[netip.AddrPort][2]*sdes.Key{}
	for _, u := range s.users {
		for _, cm := range s.tr.MediaOf(u) {
			var recv *sdes.Key
			for _, m := range cm.Remote {
				if k, ok := sdes.ParseCrypto(m.Crypto); ok && m.Kind == "audio" && strings.Contains(m.Profile, "SAVP") {
					recv = &k
					break
				}
			}
			for _, m := range cm.Local {
				if m.Kind == "audio" && strings.Contains(m.Profile, "SAVP") {
					var send *sdes.Key
					if k, ok := sdes.ParseCrypto(m.Crypto); ok {
						send = &k
					}
					s.keys[m.Addr] = [2]*sdes.Key{send, recv}
				}
				if m.Kind != "audio" || seen[m.Addr] {
					continue
				}
				seen[m.Addr] = true
				eps = append(eps, filter.Endpoint{IP: m.Addr.Addr(), PortLo: m.Addr.Port(), PortHi: m.Addr.Port()})
			}
		}
	}
	s.f.Set([]*filter.Session{{ID: "render", Agent: "render", Endpoints: eps}})
}

// payload returns the RTP of p, decrypted when it is SRTP of the agent's
// calls whose SDES keys the SDP gave; ok is false when it cannot be.
func (s *sipFollower) payload(p *capture.Packet, fromAgent bool) ([]byte, bool) {
	addr, i := p.Dst, 1
	if fromAgent {
		addr, i = p.Src, 0
	}
	k, found := s.keys[addr]
	if !found {
		return p.UDP, true
	}
	if k[i] == nil {
		return nil, false
	}
	return s.dec.Decrypt(addr, fromAgent, *k[i], p.UDP)
}
