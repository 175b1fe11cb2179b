package gen

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"
)

// frameEncoder encodes a packet's frames: 10 ms G.729 frames
// (internal/g729), G.722 (internal/g722) or an Opus frame (internal/opus)
// when built with cgo.
type frameEncoder interface {
	Encode(pcm []int16, out []byte) (int, error)
	Close() error
}

// pending is a packet generated but not yet written.
type pending struct {
	at      time.Duration // capture time offset from the epoch
	order   uint64        // generation order, breaks ties
	seq     uint16
	ts      uint32
	marker  bool
	dup     bool
	event   bool // an RFC 4733 event on EventPayloadType
	payload []byte
}

// stream generates one direction of one call.
type stream struct {
	idx   int
	call  *Call
	dir   *Direction
	res   *Stream
	rng   *rand.Rand
	tmpl  *frameTemplate
	audio audioSource
	enc   frameEncoder

	ptime   time.Duration
	clk     int // RTP clock ticks per sample: Codec.ClockRate() / SampleRate
	spp     int // samples per packet
	plen    int // payload bytes per packet
	slots   int
	next    int // next slot to generate
	seq     uint16
	ipID    uint16
	burst   int // packets left in the current burst
	held    bool
	order   uint64
	pending []pending // sorted by (at, order); short
	free    [][]byte
	pcm     []int16
}

// horizon is the earliest capture time any packet not generated yet can
// have: impairments only delay.
func (s *stream) horizon() time.Duration {
	return s.call.Start + time.Duration(s.next)*s.ptime
}

func (s *stream) inHold(off time.Duration) bool {
	for _, h := range s.dir.Holds {
		if off >= h.From && off < h.To {
			return true
		}
	}
	return false
}

func (s *stream) getBuf() []byte {
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		return b[:s.plen]
	}
	return make([]byte, s.plen, max(s.plen, 4)) // an event's payload is 4 bytes
}

func (s *stream) push(p pending) {
	p.order = s.order
	s.order++
	i := len(s.pending)
	s.pending = append(s.pending, p)
	for i > 0 && s.pending[i-1].at > p.at {
		s.pending[i] = s.pending[i-1]
		i--
	}
	s.pending[i] = p
}

// refill generates slots until the earliest pending packet is safe to
// write, that is no later than the horizon, or the stream is exhausted.
func (s *stream) refill(im *Impairments, record bool) error {
	for s.next < s.slots && (len(s.pending) == 0 || s.pending[0].at > s.horizon()) {
		if err := s.generate(im, record); err != nil {
			return err
		}
	}
	return nil
}

func (s *stream) generate(im *Impairments, record bool) error {
	k := s.next
	s.next++
	off := time.Duration(k) * s.ptime
	if s.inHold(off) {
		s.held = true
		return nil
	}
	sample := int64(k) * int64(s.spp)
	if ev, first, n := s.dir.eventAt(k, s.ptime); ev != nil {
		s.event(ev, k, first, n, off)
		return nil
	}
	payload := s.getBuf()
	n, err := s.encode(payload, sample)
	if err != nil {
		return err
	}
	if n == 0 {
		// G.729 with VAD sends nothing during silence (DTX), like a hold.
		s.free = append(s.free, payload)
		s.held = true
		return nil
	}
	payload = payload[:n]
	marker := k == 0 || s.held
	s.held = false
	ts := s.dir.Timestamp + uint32(sample*int64(s.clk))
	seq := s.seq
	s.seq++
	if s.res.Sent == 0 {
		s.res.FirstSeq = seq
	}
	s.res.Sent++
	s.res.LastSeq = seq

	lost := false
	if s.burst > 0 {
		lost = true
		s.burst--
	} else if im.BurstRate > 0 && s.rng.Float64() < im.BurstRate {
		lost = true
		n := im.BurstLen
		if n == 0 {
			n = 5
		}
		s.burst = n - 1
	}
	if !lost && im.Loss > 0 && s.rng.Float64() < im.Loss {
		lost = true
	}
	if lost {
		s.res.Lost++
		if record {
			s.res.LostPackets = append(s.res.LostPackets, Packet{Seq: seq, Timestamp: ts, Marker: marker,
				Payload: append([]byte(nil), payload...)})
		}
		s.free = append(s.free, payload)
		return nil
	}
	at := s.call.Start + off
	if im.Jitter > 0 {
		at += time.Duration(s.rng.Int64N(int64(im.Jitter) + 1))
	}
	if im.Reorder > 0 && s.rng.Float64() < im.Reorder {
		d := im.ReorderDelay
		if d == 0 {
			d = s.ptime * 3 / 2
		}
		at += d
		s.res.Reordered++
	}
	s.push(pending{at: at, seq: seq, ts: ts, marker: marker, payload: payload})
	if im.Duplicate > 0 && s.rng.Float64() < im.Duplicate {
		d := im.DuplicateDelay
		if d == 0 {
			d = s.ptime / 2
		}
		cp := s.getBuf()[:len(payload)]
		copy(cp, payload)
		s.push(pending{at: at + d, seq: seq, ts: ts, marker: marker, dup: true, payload: cp})
	}
	return nil
}

