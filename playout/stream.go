package playout

import (
	"math"
	"time"
)

// Jitter buffer limits. A slot holds one packet's payload; the ring covers
// numSlots consecutive sequence numbers. 64 slots of 20 ms packets are
// 1.28 s, far beyond the largest target. The payloads' room and the
// decoded samples' buffer are sized by what the stream sends (grown, never
// shrunk, up to maxPayload and maxSamples), so a stream of 20 ms packets
// stays under 64 KiB at any session rate (TestStreamMemory,
// BenchmarkPlayoutMemory).
const (
	numSlots   = 64
	maxPayload = 480                  // 60 ms of G.711, 480 ms of G.729
	minPayload = 160                  // the room a slot starts with: 20 ms of G.711
	payloadRnd = 80                   // the room grows in steps of this
	maxSamples = maxPayload / 10 * 80 // G.729: 80 samples per 10-byte frame
	blockLen   = 80                   // 10 ms: the mixer's step, in time units (1/8000 s)
	maxBlock   = blockLen * 6         // the mixer's step in samples at 48 kHz
	// maxUnderrun is how long a stream whose buffer ran dry is continued
	// by concealment before its talkspurt is taken as ended.
	maxUnderrun = 480 // 60 ms
	// levelWindow is the period over which the buffer level's minimum is
	// taken to decide a slip or a stretch.
	levelWindow = 1e9                         // ns
	slipMargin  = int64(5 * time.Millisecond) // beyond a frame above target before a slip
	// resyncSeq and resyncTS bound the jumps taken as the same stream;
	// beyond them the stream restarts (as for a new SSRC).
	resyncSeq = 1000
	resyncTS  = 10 * SampleRate
	// maxComfort is how long comfort noise fills a G.729B silence with
	// no packet arriving (20 s); after it the stream is silent.
	maxComfort = 20 * SampleRate
)

type streamState uint8

const (
	stIdle    streamState = iota // nothing to play
	stWaiting                    // packets buffered, playout starts at startAt
	stPlaying
)

type slot struct {
	used bool
	// event marks a telephone event or comfort noise packet of the
	// voice's sequence space: it holds its sequence number's place (not
	// a loss) and plays as silence, with no payload kept.
	event   bool
	seq     int64 // extended sequence number
	ts      int64 // extended timestamp
	arrival int64 // ns
	n       int16 // payload bytes, in the stream's arena
	samples int16
}

// stream is the jitter buffer, decoder and statistics of one RTP stream:
// one SSRC within one flow (direction, addresses, VLAN). It is owned by a
// Renderer and not safe for concurrent use.
type stream struct {
	r *Renderer
	streamKey
	slots [numSlots]slot
	count int // used slots
	// arena holds the slots' payloads, room bytes each (slot i at
	// i×room); room grows with the largest payload.
	arena []byte
	room  int

	first   int64 // ns: arrival of the stream's first packet
	lastPkt int64 // ns: arrival of its latest packet

	codec   Codec
	dec     decoder
	decs    [CodecNone]decoder // per codec, created on first use
	badPT   [128]bool          // unknown payload types already reported
	started bool               // a packet of this SSRC was buffered

	// unwrapping: the highest extended sequence number seen and its raw
	// value; the timestamp of the last packet and its extended value (in
	// the codec's RTP clock: every other timestamp of the stream is in
	// samples at SampleRate, see sampleTS).
	highSeq    int64
	lastSeqRaw uint16
	lastTSExt  int64
	lastTSRaw  uint32

	state       streamState
	startAt     int64 // ns
	schedTarget int64 // ns: the target startAt was planned with
	nextSeq     int64 // next sequence number to play
	playTS      int64 // timestamp of the next sample out
	havePlayed  bool  // nextSeq-1 was played or concealed in this SSRC
	evSilence   bool  // an event was played last: the gap up to the voice is silence
	lastEnd     int64 // timestamp after the last packet played, late or slipped
	played      uint64
	frame       int     // samples per packet, for concealment
	underrun    int     // samples concealed since the buffer ran dry
	cnLeft      int     // samples of comfort noise still to play in a silence (DTX)
	pcm         []int16 // decoded samples at the session's rate: see buf
	pcmOff      int     // in samples at the session's rate, as pcmLen
	pcmLen      int
	stagedAdv   bool // the staged samples advance playTS (false: stretch)
	stagedTent  bool // the staged samples are concealment of an empty buffer
	slipPending bool
	strPending  bool

	// jitter (RFC 3550, in samples) and delay-variation peak (ns)
	haveTransit bool
	transit     int64
	jitter      float64
	baseTransit int64
	peak        float64
	target      int64 // ns: this stream's own need; the Renderer's target is played
	winEnd      int64
	winMin      int64 // samples
	winDelay    int64 // ns: the smallest delay in the window
	delay       int64 // ns: the largest delay in the window
	lastDelay   int64 // ns: the largest delay in the last whole window
	winLate     bool

	st StreamStats
}

