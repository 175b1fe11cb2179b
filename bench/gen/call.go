package gen

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Codec is an RTP audio codec the generator can encode.
type Codec uint8

// Codecs. The zero value is PCMU.
const (
	PCMU Codec = iota // G.711 µ-law, payload type 0
	PCMA              // G.711 A-law, payload type 8
	G729              // G.729 (annex A/B compatible bit stream), payload type 18
	G722              // G.722 at 64 kbit/s, payload type 9 (RTP clock 8000 Hz)
	Opus              // Opus (mono, 32 kbit/s), dynamic payload type OpusPayloadType (RTP clock 48000 Hz)
)

// OpusPayloadType is the dynamic payload type Opus is sent on unless
// Call.PayloadType says otherwise (WebRTC's usual 111; a=rtpmap:111
// opus/48000/2). A receiver without the SDP needs --codec 111=opus.
const OpusPayloadType = 111

// OpusBitrate is the bit rate the generator encodes Opus at.
const OpusBitrate = 32000

// ClockRate returns the codec's RTP timestamp rate: 48000 for Opus, 8000
// for the others (G.722 too: RFC 3551).
func (c Codec) ClockRate() int {
	if c == Opus {
		return 48000
	}
	return SampleRate
}

// rtpmap returns the codec's SDP encoding, as in a=rtpmap:PT ENCODING.
func (c Codec) rtpmap() string {
	if c == Opus {
		return "opus/48000/2"
	}
	return c.String() + "/8000"
}

// PayloadType returns the codec's static RTP payload type.
func (c Codec) PayloadType() uint8 {
	switch c {
	case PCMA:
		return 8
	case G729:
		return 18
	case G722:
		return 9
	case Opus:
		return OpusPayloadType
	}
	return 0
}

// String returns the codec's RTP encoding name.
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	case G729:
		return "G729"
	case G722:
		return "G722"
	case Opus:
		return "opus"
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// ParseCodec parses a codec name (PCMU, PCMA, G729, G722, opus;
// case-insensitive; also ulaw, alaw, g711u, g711a).
func ParseCodec(s string) (Codec, error) {
	switch strings.ToLower(s) {
	case "pcmu", "ulaw", "g711u", "mulaw":
		return PCMU, nil
	case "pcma", "alaw", "g711a":
		return PCMA, nil
	case "g729", "g729a", "g729b":
		return G729, nil
	case "g722", "g.722":
		return G722, nil
	case "opus":
		return Opus, nil
	}
	return 0, fmt.Errorf("unknown codec %q (want PCMU, PCMA, G729, G722 or opus)", s)
}

// bytesPerSecond is the payload rate at 8 kHz.
func (c Codec) bytesFor(samples int) int {
	switch c {
	case G729:
		return samples / 8 // 10 bytes per 80 samples
	case Opus:
		return opusMaxPacket // variable: the encoder returns the length
	}
	return samples // G.711; G.722 at 64 kbit/s: one byte per 8 kHz sample
}

// SampleRate is the audio sample rate of every codec the generator writes,
// and the RTP clock rate of all but Opus (see Codec.ClockRate). G.722 is
// encoded from it in spandsp's 8 kHz mode (the upper sub-band empty).
const SampleRate = 8000

// DefaultPtime is the packet time used when Call.Ptime is zero.
const DefaultPtime = 20 * time.Millisecond

// DefaultAmplitude is the tone peak used when Audio.Amplitude is zero
// (about -12 dBFS).
const DefaultAmplitude = 8000

// Endpoint is one side of a call: the phone or gateway that sends and
// receives RTP.
type Endpoint struct {
	MAC  [6]byte
	Addr netip.AddrPort // IP address and RTP port
}

// Interval is a span of time relative to the start of a call, From
// inclusive, To exclusive.
type Interval struct {
	From, To time.Duration
}