// event sends slot k of event ev, which covers n slots from first: a
// packet with the duration so far, and at the last slot the end packet
// three times, 5 ms apart. Events are not impaired.
func (s *stream) event(ev *Event, k, first, n int, off time.Duration) {
	code, _ := eventCode(ev.Digit)
	dur := min((k-first+1)*s.spp*s.clk, 0xffff)
	end := k == first+n-1
	ts := s.dir.Timestamp + uint32(first*s.spp*s.clk)
	copies := 1
	if end {
		copies = 3
	}
	for i := range copies {
		payload := s.getBuf()[:4]
		payload[0] = code
		payload[1] = 10 // volume -10 dBm0
		if end {
			payload[1] |= 0x80
		}
		payload[2], payload[3] = byte(dur>>8), byte(dur)
		seq := s.seq
		s.seq++
		if s.res.Sent == 0 {
			s.res.FirstSeq = seq
		}
		s.res.Sent++
		s.res.LastSeq = seq
		at := s.call.Start + off + time.Duration(i)*5*time.Millisecond
		s.push(pending{at: at, seq: seq, ts: ts, marker: k == first && i == 0, event: true, payload: payload})
	}
}

// encode writes the payload of the packet starting at sample into out and
// returns its length: the full packet for G.711 and G.729 speech; with
// G.729 VAD, the speech frames up to and including a SID frame (frames
// after a SID in the same packet are not sent), or 0 when every frame is
// silent (discontinuous transmission).
func (s *stream) encode(out []byte, sample int64) (int, error) {
	switch s.call.Codec {
	case PCMU:
		s.audio.encodeG711(out, sample, false, s.pcm)
	case PCMA:
		s.audio.encodeG711(out, sample, true, s.pcm)
	case G729:
		s.audio.fill(s.pcm, sample)
		n := 0
		sid := false
		for f := 0; f < s.spp/80; f++ {
			m, err := s.enc.Encode(s.pcm[f*80:(f+1)*80], out[n:])
			if err != nil {
				return 0, fmt.Errorf("encoding G.729 for agent %q: %w", s.call.AgentID, err)
			}
			if sid {
				continue // the encoder must still see every frame
			}
			switch m {
			case 10:
				n += m
			case 2:
				n += m
				sid = true
			}
		}
		return n, nil
	case G722:
		s.audio.fill(s.pcm, sample)
		n, err := s.enc.Encode(s.pcm, out)
		if err != nil {
			return 0, fmt.Errorf("encoding G.722 for agent %q: %w", s.call.AgentID, err)
		}
		return n, nil
	case Opus:
		s.audio.fill(s.pcm, sample)
		n, err := s.enc.Encode(s.pcm, out)
		if err != nil {
			return 0, fmt.Errorf("encoding Opus for agent %q: %w", s.call.AgentID, err)
		}
		return n, nil
	}
	return len(out), nil
}

// heapEntry is a stream keyed by its earliest pending packet; the key is
// copied in so comparisons stay within the heap's memory.
type heapEntry struct {
	at  time.Duration
	idx int
	s   *stream
}

// streamHeap orders streams by their earliest pending packet.
type streamHeap []heapEntry

func (h streamHeap) less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].idx < h[j].idx
}

func (h streamHeap) swap(i, j int) { h[i], h[j] = h[j], h[i] }