// init readies a stream, new or taken from the free list, for the stream
// k whose first packet arrives at now.
func (s *stream) init(r *Renderer, k streamKey, now int64) {
	decs, pcm, arena, room := s.decs, s.pcm, s.arena, s.room
	*s = stream{r: r, streamKey: k, decs: decs, pcm: pcm, arena: arena, room: room, first: now, lastPkt: now}
	for _, d := range s.decs {
		if d != nil {
			d.reset()
		}
	}
	s.target = int64(r.cfg.InitialDelay)
	s.peak = max(0, float64(r.cfg.InitialDelay-blockLen*time.Second/SampleRate))
	s.st = StreamStats{Direction: k.dir, Flow: k.flow, SSRC: k.ssrc, TargetMs: float64(r.target) / 1e6}
}

// quiet reports that the stream has nothing to play until its next packet.
func (s *stream) quiet() bool { return s.state == stIdle && s.count == 0 && s.cnLeft == 0 }

// reset empties the buffer and forgets the sequence space (new SSRC or a
// jump too large to be the same stream).
func (s *stream) reset() {
	for i := range s.slots {
		if s.slots[i].used {
			s.slots[i].used = false
			s.st.Flushed++
		}
	}
	s.count = 0
	s.state = stIdle
	s.started = false
	s.havePlayed = false
	s.played = 0
	s.pcmOff, s.pcmLen = 0, 0
	s.underrun = 0
	s.cnLeft = 0
	s.evSilence = false
	s.haveTransit = false
	s.slipPending, s.strPending = false, false
	if s.dec != nil {
		s.dec.reset()
	}
}

func (s *stream) decoderFor(c Codec) (decoder, error) {
	if d := s.decs[c]; d != nil {
		return d, nil
	}
	var d decoder
	switch c {
	case CodecPCMU, CodecPCMA:
		d = newG711(c)
	case CodecG729, CodecG722, CodecOpus:
		var err error
		if d, err = newCgoDecoder(c, s.r.cfg.SampleRate); err != nil {
			return nil, err
		}
	}
	d = upsampled(d, s.r.m)
	s.decs[c] = d
	return d, nil
}

func (s *stream) close() {
	for i, d := range s.decs {
		if d != nil {
			d.close()
			s.decs[i] = nil
		}
	}
}

