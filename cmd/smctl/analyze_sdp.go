package main

import (
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/sdes"
	"github.com/silentmon/silentmon/internal/siptrack"
)

// sdpMedia is what the SDP of a call says about one party's audio media
// address: the payload types it receives (its rtpmap) and those the
// other party receives, whether the call negotiated SRTP (RTP/SAVP,
// RTP/SAVPF), and the SDES keys each side sends with (nil when the SDP
// carries none the player can use).
type sdpMedia struct {
	callID          string
	pts, peerPTs    map[uint8]string
	srtp            bool
	ownKey, peerKey *sdes.Key
	ended           bool
}

// sdpMatch is the SDP media of one RTP packet: the receiver's when its
// destination is an SDP media address, else the sender's. pts is the
// rtpmap the packet's payload types follow (the receiver's), key the
// sender's SDES key; byDst says which address matched.
type sdpMatch struct {
	callID string
	pts    map[uint8]string
	srtp   bool
	key    *sdes.Key
	addr   netip.AddrPort
	byDst  bool
}

// sdpIndex follows the SIP of a capture with a siptrack.Tracker and
// keeps, by media address, the SDP of the calls seen so far; a newer call
// on an address replaces an older one, and a live call an ended one. Not
// safe for concurrent use.
type sdpIndex struct {
	tr     *siptrack.Tracker
	dirty  bool
	gen    uint64 // bumped at every rebuild
	calls  int    // calls seen, ended ones included
	byAddr map[netip.AddrPort]*sdpMedia
}

// newSDPIndex returns an index reading SIP on ports (default 5060).
// Ended calls are kept, so a stream that outlives its BYE in the capture
// still finds its call.
func newSDPIndex(ports []uint16) *sdpIndex {
	x := &sdpIndex{byAddr: map[netip.AddrPort]*sdpMedia{}}
	x.tr = siptrack.New(siptrack.Config{Ports: ports, CallLinger: math.MaxInt64, OnChange: func() { x.dirty = true }})
	return x
}

// feed gives the index a packet that is not RTP.
func (x *sdpIndex) feed(p *capture.Packet, ts time.Time) { x.tr.Feed(ts, p) }

func (x *sdpIndex) rebuild() {
	x.dirty = false
	x.gen++
	snap := x.tr.Snapshot()
	x.calls = len(snap.Calls)
	m := map[netip.AddrPort]*sdpMedia{}
	for _, ended := range []bool{true, false} {
		for i := range snap.Calls {
			c := &snap.Calls[i]
			if (c.State == siptrack.StateEnded) != ended {
				continue
			}
			for li, l := range c.Legs {
				for _, md := range l.Media {
					if md.Kind != "audio" || !md.Addr.IsValid() || md.Addr.Port() == 0 || md.Addr.Addr().IsUnspecified() {
						continue
					}
					e := &sdpMedia{callID: c.CallID, pts: md.PayloadTypes, ended: ended,
						srtp: strings.Contains(md.Profile, "SAVP") || len(md.Crypto) > 0}
					if k, ok := sdes.ParseCrypto(md.Crypto); ok {
						e.ownKey = &k
					}
					if peer := peerAudio(c, li); peer != nil {
						e.peerPTs = peer.PayloadTypes
						e.srtp = e.srtp || strings.Contains(peer.Profile, "SAVP") || len(peer.Crypto) > 0
						if k, ok := sdes.ParseCrypto(peer.Crypto); ok {
							e.peerKey = &k
						}
					}
					m[md.Addr] = e
				}
			}
		}
	}
	x.byAddr = m
}

// peerAudio returns the first audio media of another leg of c than leg i.
func peerAudio(c *siptrack.Call, i int) *siptrack.Media {
	for j := range c.Legs {
		if j == i {
			continue
		}
		for k := range c.Legs[j].Media {
			if md := &c.Legs[j].Media[k]; md.Kind == "audio" {
				return md
			}
		}
	}
	return nil
}

// lookup returns the SDP media of a packet from src to dst.
func (x *sdpIndex) lookup(src, dst netip.AddrPort) (sdpMatch, bool) {
	if x.dirty {
		x.rebuild()
	}
	if e := x.byAddr[unmapAP(dst)]; e != nil {
		return sdpMatch{callID: e.callID, pts: e.pts, srtp: e.srtp, key: e.peerKey, addr: dst, byDst: true}, true
	}
	if e := x.byAddr[unmapAP(src)]; e != nil {
		return sdpMatch{callID: e.callID, pts: e.peerPTs, srtp: e.srtp, key: e.ownKey, addr: src}, true
	}
	return sdpMatch{}, false
}

func unmapAP(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// rtpmapName splits an rtpmap value ("G729/8000", "opus/48000/2") into
// its encoding name and clock rate (0 when missing or not a number).
func rtpmapName(v string) (string, uint32) {
	name, rest, _ := strings.Cut(v, "/")
	rate, _, _ := strings.Cut(rest, "/")
	r, err := strconv.ParseUint(rate, 10, 32)
	if err != nil {
		r = 0
	}
	return name, uint32(r)
}

// ptInfo names payload type pt of a stream matched to SDP m: the rtpmap's
// encoding and clock rate, or the static type's; sdp says whether the
// name came from the SDP.
func ptInfo(m *sdpMatch, pt uint8) (name string, rate uint32, sdp bool) {
	if m != nil {
		if v := m.pts[pt]; v != "" {
			if n, r := rtpmapName(v); n != "" {
				if r == 0 {
					r = capture.ClockRate(pt)
				}
				return n, r, true
			}
		}
	}
	return capture.CodecName(pt), capture.ClockRate(pt), false
}