func (h streamHeap) down(i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h streamHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// Validate checks cfg as Write does, without writing: the first bad call or
// impairment is reported in an error naming the value, wrapping ErrBadCall,
// ErrBadImpairment or ErrCodecUnavailable.
func (cfg *Config) Validate() error {
	if err := cfg.Impair.validate(); err != nil {
		return err
	}
	for i := range cfg.Calls {
		if err := cfg.Calls[i].validate(i); err != nil {
			return err
		}
		if cfg.Calls[i].Codec == G729 && !g729Available() {
			return fmt.Errorf("%w: G.729 for call %d (agent %q) needs a build with cgo and libbcg729",
				ErrCodecUnavailable, i, cfg.Calls[i].AgentID)
		}
		if err := codecAvailable(cfg.Calls[i].Codec); err != nil {
			return fmt.Errorf("%w: call %d (agent %q): %v", ErrCodecUnavailable, i, cfg.Calls[i].AgentID, err)
		}
	}
	return nil
}

// Write writes the capture described by cfg to w as pcap and returns what
// it wrote. It validates the whole Config before writing anything; an
// error names the bad value. Write is safe to call concurrently with
// distinct Configs; it does not modify cfg.
func Write(w io.Writer, cfg *Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	epoch := cfg.Epoch
	if epoch.IsZero() {
		epoch = DefaultEpoch
	}
	res := &Result{Streams: make([]Stream, 2*len(cfg.Calls))}
	streams := make([]*stream, 0, 2*len(cfg.Calls))
	tables := map[toneKey]*toneTable{}
	defer func() {
		for _, s := range streams {
			if s.enc != nil {
				s.enc.Close()
			}
		}
	}()
	for i := range cfg.Calls {
		c := &cfg.Calls[i]
		for d := 0; d < 2; d++ {
			dir, src, dst := &c.FromAgent, c.Agent, c.Far
			if d == 1 {
				dir, src, dst = &c.ToAgent, c.Far, c.Agent
			}
			idx := 2*i + d
			rng := newRand(cfg.Seed, uint64(idx)+1)
			ssrc := dir.SSRC
			if ssrc == 0 {
				ssrc = uint32(rng.Uint64()) | 1
			}
			s := &stream{
				idx: idx, call: c, dir: dir, res: &res.Streams[idx], rng: rng,
				ptime: c.ptime(), spp: c.samplesPerPacket(), slots: c.slots(), clk: c.Codec.ClockRate() / SampleRate,
				seq: dir.Seq, ipID: uint16(rng.Uint64()),
			}
			s.plen = c.Codec.bytesFor(s.spp)
			s.pcm = make([]int16, s.spp)
			s.tmpl = newFrameTemplate(c, src, dst, ssrc)
			if c.SRTP != nil {
				key := c.SRTP.FromAgent
				if d == 1 {
					key = c.SRTP.ToAgent
				}
				ctx, err := newSRTPContext(key)
				if err != nil {
					return nil, fmt.Errorf("%w %d (agent %q): SRTP key: %v", ErrBadCall, i, c.AgentID, err)
				}
				s.tmpl.srtp = ctx
			}
			s.audio.dir = dir
			if dir.PCM == nil {
				key := toneKey{dir.ToneHz, dir.Amplitude}
				t, ok := tables[key]
				if !ok {
					t = newToneTable(dir.ToneHz, dir.Amplitude, maxPayload)
					tables[key] = t
				}
				s.audio.table = t
			}
			if c.Codec == G729 {
				enc, err := newG729Encoder(c.VAD)
				if err != nil {
					return nil, fmt.Errorf("%w: %v", ErrCodecUnavailable, err)
				}
				s.enc = enc
			}
			if c.Codec == G722 || c.Codec == Opus {
				enc, err := newWidebandEncoder(c.Codec)
				if err != nil {
					return nil, fmt.Errorf("%w: %v", ErrCodecUnavailable, err)
				}
				s.enc = enc
			}
			*s.res = Stream{Call: i, FromAgent: d == 0, AgentID: c.AgentID, SSRC: ssrc,
				Src: src.Addr, Dst: dst.Addr, VLAN: c.VLAN, Priority: c.Priority, Codec: c.Codec}
			streams = append(streams, s)
		}
	}
	pw, err := newPcapWriter(w, cfg.Nanosecond)
	if err != nil {
		return nil, fmt.Errorf("writing pcap header: %w", err)
	}
	dq := newDatagramQueue(cfg.Datagrams, cfg.Seed)
	h := make(streamHeap, 0, len(streams))
	for _, s := range streams {
		if err := s.refill(&cfg.Impair, cfg.Record); err != nil {
			return nil, err
		}
		if len(s.pending) > 0 {
			h = append(h, heapEntry{s.pending[0].at, s.idx, s})
			h.up(len(h) - 1)
		}
	}
	for len(h) > 0 {
		s := h[0].s
		p := s.pending[0]
		if err := dq.writeUntil(pw, epoch, p.at); err != nil {
			return nil, fmt.Errorf("writing pcap: %w", err)
		}
		copy(s.pending, s.pending[1:])
		s.pending = s.pending[:len(s.pending)-1]
		ts := epoch.Add(p.at).Truncate(pw.resolution())
		pt := s.tmpl.pt
		if p.event {
			pt = EventPayloadType
		}
		frame := s.tmpl.build(s.ipID, pt, p.seq, p.ts, p.marker, p.payload)
		if s.tmpl.err != nil {
			return nil, fmt.Errorf("encrypting SRTP for agent %q: %w", s.call.AgentID, s.tmpl.err)
		}
		s.ipID++
		if err := pw.writePacket(ts, frame); err != nil {
			return nil, fmt.Errorf("writing pcap: %w", err)
		}
		res.Frames++
		s.res.Written++
		if p.dup {
			s.res.Duplicates++
		}
		if cfg.Record {
			s.res.Packets = append(s.res.Packets, Packet{Time: ts, Seq: p.seq, Timestamp: p.ts,
				Marker: p.marker, Duplicate: p.dup, Event: p.event, Payload: append([]byte(nil), p.payload...)})
		}
		s.free = append(s.free, p.payload)
		if err := s.refill(&cfg.Impair, cfg.Record); err != nil {
			return nil, err
		}
		if len(s.pending) > 0 {
			h[0].at = s.pending[0].at
			h.down(0)
		} else {
			n := len(h) - 1
			h[0] = h[n]
			h = h[:n]
			if n > 0 {
				h.down(0)
			}
		}
	}
	if err := dq.writeUntil(pw, epoch, 1<<62); err != nil {
		return nil, fmt.Errorf("writing pcap: %w", err)
	}
	res.Frames += dq.count
	res.Datagrams = dq.count
	if err := pw.flush(); err != nil {
		return nil, fmt.Errorf("writing pcap: %w", err)
	}
	res.Bytes = pw.bytes
	return res, nil
}