// push buffers one packet. now is its arrival time in ns. Nothing of
// payload is kept after it returns.
func (s *stream) push(h rtpHeader, payload []byte, now int64) {
	s.st.Packets++
	codec := s.r.cfg.Codec(h.pt)
	switch codec {
	case CodecNone:
		s.st.Ignored++
		s.pushEvent(h, now)
		return
	case CodecUnknown:
		s.refuse(h, "unknown payload type, packets dropped")
		return
	}
	dec, err := s.decoderFor(codec)
	if err != nil {
		s.refuse(h, err.Error())
		return
	}
	n := 0
	if len(payload) <= maxPayload {
		n = dec.samples(payload)
	}
	if n == 0 {
		s.st.Invalid++
		return
	}
	if codec != s.codec || s.dec == nil {
		s.codec, s.dec = codec, dec
		s.dec.reset()
	}
	s.st.Codec = s.codec
	s.lastPkt = max(s.lastPkt, now)

	// Unwrap sequence number and timestamp.
	var seq, ts, tsExt int64
	if !s.started {
		seq, tsExt = int64(h.seq), int64(h.ts)
		ts = sampleTS(tsExt, codec)
		s.highSeq, s.lastSeqRaw = seq, h.seq
		s.nextSeq = seq
		s.lastTSExt, s.lastTSRaw = tsExt, h.ts
		s.started = true
	} else {
		seq = s.highSeq + int64(int16(h.seq-s.lastSeqRaw))
		tsExt = s.lastTSExt + int64(int32(h.ts-s.lastTSRaw))
		ts = sampleTS(tsExt, codec)
		ref := s.nextSeq
		if s.state == stPlaying || s.havePlayed {
			if d := seq - ref; d > resyncSeq || d < -resyncSeq || s.tsJump(ts) {
				s.st.Resyncs++
				s.reset()
				s.push(h, payload, now) // as the first packet of a fresh stream
				s.st.Packets--
				return
			}
		}
	}
	if seq > s.highSeq {
		s.highSeq, s.lastSeqRaw = seq, h.seq
	}
	s.lastTSExt, s.lastTSRaw = tsExt, h.ts

	// Too old?
	if seq < s.nextSeq {
		back := s.nextSeq - seq
		if s.state != stPlaying && !s.havePlayed && back < numSlots/2 && s.highSeq-seq < numSlots {
			s.nextSeq = seq // reordered before playout started
		} else {
			if back <= 64 && s.played&(1<<(back-1)) != 0 {
				s.st.Duplicates++
			} else {
				s.st.Late++
				s.winLate = true
				s.measure(ts, n, now) // a late packet's delay counts most
			}
			return
		}
	}
	if seq >= s.nextSeq+numSlots {
		// The buffer cannot hold it: drop what is waiting and restart
		// from this packet (an overflow means playout is far behind).
		s.st.Overflows++
		s.reset()
		s.push(h, payload, now)
		s.st.Packets--
		return
	}
	sl := &s.slots[seq&(numSlots-1)]
	if sl.used {
		if sl.seq == seq {
			s.st.Duplicates++
			return
		}
		s.count-- // stale slot, cannot happen with the checks above
	}
	if s.state == stPlaying && ts+int64(n) <= s.playTS {
		s.st.Late++
		s.winLate = true
		s.measure(ts, n, now)
		if seq == s.nextSeq {
			s.nextSeq++
			s.lastEnd = max(s.lastEnd, ts+int64(n))
			s.mark(false)
		}
		return
	}
	s.fit(len(payload))
	sl.used, sl.event, sl.seq, sl.ts, sl.arrival = true, false, seq, ts, now
	sl.n, sl.samples = int16(copy(s.payload(seq), payload)), int16(n)
	s.count++
	s.measure(ts, n, now)
	if s.state == stIdle {
		s.state = stWaiting
		s.startAt = s.schedule(ts, now)
	}
}

// pushEvent takes a packet that carries no sound (an RFC 4733 telephone
// event, RFC 3389 comfort noise) but uses a sequence number of the voice
// stream, as phones send digits: while voice plays or waits to, it is
// buffered as an event slot, so that its sequence number is accounted for
// (not a loss) and the time it stands for plays as silence rather than as
// concealment (see fill). Its timestamp is the event's start, not its
// sending time, so it is kept out of the jitter and delay measures. While
// nothing plays (nothing is buffered) its place is taken at once: the
// next voice starts a talkspurt. Before any voice it is dropped.
func (s *stream) pushEvent(h rtpHeader, now int64) {
	if !s.started || s.dec == nil {
		return
	}
	seq := s.highSeq + int64(int16(h.seq-s.lastSeqRaw))
	tsExt := s.lastTSExt + int64(int32(h.ts-s.lastTSRaw))
	if seq < s.nextSeq {
		if back := s.nextSeq - seq; back <= 64 && s.played&(1<<(back-1)) != 0 {
			s.st.Duplicates++
		}
		return // its place was passed: nothing to play
	}
	if seq >= s.nextSeq+numSlots {
		return // too far ahead: not worth a restart
	}
	if seq > s.highSeq {
		s.highSeq, s.lastSeqRaw = seq, h.seq
	}
	s.lastTSExt, s.lastTSRaw = tsExt, h.ts
	s.lastPkt = max(s.lastPkt, now)
	if s.state == stIdle && s.count == 0 {
		s.nextSeq = seq + 1
		return
	}
	sl := &s.slots[seq&(numSlots-1)]
	if sl.used {
		if sl.seq == seq {
			s.st.Duplicates++
			return
		}
		s.count--
	}
	sl.used, sl.event, sl.seq, sl.ts, sl.arrival = true, true, seq, sampleTS(tsExt, s.codec), now
	sl.n, sl.samples = 0, 0
	s.count++
}