// Direction describes the RTP stream one side of a call sends.
type Direction struct {
	// SSRC of the stream. Zero means derived from Config.Seed.
	SSRC uint32
	// Seq is the sequence number of the first packet.
	Seq uint16
	// Timestamp is the RTP timestamp of the first packet.
	Timestamp uint32
	// ToneHz is the frequency of a sine tone; 0 sends digital silence
	// (PCMU 0xFF, PCMA 0xD5). Ignored when PCM is set.
	ToneHz float64
	// Amplitude is the tone's peak; 0 means DefaultAmplitude.
	Amplitude int16
	// PCM, when non-nil, is the audio sent instead of a tone, 8 kHz mono,
	// sample 0 at the start of the call; after its end the side sends
	// digital silence. Write does not modify it.
	PCM []int16
	// Holds are intervals, relative to the call start, during which this
	// side sends nothing.
	Holds []Interval
	// Events are DTMF digits this side sends as RFC 4733 telephone
	// events, in order of At, not overlapping.
	Events []Event
}

// Call is one call between an agent's phone (or agent gateway) and the far
// side. It produces two RTP streams: FromAgent (agent → far) and ToAgent
// (far → agent).
type Call struct {
	// AgentID labels the call in summaries (e.g. "1001"); not on the wire.
	AgentID string
	Agent   Endpoint
	Far     Endpoint
	// VLAN is the 802.1Q VLAN ID; 0 writes untagged frames (unless
	// OuterVLAN is set). Priority is the 802.1p priority of that tag.
	VLAN     uint16
	Priority uint8
	// OuterVLAN, when non-zero, adds an 802.1ad (QinQ, TPID 0x88a8) service
	// tag outside the 802.1Q tag.
	OuterVLAN     uint16
	OuterPriority uint8
	// TOS is the IPv4 ToS byte or IPv6 traffic class (phones send 0xB8).
	TOS   uint8
	Codec Codec
	// VAD enables G.729 annex B voice activity detection: silence is sent
	// as SID frames and then not at all (no sequence numbers used), and the
	// first packet after a silent period carries the marker bit.
	VAD bool
	// Ptime is the packet time; 0 means DefaultPtime. It must be a whole
	// number of samples (125 µs), and of 10 ms frames for G.729.
	Ptime time.Duration
	// Start is the offset of the call's first packet from Config.Epoch.
	Start time.Duration
	// Duration of the call; each side sends Duration/Ptime packets minus
	// those in hold intervals.
	Duration  time.Duration
	FromAgent Direction
	ToAgent   Direction
	// SRTP, when non-nil, encrypts both directions with SRTP.
	SRTP *SRTPKeys
	// PayloadType, when non-zero, is the dynamic RTP payload type (96 to
	// 127) the codec is sent on instead of its static one; the SDP maps
	// it (a=rtpmap:96 G729/8000). It must not be EventPayloadType.
	PayloadType uint8
}

// EventPayloadType is the dynamic payload type of the RFC 4733
// telephone events a Direction's Events are sent on; the SDP maps it
// (a=rtpmap:101 telephone-event/8000).
const EventPayloadType = 101

// DefaultEventDuration is an Event's duration when its Duration is zero.
const DefaultEventDuration = 100 * time.Millisecond

// Event is a DTMF digit sent as RFC 4733 telephone events on
// EventPayloadType, in the stream's SSRC and sequence numbers, in place
// of the audio of the packet times it covers: one packet per packet time
// with the duration so far (the first with the marker bit), then the
// final one with the end bit sent three times in all. Every packet of an
// event carries the RTP timestamp of its start.
type Event struct {
	// At is the event's start relative to the call start; it is rounded
	// down to a packet time.
	At time.Duration
	// Digit is one of 0-9, *, #, A-D.
	Digit byte
	// Duration is how long the digit is pressed, rounded up to packet
	// times; 0 means DefaultEventDuration.
	Duration time.Duration
}

