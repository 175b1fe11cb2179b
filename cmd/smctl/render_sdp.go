package main

import (
	"fmt"
	"io"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/sdes"
)

// sdpRender follows the SIP of a capture rendered without --agent: RTP
// whose SDP negotiated SRTP is decrypted with the SDES keys of the SDP,
// or, without visible keys, left out and named (never played as noise).
type sdpRender struct {
	idx   *sdpIndex
	dec   sdes.Decrypter
	skips *srtpSkips
}

func (s *sdpRender) packet(p *capture.Packet, ts time.Time) { s.idx.feed(p, ts) }

func (s *sdpRender) payload(p *capture.Packet, _ bool) ([]byte, bool) {
	m, ok := s.idx.lookup(p.Src, p.Dst)
	if !ok || !m.srtp {
		return p.UDP, true
	}
	if m.key == nil {
		s.skips.add(p)
		return nil, false
	}
	return s.dec.Decrypt(m.addr, !m.byDst, *m.key, p.UDP)
}

// srtpSkips are the streams left out because their SDP negotiated SRTP
// whose keys the capture does not show, in order of first packet.
type srtpSkips struct {
	seen  map[streamID]bool
	order []streamID
}

func (s *srtpSkips) add(p *capture.Packet) {
	id := streamID{vlan: capture.NoVLAN, src: p.Src, dst: p.Dst, ssrc: p.RTP.SSRC}
	if v, ok := p.OuterVLAN(); ok {
		id.vlan = v.ID()
	}
	if s.seen[id] {
		return
	}
	if s.seen == nil {
		s.seen = map[streamID]bool{}
	}
	s.seen[id] = true
	s.order = append(s.order, id)
}

// report writes one sentence per stream left out to w and returns how
// many there were.
func (s *srtpSkips) report(w io.Writer) int {
	for _, id := range s.order {
		fmt.Fprintf(w, "render: stream 0x%08x %s → %s: SRTP without visible keys, not rendered\n", id.ssrc, id.src, id.dst)
	}
	return len(s.order)
}

// srtpWithoutKeys returns a function that tells, for the RTP packets of
// the capture at path in order, whether the SDP seen so far negotiated
// SRTP for them without visible keys; it feeds the other packets to an
// index of the capture's SDP. pickEndpoint uses it so that a stream that
// cannot be rendered does not make its endpoint the agent's.
func srtpWithoutKeys(ports []uint16) (feed func(*capture.Packet, time.Time), hidden func(*capture.Packet) bool) {
	idx := newSDPIndex(ports)
	return idx.feed, func(p *capture.Packet) bool {
		m, ok := idx.lookup(p.Src, p.Dst)
		return ok && m.srtp && m.key == nil
	}
}