// schedule returns when a talkspurt starting with the packet of timestamp
// ts that arrived at arrival starts to play: the target delay after the
// time a packet of that timestamp arrives on the fastest path seen (the
// base transit), so the talkspurt's early packets wait the target and the
// later ones less, rather than every packet waiting for the first one's
// delay. A first packet later than the target absorbs means the path got
// slower: the base moves to it.
func (s *stream) schedule(ts, arrival int64) int64 {
	s.schedTarget = s.r.target
	ideal := (ts + s.baseTransit) * nsPerSample
	if !s.haveTransit || arrival-ideal > s.r.target {
		s.baseTransit = floorDiv(arrival, nsPerSample) - ts
		ideal = (ts + s.baseTransit) * nsPerSample
	}
	// Never later than the target after its own arrival: a timestamp
	// that jumped ahead of the base is not waited for.
	return min(max(ideal+s.r.target, arrival), arrival+s.r.target)
}

// sampleTS converts an extended RTP timestamp of codec's clock to a
// position in samples at SampleRate: Opus's 48000 Hz timestamps advance
// 960 per 20 ms, which is 160 samples at 8000 Hz; the 8000 Hz clocks
// (G.711, G.729, G.722) map one to one at SampleRate 8000.
func sampleTS(ts int64, c Codec) int64 {
	if r := int64(c.ClockRate()); r != SampleRate {
		return floorDiv(ts*SampleRate, r)
	}
	return ts
}

// floorDiv divides rounding toward minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// nsPerSample is one sample's duration.
const nsPerSample = int64(time.Second) / SampleRate

// refuse counts a packet whose payload type cannot be rendered and
// reports the payload type the first time.
func (s *stream) refuse(h rtpHeader, msg string) {
	s.st.UnknownCodec++
	if !s.badPT[h.pt] {
		s.badPT[h.pt] = true
		s.r.report(s, msg, "payload_type", int(h.pt))
	}
}

// tsJump reports a timestamp too far from the playout point to belong to
// the same stream.
func (s *stream) tsJump(ts int64) bool {
	if s.state != stPlaying {
		return false
	}
	d := ts - s.playTS
	return d > resyncTS || d < -resyncTS
}

// mark shifts the played window by one sequence number.
func (s *stream) mark(played bool) {
	s.played <<= 1
	if played {
		s.played |= 1
	}
	s.havePlayed = true
}