// eventCode returns the RFC 4733 event code of a DTMF digit.
func eventCode(d byte) (uint8, bool) {
	switch {
	case d >= '0' && d <= '9':
		return d - '0', true
	case d == '*':
		return 10, true
	case d == '#':
		return 11, true
	case d >= 'A' && d <= 'D':
		return 12 + d - 'A', true
	}
	return 0, false
}

// rtpPayloadType returns the payload type the call's audio is sent on.
func (c *Call) rtpPayloadType() uint8 {
	if c.PayloadType != 0 {
		return c.PayloadType
	}
	return c.Codec.PayloadType()
}

// hasEvents reports whether either side of the call sends events.
func (c *Call) hasEvents() bool { return len(c.FromAgent.Events) > 0 || len(c.ToAgent.Events) > 0 }

// SRTPKeys are the SDES master keys of a call sent as SRTP with the
// AES_CM_128_HMAC_SHA1_80 suite (RFC 3711, RFC 4568): each is 30 bytes, a
// 16-byte master key then a 14-byte master salt. Each direction uses the
// key of its sender; the RTP header stays in the clear and a 10-byte
// authentication tag follows the encrypted payload.
type SRTPKeys struct {
	FromAgent, ToAgent []byte
	// NotInSDP leaves the keys out of the SDP: the media stays RTP/SAVP
	// but without a=crypto lines, as when the keys went over SIP/TLS and
	// the SDP seen on the SPAN came from elsewhere (or was stripped).
	NotInSDP bool
}

// SRTPSuite is the crypto suite of SRTPKeys, as an SDP a=crypto line
// names it.
const SRTPSuite = "AES_CM_128_HMAC_SHA1_80"

// srtpKeyLen is the length of an SRTPKeys key: master key and salt.
const srtpKeyLen = 30

func (c *Call) ptime() time.Duration {
	if c.Ptime == 0 {
		return DefaultPtime
	}
	return c.Ptime
}

// samplesPerPacket returns the samples (at SampleRate) per packet; the
// RTP timestamp advances by this times Codec.ClockRate()/SampleRate.
func (c *Call) samplesPerPacket() int {
	return int(c.ptime() * SampleRate / time.Second)
}

// slots returns the number of packet times in the call.
func (c *Call) slots() int {
	return int(c.Duration / c.ptime())
}

