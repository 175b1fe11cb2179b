package main

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/sdes"
	"github.com/silentmon/silentmon/internal/siptrack"
	"github.com/silentmon/silentmon/playout"
)

// sipCalls reads the SIP of the capture at path (UDP and TCP on the SIP
// ports) and returns how many calls users (an agent id and its
// extensions; nil for every call) had, and the dynamic payload types
// their SDP mapped to a codec the player knows (G.729, telephone-event):
// the player needs those before the render starts, so they take a pass of
// their own. When calls map one type to different codecs, the first
// mapping wins.
//
// names holds the encoding name the SDP gives each payload type ("iLBC",
// "AMR-WB"), played or not, so that a stream that cannot be played is
// named by its codec.
func sipCalls(path string, users []string, ports []uint16) (codecs map[uint8]playout.Codec, names map[uint8]string, calls int, err error) {
	src, err := capture.OpenFile(path, capture.FileOptions{})
	if err != nil {
		return nil, nil, 0, err
	}
	defer src.Close()
	tr := siptrack.New(siptrack.Config{Ports: ports, CallLinger: 1 << 62})
	err = eachPacket(src, func(p *capture.Packet, ts time.Time) bool {
		if p.Kind != capture.KindRTP && p.Kind != capture.KindRTCP {
			tr.Feed(ts, p)
		}
		return true
	})
	if err != nil {
		return nil, nil, 0, err
	}
	codecs, names = map[uint8]playout.Codec{}, map[uint8]string{}
	for _, c := range tr.Snapshot().Calls {
		mine := false
		for _, l := range c.Legs {
			if users != nil && !slices.Contains(users, l.User) {
				continue
			}
			mine = true
			for _, m := range l.Media {
				for pt, name := range m.PayloadTypes {
					enc, _, _ := strings.Cut(name, "/")
					if _, named := names[pt]; !named && enc != "" {
						names[pt] = enc
					}
					if _, known := codecs[pt]; known {
						continue
					}
					if cd, err := playout.ParseCodec(enc); err == nil && pt >= 96 {
						codecs[pt] = cd
					}
				}
			}
		}
		if mine {
			calls++
		}
	}
	return codecs, names, calls, nil
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
	keys  map[netip.AddrPort][2]*sdes.Key
	dec   sdes.Decrypter
	skips *srtpSkips
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
	s.tr.Feed(ts, p)
}

func (s *sipFollower) rebuild() {
	eps := slices.Clone(s.static)
	s.keys = map[netip.AddrPort][2]*sdes.Key{}
	for _, m := range s.tr.AgentMedia(s.users) {
		eps = append(eps, filter.Endpoint{IP: m.Addr.Addr(), PortLo: m.Addr.Port(), PortHi: m.Addr.Port()})
		if m.SRTP {
			var k [2]*sdes.Key
			if send, ok := sdes.ParseCrypto(m.Crypto); ok {
				k[0] = &send
			}
			if recv, ok := sdes.ParseCrypto(m.PeerCrypto); ok {
				k[1] = &recv
			}
			s.keys[m.Addr] = k
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
		s.skips.add(p)
		return nil, false
	}
	return s.dec.Decrypt(addr, fromAgent, *k[i], p.UDP)
}