// measure updates the jitter, the delay-variation peak that sets the
// target, and the level window.
func (s *stream) measure(ts int64, n int, now int64) {
	arr := floorDiv(now, nsPerSample) // arrival in samples
	tr := arr - ts
	if s.haveTransit {
		d := float64(tr - s.transit)
		s.jitter += (math.Abs(d) - s.jitter) / 16
		// base follows the smallest transit, and creeps up by one
		// sample per packet otherwise, so a sender whose clock is slow
		// (transit growing by 0.8 samples per 20 ms packet at 0.5%) does
		// not read as ever-growing jitter. Any packet faster than base
		// pulls it back down at once.
		if tr < s.baseTransit {
			s.baseTransit = tr
		} else {
			s.baseTransit++
		}
		spread := float64(tr-s.baseTransit) * 1e9 / SampleRate
		s.peak = max(spread, s.peak*0.998)
	} else {
		s.baseTransit = tr
	}
	s.transit, s.haveTransit = tr, true
	cfg := &s.r.cfg
	t := int64(s.peak) + int64(blockLen)*1e9/SampleRate
	s.target = min(max(t, int64(cfg.MinDelay)), int64(cfg.MaxDelay))
	s.r.target = max(s.r.target, s.target)
	s.st.JitterMs = s.jitter * 1000 / SampleRate

	if s.state != stPlaying {
		return
	}
	lvl := ts + int64(n) - s.playTS
	// delay is what a packet on the fastest path waits now: from its
	// arrival to its first sample leaving. The talkspurt's schedule set
	// it (the target, more if its first packet came late); drift and
	// slips and stretches move it.
	delay := s.r.next - (s.playTS+s.baseTransit)*nsPerSample
	if s.winEnd == 0 {
		s.winEnd, s.winMin, s.winDelay = now+levelWindow, lvl, delay
	}
	s.winMin = min(s.winMin, lvl)
	s.winDelay = min(s.winDelay, delay)
	s.delay = max(s.delay, delay)
	if now >= s.winEnd {
		tgt := s.r.target / nsPerSample
		switch {
		case s.winDelay > s.r.target+int64(s.frame)*nsPerSample+slipMargin && s.winMin > int64(2*s.frame):
			// A whole frame more delay than the target asks, all
			// window long: skip a frame.
			s.slipPending = true
		case s.winLate && s.winMin < tgt/2,
			s.winMin < int64(max(s.frame, blockLen))+blockLen/2:
			// Late packets, or the packets arriving less than 5 ms
			// before their playout all window long: the buffer is
			// draining (the sender's clock is slower). A stretch
			// adds one frame of delay.
			s.strPending = true
		}
		s.winEnd, s.winMin, s.winLate = now+levelWindow, math.MaxInt64, false
		s.winDelay, s.lastDelay, s.delay = math.MaxInt64, s.delay, 0
	}
}

// lowest returns the buffered packet with the lowest sequence number, or
// nil.
func (s *stream) lowest() *slot {
	if s.count == 0 {
		return nil
	}
	for q := s.nextSeq; q <= s.highSeq && q < s.nextSeq+numSlots; q++ {
		if sl := &s.slots[q&(numSlots-1)]; sl.used && sl.seq == q {
			return sl
		}
	}
	return nil
}