func (c *Call) validate(i int) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w %d (agent %q): %s", ErrBadCall, i, c.AgentID, fmt.Sprintf(format, args...))
	}
	a, f := c.Agent.Addr, c.Far.Addr
	if !a.Addr().IsValid() || !f.Addr().IsValid() {
		return bad("agent address %v or far address %v is not set", a, f)
	}
	if a.Addr().Unmap().Is4() != f.Addr().Unmap().Is4() {
		return bad("agent address %v and far address %v are of different IP families", a, f)
	}
	if a.Port() == 0 || f.Port() == 0 {
		return bad("RTP port 0 in %v or %v", a, f)
	}
	if c.VLAN > 4094 || c.OuterVLAN > 4094 {
		return bad("VLAN ID %d or outer VLAN ID %d is above 4094", c.VLAN, c.OuterVLAN)
	}
	if c.Priority > 7 || c.OuterPriority > 7 {
		return bad("priority %d or outer priority %d is above 7", c.Priority, c.OuterPriority)
	}
	if c.Codec > Opus {
		return bad("unknown codec %d", c.Codec)
	}
	if pt := c.PayloadType; pt != 0 && (pt < 96 || pt > 127 || pt == EventPayloadType) {
		return bad("payload type %d is not a dynamic type from 96 to 127 other than %d (telephone-event)", pt, EventPayloadType)
	}
	p := c.ptime()
	if p <= 0 || p%(time.Second/SampleRate) != 0 {
		return bad("packet time %v is not a positive multiple of 125µs", p)
	}
	if c.Codec == G729 && p%(10*time.Millisecond) != 0 {
		return bad("packet time %v is not a multiple of 10ms, the G.729 frame", p)
	}
	if c.Codec == Opus && !slices.Contains([]time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 60 * time.Millisecond}, p) {
		return bad("packet time %v is not 10, 20, 40 or 60 ms, an Opus frame", p)
	}
	if c.Codec.bytesFor(c.samplesPerPacket()) > maxPayload {
		return bad("packet time %v makes a payload above %d bytes", p, maxPayload)
	}
	if c.Duration <= 0 || c.Start < 0 {
		return bad("duration %v must be positive and start %v not negative", c.Duration, c.Start)
	}
	if c.SRTP != nil && (len(c.SRTP.FromAgent) != srtpKeyLen || len(c.SRTP.ToAgent) != srtpKeyLen) {
		return bad("SRTP keys of %d and %d bytes, want %d (master key and salt)", len(c.SRTP.FromAgent),
			len(c.SRTP.ToAgent), srtpKeyLen)
	}
	for _, d := range []*Direction{&c.FromAgent, &c.ToAgent} {
		if d.ToneHz < 0 || d.ToneHz >= SampleRate/2 {
			return bad("tone %v Hz is outside [0, 4000)", d.ToneHz)
		}
		if d.Amplitude < 0 {
			return bad("amplitude %d is negative", d.Amplitude)
		}
		for _, h := range d.Holds {
			if h.From < 0 || h.To < h.From {
				return bad("hold interval [%v, %v) is not a valid interval", h.From, h.To)
			}
		}
		end := time.Duration(-1)
		for _, e := range d.Events {
			if _, ok := eventCode(e.Digit); !ok {
				return bad("event digit %q is not one of 0-9, *, #, A-D", e.Digit)
			}
			if e.At < 0 || e.Duration < 0 || e.At <= end {
				return bad("event %q at %v (for %v) is negative or not after the previous event", e.Digit, e.At, e.Duration)
			}
			end = e.At + e.duration()
		}
	}
	return nil
}

const maxPayload = 1400

// BuildConfig describes N similar calls for Build. The zero value, with
// Calls set, gives untagged PCMU calls of 10 s on IPv4 with agent 1001's
// phone sending a 1 kHz tone.
type BuildConfig struct {
	Calls    int
	VLAN     uint16 // 0: untagged
	Priority uint8  // 802.1p priority of the VLAN tag
	// OuterVLAN adds a QinQ service tag when non-zero.
	OuterVLAN uint16
	Codec     Codec
	Ptime     time.Duration // 0: DefaultPtime
	Duration  time.Duration // 0: 10 s
	// Spread staggers the call starts evenly over this span: call i starts
	// at i×Spread/Calls. 0 means one packet time, so packets of different
	// calls interleave as on a real link; negative starts all at once.
	Spread time.Duration
	// AgentTone is the tone agent FirstAgentID's phone sends; 0 means
	// 1000 Hz. The far side of that call sends digital silence. Every other
	// call carries two tones of its own, different from AgentTone.
	AgentTone float64
	// FirstAgentID is the agent ID of call 0; the others count up. 0 means
	// 1001.
	FirstAgentID int
	// IPv6 uses fd00:10::/64 for phones and fd00:20::/64 for gateways.
	IPv6 bool
	// FixedSeq starts every stream at StartSeq (e.g. 65500 to cross the
	// wrap soon); otherwise start sequence numbers, timestamps and SSRCs are
	// drawn from Seed.
	FixedSeq bool
	StartSeq uint16
	Seed     uint64
}

