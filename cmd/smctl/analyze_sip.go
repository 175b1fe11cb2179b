package main

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/silentmon/silentmon/capture"
)

// streamID names an RTP stream as capture.StreamKey does: outer VLAN
// (capture.NoVLAN for none), addresses and SSRC.
type streamID struct {
	vlan     uint16
	src, dst netip.AddrPort
	ssrc     uint32
}

// sdpStream is what the SIP of a capture says about one RTP stream.
type sdpStream struct {
	match   sdpMatch
	matched bool
	tried   bool
	gen     uint64  // the index's generation at the last lookup
	pts     []uint8 // payload types seen, in order of first packet
	// sdpClock is set once a packet's clock rate came from the SDP (a
	// dynamic type): jit then holds the stream's jitter figures.
	sdpClock bool
	jit      wsJitter
}

// sipTee is the capture.Source that capture.Analyze reads: it passes the
// frames on and, on the side, feeds the SIP to an sdpIndex and follows
// each RTP stream's SDP and payload types, with the jitter computed with
// the SDP's clock rates.
type sipTee struct {
	capture.Source
	idx     *sdpIndex
	p       capture.Packet
	epoch   time.Time
	streams map[streamID]*sdpStream
}

func newSIPTee(src capture.Source, ports []uint16) *sipTee {
	return &sipTee{Source: src, idx: newSDPIndex(ports), streams: map[streamID]*sdpStream{}}
}

func (t *sipTee) ReadBatch(frames [][]byte, infos []capture.Info) (int, error) {
	n, err := t.Source.ReadBatch(frames, infos)
	lt := t.Source.LinkType()
	for i := range n {
		ts := infos[i].Timestamp
		if t.epoch.IsZero() {
			t.epoch = ts
		}
		info := infos[i]
		if t.p.Decode(frames[i], lt, &info) != nil {
			continue
		}
		if t.p.Kind == capture.KindRTP {
			t.rtp(&t.p, ts)
		} else if t.p.Kind != capture.KindRTCP {
			t.idx.feed(&t.p, ts)
		}
	}
	return n, err
}

func (t *sipTee) rtp(p *capture.Packet, ts time.Time) {
	id := streamID{vlan: capture.NoVLAN, src: p.Src, dst: p.Dst, ssrc: p.RTP.SSRC}
	if v, ok := p.OuterVLAN(); ok {
		id.vlan = v.ID()
	}
	s := t.streams[id]
	if s == nil {
		s = &sdpStream{}
		t.streams[id] = s
	}
	if !s.matched && (!s.tried || t.idx.dirty || s.gen != t.idx.gen) {
		s.match, s.matched = t.idx.lookup(p.Src, p.Dst)
		s.tried, s.gen = true, t.idx.gen
	}
	pt := p.RTP.PayloadType
	if !slices.Contains(s.pts, pt) {
		s.pts = append(s.pts, pt)
	}
	var rate uint32
	if s.matched {
		name, r, fromSDP := ptInfo(&s.match, pt)
		if fromSDP && capture.ClockRate(pt) == 0 && r != 0 {
			s.sdpClock = true
		}
		// As tshark: an event's timestamp stays at the event's start
		// (RFC 4733 section 2.2.1), so events take no part in the jitter.
		if !strings.EqualFold(name, "telephone-event") {
			rate = r
		}
	} else {
		rate = capture.ClockRate(pt)
	}
	s.jit.update(ts.Sub(t.epoch).Nanoseconds(), p, float64(rate/1000))
}

// stream returns what the SIP said about stream st, nil if nothing.
func (t *sipTee) stream(st *capture.StreamStats) *sdpStream {
	return t.streams[streamID{vlan: st.VLAN, src: st.Src, dst: st.Dst, ssrc: st.SSRC}]
}

// wsJitter computes the jitter figures of tshark -z rtp,streams as the
// capture package's stream table does (the same arithmetic, so the
// figures agree to the last digit), with a clock rate given per packet:
// the one the SDP maps a dynamic payload type to.
type wsJitter struct {
	packets                       uint64
	firstTS                       uint32
	pt                            uint8
	wsTime, lastNominal           float64
	jitter, maxJitter, meanJitter float64
}

// update accounts a packet arriving now ns after the capture's first
// frame, whose payload type's clock ticks tick times per millisecond.
func (j *wsJitter) update(now int64, p *capture.Packet, tick float64) {
	h := &p.RTP
	cur := nsToMs(now)
	if j.packets == 0 {
		j.packets, j.firstTS, j.pt, j.wsTime = 1, h.Timestamp, h.PayloadType, cur
		return
	}
	d := h.Timestamp - j.firstTS
	inTime := (j.firstTS <= h.Timestamp && d < 0x80000000) ||
		(j.firstTS > h.Timestamp && uint64(0xffffffff-j.firstTS)+uint64(h.Timestamp) < 0x80000000)
	cn := isCN(h.PayloadType)
	followCN := isCN(j.pt)
	j.pt = h.PayloadType
	if inTime && tick != 0 {
		nominal := float64(d) / tick
		expected := j.wsTime + (nominal - j.lastNominal)
		j.jitter = (15*j.jitter + math.Abs(cur-expected)) / 16
		j.lastNominal = nominal
	}
	if !h.Marker && !cn && inTime && !followCN && tick != 0 {
		j.maxJitter = max(j.maxJitter, j.jitter)
		j.meanJitter = (j.meanJitter*float64(j.packets-1) + j.jitter) / float64(j.packets)
	}
	if inTime {
		j.wsTime = cur
	}
	j.packets++
}

func isCN(pt uint8) bool { return pt == 13 || pt == 19 }

// nsToMs converts as Wireshark's nstime_to_msec does (and the capture
// package), so that rounding matches.
func nsToMs(ns int64) float64 {
	if ns >= 0 {
		u := uint64(ns)
		sec := u / 1e9
		return float64(int64(sec))*1000 + float64(int64(u-sec*1e9))/1e6
	}
	return float64(ns/1e9)*1000 + float64(ns%1e9)/1e6
}