// fill writes the stream's next len(out) samples (one block) into out.
// real reports samples from packets (decoded or concealed between
// packets); tent reports concealment of a buffer that ran dry only.
// drain stops at an empty buffer instead of concealing.
func (s *stream) fill(out []int16, now int64, drain bool) (real, tent bool) {
	if s.state == stWaiting {
		s.skipEvents()
	}
	if s.state == stWaiting && now < s.startAt {
		// Packets that arrived while waiting may have shown a faster
		// path than the first one took (the first packets of a call
		// delayed behind a connection set-up and released together):
		// start as the fastest path allows, never later than planned.
		if p := s.lowest(); p != nil {
			s.startAt = max(min(s.startAt, (p.ts+s.baseTransit)*nsPerSample+s.schedTarget), p.arrival)
		}
	}
	if s.state == stWaiting && now >= s.startAt {
		if p := s.lowest(); p != nil {
			// Start with the freshest target's worth: after a burst (an
			// outage released at once) older packets are stale.
			tgt := s.r.target / nsPerSample
			if hi := &s.slots[s.highSeq&(numSlots-1)]; hi.used && hi.seq == s.highSeq {
				end := hi.ts + int64(hi.samples)
				for p != hi && !hi.event && end-p.ts > tgt+2*int64(p.samples)+blockLen {
					p.used = false
					s.count--
					s.st.Stale++
					s.nextSeq = p.seq + 1
					s.skipEvents()
					p = s.lowest()
				}
			}
			if s.havePlayed {
				s.st.Talkspurts++
			}
			if s.evSilence && p.seq > s.nextSeq {
				// Voice lost at the end of a digit: the events
				// kept count of the sequence numbers.
				s.st.Lost += uint64(p.seq - s.nextSeq)
			}
			s.state = stPlaying
			s.playTS = p.ts
			s.lastEnd = p.ts
			s.nextSeq = p.seq
			s.underrun = 0
			s.evSilence = false
			s.winEnd, s.delay, s.lastDelay = 0, 0, 0
			s.dec.newTalkspurt()
		} else {
			s.state = stIdle
		}
	}
	if s.state != stPlaying {
		return false, s.comfort(out, drain) > 0
	}
	m := s.r.m
	i := 0
	for i < len(out) {
		if s.pcmOff < s.pcmLen {
			n := copy(out[i:], s.pcm[s.pcmOff:s.pcmLen])
			s.pcmOff += n
			i += n
			if s.stagedAdv {
				s.playTS += int64(n / m)
			}
			if s.stagedTent {
				tent = true
			} else {
				real = true
			}
			continue
		}
		p := s.lowest()
		if p == nil {
			if s.cnLeft > 0 {
				// A G.729B silence: the talkspurt ended with its
				// SID; comfort noise follows (below), not
				// concealment.
				s.state = stIdle
				break
			}
			if s.evSilence {
				// A digit: the phone sends events instead of voice.
				// Silence until the voice resumes, which starts a
				// talkspurt; nothing was lost.
				s.state = stIdle
				break
			}
			if drain || s.underrun >= maxUnderrun || s.frame == 0 {
				s.state = stIdle
				break
			}
			n := min(s.frame, maxUnderrun-s.underrun)
			s.dec.conceal(s.buf(n * m))
			s.stage(n*m, true, true)
			s.underrun += n
			s.st.Concealed++
			s.st.Underruns++
			continue
		}
		d := p.ts - s.playTS
		if d > 0 {
			// The packets missing in front of p (k sequence numbers)
			// are concealed for their own duration at most: a larger
			// gap in timestamps is a pause, so p starts a new
			// talkspurt. This bounds concealment by the sequence gap
			// (at most numSlots packets) whatever the timestamps say.
			k := p.seq - s.nextSeq
			limit := s.lastEnd + k*int64(max(s.frame, blockLen))
			if k == 0 || s.playTS >= limit || s.evSilence {
				if p.event {
					// The packets missing before an event are
					// lost; the pause up to it is silence.
					s.st.Lost += uint64(k)
					for range k {
						s.mark(false)
					}
					s.takeEvent(p)
					continue
				}
				// After a pause in timestamps: a new talkspurt. Start
				// it after the target delay from its arrival (this is
				// where the delay adapts).
				if k > 0 {
					s.st.Lost += uint64(k)
					for range k {
						s.mark(false)
					}
					s.nextSeq = p.seq
				}
				s.state = stWaiting
				s.startAt = s.schedule(p.ts, p.arrival)
				if s.startAt <= now {
					s.startAt = now
				}
				break
			}
			// A gap in sequence numbers: loss (or reordering not yet
			// resolved) inside a talkspurt. Conceal up to the packet.
			n := int(min(d, int64(max(s.frame, blockLen)), limit-s.playTS))
			if f, ok := s.dec.(fecDecoder); !ok || p.event || int64(n) != d || !f.recover(s.payload(p.seq)[:p.n], s.buf(n*m)) {
				s.dec.conceal(s.buf(n * m))
			}
			s.stage(n*m, true, false)
			s.st.Concealed++
			continue
		}
		// p is due.
		if p.seq > s.nextSeq {
			s.st.Lost += uint64(p.seq - s.nextSeq)
			for q := s.nextSeq; q < p.seq; q++ {
				s.mark(false)
			}
		}
		if p.event {
			s.takeEvent(p)
			continue
		}
		s.nextSeq = p.seq + 1
		p.used = false
		s.count--
		s.lastEnd = max(s.lastEnd, p.ts+int64(p.samples))
		skip := int(-d)
		if skip >= int(p.samples) {
			s.st.Late++
			s.mark(false)
			continue
		}
		if s.slipPending && s.count > 0 && skip == 0 {
			s.slipPending = false
			s.st.Slips++
			s.playTS += int64(p.samples)
			s.mark(false)
			continue
		}
		if s.strPending && s.frame > 0 {
			s.strPending = false
			s.st.Stretches++
			s.dec.conceal(s.buf(s.frame * m))
			s.stage(s.frame*m, false, false)
			// put p back: it plays after the stretch
			p.used = true
			s.count++
			s.nextSeq = p.seq
			continue
		}
		s.r.lat.add(now + int64(i/m)*nsPerSample - p.arrival)
		// The payload was measured by the decoder of its arrival; the
		// stream may have switched codec since (a payload this decoder
		// does not take gets the largest room).
		pl := s.payload(p.seq)[:p.n]
		ns := s.dec.samples(pl)
		if ns == 0 {
			ns = maxSamples
		}
		n := s.dec.decode(pl, s.buf(ns*m))
		s.frame = n
		s.cnLeft = 0
		s.evSilence = false
		if s.dec.dtx() {
			s.cnLeft = maxComfort * m
		}
		s.stage(n*m, true, false)
		// A late packet plays from where its time has come; its payload
		// may hold fewer samples than its timestamps span.
		s.pcmOff = min(skip, n) * m
		s.underrun = 0
		s.st.Frames++
		s.mark(true)
	}
	if i < len(out) && s.state != stPlaying && s.comfort(out[i:], drain) > 0 {
		tent = true
	} else if i < len(out) {
		clear(out[i:])
	}
	return real, tent
}