// Build returns cfg.Calls calls with distinct addresses: call i (from 0)
// is agent FirstAgentID+i whose phone is 10.10.a.b (a = i/250, b = i%250+1,
// MAC 02:00:0a:0a:a:b, RTP port 20000+2i) talking to the gateway 10.20.a.b
// (MAC 02:00:0a:14:a:b, RTP port 30000+2i). Tones are listed by
// Summary. Build returns an error naming a bad value.
func Build(cfg BuildConfig) ([]Call, error) {
	if cfg.Calls <= 0 || cfg.Calls > 250*250 {
		return nil, fmt.Errorf("%w: number of calls %d is outside [1, 62500]", ErrBadCall, cfg.Calls)
	}
	if cfg.Duration == 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.AgentTone == 0 {
		cfg.AgentTone = 1000
	}
	if cfg.FirstAgentID == 0 {
		cfg.FirstAgentID = 1001
	}
	ptime := cfg.Ptime
	if ptime == 0 {
		ptime = DefaultPtime
	}
	spread := cfg.Spread
	if spread == 0 {
		spread = ptime
	}
	if spread < 0 {
		spread = 0
	}
	rng := newRand(cfg.Seed, 0xb01d)
	calls := make([]Call, cfg.Calls)
	for i := range calls {
		a, b := byte(i/250), byte(i%250+1)
		var agentIP, farIP netip.Addr
		if cfg.IPv6 {
			agentIP = netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x10, 14: a, 15: b})
			farIP = netip.AddrFrom16([16]byte{0xfd, 0, 0, 0x20, 14: a, 15: b})
		} else {
			agentIP = netip.AddrFrom4([4]byte{10, 10, a, b})
			farIP = netip.AddrFrom4([4]byte{10, 20, a, b})
		}
		c := Call{
			AgentID:   fmt.Sprint(cfg.FirstAgentID + i),
			Agent:     Endpoint{MAC: [6]byte{2, 0, 10, 10, a, b}, Addr: netip.AddrPortFrom(agentIP, uint16(20000+2*i))},
			Far:       Endpoint{MAC: [6]byte{2, 0, 10, 20, a, b}, Addr: netip.AddrPortFrom(farIP, uint16(30000+2*i))},
			VLAN:      cfg.VLAN,
			Priority:  cfg.Priority,
			OuterVLAN: cfg.OuterVLAN,
			TOS:       0xb8,
			Codec:     cfg.Codec,
			Ptime:     cfg.Ptime,
			Start:     (spread * time.Duration(i) / time.Duration(cfg.Calls)).Truncate(time.Microsecond),
			Duration:  cfg.Duration,
		}
		for _, d := range []*Direction{&c.FromAgent, &c.ToAgent} {
			d.SSRC = uint32(rng.Uint64()) | 1
			d.Timestamp = uint32(rng.Uint64())
			if cfg.FixedSeq {
				d.Seq = cfg.StartSeq
			} else {
				d.Seq = uint16(rng.Uint64())
			}
		}
		if i == 0 {
			c.FromAgent.ToneHz = cfg.AgentTone
		} else {
			c.FromAgent.ToneHz = otherTone(2*i-2, cfg.AgentTone)
			c.ToAgent.ToneHz = otherTone(2*i-1, cfg.AgentTone)
		}
		calls[i] = c
	}
	return calls, nil
}

// otherTone returns the k-th tone of the calls other than the monitored
// agent's: 300 Hz upwards in 25 Hz steps, wrapping below 3500 Hz, skipping
// within 10 Hz of avoid.
func otherTone(k int, avoid float64) float64 {
	f := 300 + 25*float64(k%128)
	if f > avoid-10 && f < avoid+10 {
		f = avoid + 10
	}
	return f
}

func (e Event) duration() time.Duration {
	if e.Duration == 0 {
		return DefaultEventDuration
	}
	return e.Duration
}

// eventAt returns the event of d that covers packet slot k of a stream
// with packet time ptime, its first slot and its number of slots.
func (d *Direction) eventAt(k int, ptime time.Duration) (ev *Event, first, n int) {
	for i := range d.Events {
		e := &d.Events[i]
		first := int(e.At / ptime)
		n := max(1, int((e.duration()+ptime-1)/ptime))
		if k >= first && k < first+n {
			return e, first, n
		}
	}
	return nil, 0, 0
}