// takeEvent plays the event slot p, the lowest buffered: its sequence
// number is accounted for and the stream is silent until the voice
// resumes (see pushEvent).
func (s *stream) takeEvent(p *slot) {
	s.nextSeq = p.seq + 1
	p.used = false
	s.count--
	s.mark(true)
	s.evSilence = true
}

// skipEvents takes the event slots at the head of a stream waiting to
// play: a talkspurt starts with voice. Sequence numbers missing before
// them are not counted (as before any talkspurt).
func (s *stream) skipEvents() {
	for p := s.lowest(); p != nil && p.event; p = s.lowest() {
		s.takeEvent(p)
	}
}

// comfort fills out with comfort noise while the stream is in a G.729B
// silence (within maxComfort of its SID, not draining) and with zeros
// after; it returns the comfort noise samples written. Comfort noise is
// tentative output, like concealment of a buffer that ran dry.
func (s *stream) comfort(out []int16, drain bool) int {
	n := 0
	if s.cnLeft > 0 && !drain {
		n = min(len(out), s.cnLeft)
		s.dec.comfort(out[:n])
		s.cnLeft -= n
		s.st.Comfort++
	}
	clear(out[n:])
	return n
}

// buf returns the decoded-sample buffer holding n samples, grown if it is
// shorter (to 20 ms at least); nothing is staged when it is called.
func (s *stream) buf(n int) []int16 {
	if cap(s.pcm) < n {
		s.pcm = make([]int16, max(n, 2*blockLen*s.r.m))
	}
	return s.pcm[:n]
}

// payload returns the room of sequence number seq's slot in the arena.
func (s *stream) payload(seq int64) []byte {
	i := int(seq & (numSlots - 1))
	return s.arena[i*s.room : (i+1)*s.room]
}

// fit grows the slots' room to hold a payload of n bytes (at most
// maxPayload), moving what is buffered.
func (s *stream) fit(n int) {
	if n <= s.room {
		return
	}
	room := min(maxPayload, max(minPayload, (n+payloadRnd-1)/payloadRnd*payloadRnd))
	arena := make([]byte, numSlots*room)
	if s.room > 0 {
		for i := range s.slots {
			if sl := &s.slots[i]; sl.used && !sl.event {
				copy(arena[i*room:], s.arena[i*s.room:i*s.room+int(sl.n)])
			}
		}
	}
	s.arena, s.room = arena, room
}

func (s *stream) stage(n int, adv, tent bool) {
	s.pcmOff, s.pcmLen, s.stagedAdv, s.stagedTent = 0, n, adv, tent
}

// pending reports whether the stream still has sound to play.
func (s *stream) pending() bool {
	return s.count > 0 || (s.state == stPlaying && s.pcmOff < s.pcmLen)
}
