package gen

import (
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/silentmon/silentmon/capture/capturetest"
)

// ScenarioSpec is a call-flow scenario ready to write: the capture's
// Config and the Manifest that describes it. Scenario fills the
// manifest's expected counts and lost spans by generating the capture
// once, so Write produces exactly what the manifest says. A ScenarioSpec
// may be read concurrently; Write and IdealAudio do not modify it.
type ScenarioSpec struct {
	Name     string
	Config   Config
	Manifest *Manifest

	result *Result // the recorded run behind the manifest
}

// ScenarioInfo names a scenario with a one-line summary.
type ScenarioInfo struct {
	Name    string
	Summary string
	// NeedsG729 is true when the scenario needs a build with bcg729.
	NeedsG729 bool
	// SIP is true when the scenario is always written with its SIP
	// signalling (the scenarios of SIPScenarioNames).
	SIP bool
}

type scenarioDef struct {
	ScenarioInfo
	duration time.Duration
	build    func(b *builder)
}

// ScenarioNames returns the names of the call-flow scenarios written
// without SIP by Scenario (ScenarioWithSIP adds their signalling), in a
// fixed order.
func ScenarioNames() []string {
	names := make([]string, len(scenarioDefs))
	for i := range scenarioDefs {
		names[i] = scenarioDefs[i].Name
	}
	return names
}

// SIPScenarioNames returns the names of the scenarios that always carry
// SIP signalling (sip-inbound-outbound, sip-mobile-gateway,
// sip-softphone-ip-change, sip-tcp-split, sip-srtp-sdes), in a fixed
// order.
func SIPScenarioNames() []string {
	names := make([]string, len(sipScenarioDefs))
	for i := range sipScenarioDefs {
		names[i] = sipScenarioDefs[i].Name
	}
	return names
}

// Scenarios returns every scenario's name and summary, those of
// ScenarioNames then those of SIPScenarioNames.
func Scenarios() []ScenarioInfo {
	var out []ScenarioInfo
	for _, defs := range [][]scenarioDef{scenarioDefs, sipScenarioDefs} {
		for i := range defs {
			out = append(out, defs[i].ScenarioInfo)
		}
	}
	return out
}

// findScenario returns the definition of the named scenario.
func findScenario(name string) *scenarioDef {
	for _, defs := range [][]scenarioDef{scenarioDefs, sipScenarioDefs} {
		if i := slices.IndexFunc(defs, func(d scenarioDef) bool { return d.Name == name }); i >= 0 {
			return &defs[i]
		}
	}
	return nil
}

// Scenario returns the named call-flow scenario. The seed draws SSRCs,
// sequence numbers, RTP timestamps, transaction IDs and impairments; the
// timeline, addresses and tones are fixed by the scenario. The scenarios
// of ScenarioNames have no SIP signalling here (see ScenarioWithSIP);
// those of SIPScenarioNames always have it. An unknown name returns an
// error wrapping ErrUnknownScenario; a G.729 scenario in a build without
// bcg729 returns one wrapping ErrCodecUnavailable.
func Scenario(name string, seed uint64) (*ScenarioSpec, error) {
	return scenario(name, seed, ScenarioOptions{})
}

// ScenarioWithSIP returns the named scenario with its SIP signalling
// written into the same capture: each agent phone's REGISTER and 200 OK
// before its first call, and per call an INVITE with the SDP offer, 100
// Trying, 180 Ringing, 200 OK with the SDP answer, ACK, re-INVITEs for
// holds and media changes, REFER and NOTIFY for transfers, and BYE and
// 200 OK after the last RTP packet, between the phone and the PBX
// (PBXAddr) on UDP port 5060. The SDP gives the addresses and ports of
// the RTP the scenario writes, and its RTP is byte for byte what Scenario
// writes. Manifest.SIP holds the signalling truth and each signalled leg
// its Call-ID. Errors are those of Scenario.
func ScenarioWithSIP(name string, seed uint64) (*ScenarioSpec, error) {
	return scenario(name, seed, ScenarioOptions{SIP: true})
}

// ScenarioOptions are the variants of a scenario ScenarioWith writes. The
// zero value is the scenario as Scenario writes it.
type ScenarioOptions struct {
	// SIP writes the signalling, as ScenarioWithSIP.
	SIP bool
	// Codec, when not nil, is every call's codec instead of the
	// scenario's (G729 needs a build with bcg729).
	Codec *Codec
	// PayloadType, when non-zero, sends every call's audio on this
	// dynamic payload type (96 to 127, not 101), which the SDP maps to the
	// codec: G.729 on 96 with a=rtpmap:96 G729/8000.
	PayloadType uint8
	// Digits are DTMF digits agent 1001's phone sends in its first call
	// as RFC 4733 telephone events on payload type 101 (with
	// a=rtpmap:101 telephone-event/8000 in its SDP): 100 ms each, one every
	// 300 ms from 1 s into the call.
	Digits string
	// HideSRTPKeys leaves the SDES keys of SRTP calls out of the SDP: the
	// media stays RTP/SAVP without a=crypto lines, as when the keys went
	// over SIP/TLS, so the SRTP cannot be decrypted from the capture.
	HideSRTPKeys bool
}

// ScenarioWith returns the named scenario with the variants of o. Errors
// are those of Scenario, and one wrapping ErrBadCall for a bad option.
func ScenarioWith(name string, seed uint64, o ScenarioOptions) (*ScenarioSpec, error) {
	return scenario(name, seed, o)
}

// applyOptions changes the scenario's calls as o says.
func (b *builder) applyOptions(o ScenarioOptions) error {
	first := -1
	for i := range b.cfg.Calls {
		c := &b.cfg.Calls[i]
		if o.Codec != nil {
			c.Codec = *o.Codec
		}
		c.PayloadType = o.PayloadType
		if c.SRTP != nil && o.HideSRTPKeys {
			k := *c.SRTP
			k.NotInSDP = true
			c.SRTP = &k
		}
		if first < 0 && c.AgentID == "1001" {
			first = i
		}
	}
	if o.Digits == "" {
		return nil
	}
	if first < 0 {
		return fmt.Errorf("%w: the scenario has no call of agent 1001 to send digits %q in", ErrBadCall, o.Digits)
	}
	c := &b.cfg.Calls[first]
	for i := range len(o.Digits) {
		c.FromAgent.Events = append(c.FromAgent.Events, Event{At: time.Second + time.Duration(i)*300*time.Millisecond, Digit: o.Digits[i]})
	}
	if end := c.FromAgent.Events[len(o.Digits)-1].At + DefaultEventDuration; end > c.Duration {
		return fmt.Errorf("%w: digits %q need %v of agent 1001's first call, which lasts %v", ErrBadCall, o.Digits, end, c.Duration)
	}
	b.markEvents(first)
	return nil
}

// markEvents takes the packet times of call idx's events out of its
// agent-side legs' active spans and records them as the legs' events:
// the phone sends the digit instead of the voice there.
func (b *builder) markEvents(idx int) {
	c := &b.cfg.Calls[idx]
	p := c.ptime()
	for _, e := range c.FromAgent.Events {
		k := int(e.At / p)
		n := max(1, int((e.duration()+p-1)/p))
		from := (c.Start + time.Duration(k)*p).Milliseconds()
		to := (c.Start + time.Duration(k+n)*p).Milliseconds()
		for i := range b.m.Legs {
			l := &b.m.Legs[i]
			if l.stream != 2*idx {
				continue
			}
			var rest []Span
			for _, sp := range l.Active {
				if sp.ToMS <= from || sp.FromMS >= to {
					rest = append(rest, sp)
					continue
				}
				l.Events = append(l.Events, Span{max(sp.FromMS, from), min(sp.ToMS, to)})
				if sp.FromMS < from {
					rest = append(rest, Span{sp.FromMS, from})
				}
				if sp.ToMS > to {
					rest = append(rest, Span{to, sp.ToMS})
				}
			}
			l.Active = rest
		}
	}
}

func scenario(name string, seed uint64, o ScenarioOptions) (*ScenarioSpec, error) {
	withSIP := o.SIP
	def := findScenario(name)
	if def == nil {
		return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownScenario, name,
			strings.Join(append(ScenarioNames(), SIPScenarioNames()...), ", "))
	}
	b := &builder{
		seed:  seed,
		rng:   newRand(seed, 0x5ce7a210),
		dur:   def.duration,
		tones: slices.Clone(tonePalette),
		m: &Manifest{
			Scenario: def.Name, Description: def.Summary, Epoch: DefaultEpoch,
			DurationMS: def.duration.Milliseconds(),
			Monitored:  []MonitoredAgent{{Agent: "1001", Endpoints: []string{"10.10.0.1"}}},
			Expected:   map[string]StreamCounts{},
		},
	}
	b.cfg.Seed = seed
	b.cfg.Epoch = DefaultEpoch
	def.build(b)
	b.background()
	if err := b.applyOptions(o); err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	if withSIP || def.SIP {
		if f := scenarioSIP[name]; f != nil {
			f(b)
		}
		if err := b.writeSIP(); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", name, err)
		}
	}
	spec := &ScenarioSpec{Name: def.Name, Config: b.cfg, Manifest: b.m}
	rec := spec.Config
	rec.Record = true
	res, err := Write(io.Discard, &rec)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", name, err)
	}
	spec.result = res
	for i := range spec.Manifest.Legs {
		l := &spec.Manifest.Legs[i]
		st := &res.Streams[l.stream]
		spec.Manifest.Expected[l.Name] = StreamCounts{Packets: st.Written, Sent: st.Sent, Lost: st.Lost,
			Reordered: st.Reordered, Duplicates: st.Duplicates}
		l.Lost = spec.lostSpans(l.stream)
	}
	return spec, nil
}

// Write writes the scenario's capture to w as pcap; the bytes depend only
// on the scenario's name and seed.
func (s *ScenarioSpec) Write(w io.Writer) (*Result, error) {
	cfg := s.Config
	return Write(w, &cfg)
}

// WriteFile writes the scenario's capture to a new file at path (0644).
func (s *ScenarioSpec) WriteFile(path string) (*Result, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	res, err := s.Write(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return res, err
}

// streamDir returns the call and direction of Result stream i.
func (s *ScenarioSpec) streamDir(i int) (*Call, *Direction) {
	c := &s.Config.Calls[i/2]
	if i%2 == 0 {
		return c, &c.FromAgent
	}
	return c, &c.ToAgent
}

// slotOf returns the packet-time index of a packet of stream i from its
// RTP timestamp.
func (s *ScenarioSpec) slotOf(i int, ts uint32) int {
	c, d := s.streamDir(i)
	return int((ts - d.Timestamp) / uint32(c.samplesPerPacket()*c.Codec.ClockRate()/SampleRate))
}

func (s *ScenarioSpec) lostSpans(i int) []Span {
	c, _ := s.streamDir(i)
	var out []Span
	for _, p := range s.result.Streams[i].LostPackets {
		from := c.Start + time.Duration(s.slotOf(i, p.Timestamp))*c.ptime()
		sp := Span{from.Milliseconds(), (from + c.ptime()).Milliseconds()}
		if n := len(out); n > 0 && out[n-1].ToMS >= sp.FromMS {
			out[n-1].ToMS = sp.ToMS
			continue
		}
		out = append(out, sp)
	}
	return out
}

// IdealAudio returns what a perfect monitoring session of agent renders:
// the source audio of every stream that carries a monitored leg of the
// agent, each packet the generator wrote placed at its nominal time and
// summed with saturation, with silence where nothing was sent or a
// packet was lost. It also returns the capture time, from the epoch, of
// sample 0 (the first such packet). G.729 packets contribute the source
// audio of their speech frames, not the codec's output.
func (s *ScenarioSpec) IdealAudio(agent string) ([]int16, time.Duration, error) {
	return s.idealAudio(func(l *Leg) bool { return l.Agent == agent && l.Monitored })
}

// idealAudio renders the streams that carry at least one leg for which
// want returns true.
func (s *ScenarioSpec) idealAudio(want func(l *Leg) bool) ([]int16, time.Duration, error) {
	streams := map[int]bool{}
	for i := range s.Manifest.Legs {
		if want(&s.Manifest.Legs[i]) {
			streams[s.Manifest.Legs[i].stream] = true
		}
	}
	if len(streams) == 0 {
		return nil, 0, fmt.Errorf("scenario %s: no leg to render", s.Name)
	}
	first, last := time.Duration(1<<62), time.Duration(0)
	for i := range streams {
		c, _ := s.streamDir(i)
		for _, p := range s.result.Streams[i].Packets {
			at := c.Start + time.Duration(s.slotOf(i, p.Timestamp))*c.ptime()
			first, last = min(first, at), max(last, at+c.ptime())
		}
	}
	if first > last {
		return nil, 0, fmt.Errorf("scenario %s: the legs to render have no packets", s.Name)
	}
	sum := make([]int32, (last-first)*SampleRate/time.Second)
	for i := range streams {
		c, d := s.streamDir(i)
		src := audioSource{dir: d}
		spp := c.samplesPerPacket()
		pcm := make([]int16, spp)
		for _, p := range s.result.Streams[i].Packets {
			if p.Duplicate || p.Event {
				continue
			}
			k := s.slotOf(i, p.Timestamp)
			src.fill(pcm, int64(k)*int64(spp))
			n := spp
			if c.Codec == G729 {
				n = min(spp, len(p.Payload)/10*80) // speech frames only
			}
			at := int((c.Start + time.Duration(k)*c.ptime() - first) * SampleRate / time.Second)
			for j := 0; j < n && at+j < len(sum); j++ {
				sum[at+j] += int32(pcm[j])
			}
		}
	}
	out := make([]int16, len(sum))
	for i, v := range sum {
		out[i] = int16(max(-32768, min(32767, v)))
	}
	return out, first, nil
}

// tonePalette holds the leg tones: at least 150 Hz apart, between 300 and
// 3400 Hz, and no multiple (2nd to 11th harmonic) of one within 40 Hz of
// another. Multiples of 10 Hz make a whole number of periods in a 100 ms
// window.
var tonePalette = []float64{350, 500, 650, 800, 950, 1100, 1250, 1440, 1640, 1790, 2040, 2240, 2540, 2690, 2920, 3070, 3340}

// Addresses used by the scenarios: agent 1000+n's phone is 10.10.0.n,
// customer gateway n is 10.20.0.n (Build's plan), media resources (music
// on hold, conference bridge) are 10.30.0.x.
func phone(n byte, port uint16) Endpoint {
	return Endpoint{MAC: [6]byte{2, 0, 10, 10, 0, n}, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 10, 0, n}), port)}
}

func gateway(n byte, port uint16) Endpoint {
	return Endpoint{MAC: [6]byte{2, 0, 10, 20, 0, n}, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 20, 0, n}), port)}
}

func mediaServer(n byte, port uint16) Endpoint {
	return Endpoint{MAC: [6]byte{2, 0, 10, 30, 0, n}, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 30, 0, n}), port)}
}

func ms(v int) time.Duration { return time.Duration(v) * time.Millisecond }

func iv(fromMS, toMS int) Interval { return Interval{ms(fromMS), ms(toMS)} }

// voice is one tone on a stream, sent during spans (absolute offsets; nil
// means whenever the stream sends).
type voice struct {
	name  string
	tone  float64
	spans []Interval
}

// side describes what one direction of a call carries.
type side struct {
	agent     string
	dir       string
	monitored bool
	voices    []voice
	holds     []Interval // absolute offsets
	off       bool       // sends nothing at all
}

// builder assembles a scenario's calls and manifest.
type builder struct {
	m     *Manifest
	cfg   Config
	rng   *rand.Rand
	seed  uint64
	dur   time.Duration
	tones []float64

	// SIP: dialogs and registrations defined by the scenario, and the
	// calls that carry no signalling of their own (a stray packet).
	dialogs []*dialogDef
	regs    []registration
	noSIP   map[int]bool
}

// tone returns the next unused tone of the palette.
func (b *builder) tone() float64 {
	t := b.tones[0]
	b.tones = b.tones[1:]
	return t
}

// lastTone returns the highest unused tone of the palette.
func (b *builder) lastTone() float64 {
	n := len(b.tones) - 1
	t := b.tones[n]
	b.tones = b.tones[:n]
	return t
}

// leg returns a side carrying one voice with a new tone.
func (b *builder) leg(agent, dir, name string, monitored bool, holds ...Interval) side {
	return side{agent: agent, dir: dir, monitored: monitored, voices: []voice{{name: name, tone: b.tone()}}, holds: holds}
}

// mon is leg for agent 1001, monitored.
func (b *builder) mon(dir, name string, holds ...Interval) side {
	return b.leg("1001", dir, name, true, holds...)
}

// monCall adds c, a call of agent 1001, with both legs monitored: the
// agent's named from, the far side's to, both held over holds.
func (b *builder) monCall(c Call, from, to string, holds ...Interval) {
	b.add(c, b.mon(FromAgent, from, holds...), b.mon(ToAgent, to, holds...))
}

// agentCall is a call from agent 1001's phone, 10.10.0.1 port port, on
// voice VLAN 85.
func agentCall(port uint16, far Endpoint, start, dur time.Duration) Call {
	return newCall("1001", phone(1, port), far, 85, start, dur)
}

// newCall returns a call on the voice VLAN with phone-like settings.
func newCall(agentID string, agent, far Endpoint, vlan uint16, start, dur time.Duration) Call {
	c := Call{AgentID: agentID, Agent: agent, Far: far, VLAN: vlan, TOS: 0xb8, Start: start, Duration: dur}
	if vlan != 0 {
		c.Priority = 5
	}
	return c
}

// add appends c with the two sides and their legs and returns its index
// in Config.Calls.
func (b *builder) add(c Call, from, to side) int {
	idx := len(b.cfg.Calls)
	if from.off || to.off {
		if b.noSIP == nil {
			b.noSIP = map[int]bool{}
		}
		b.noSIP[idx] = true
	}
	for d, sd := range []*side{&from, &to} {
		dir := &c.FromAgent
		src, dst := c.Agent, c.Far
		if d == 1 {
			dir = &c.ToAgent
			src, dst = c.Far, c.Agent
		}
		dir.SSRC = uint32(b.rng.Uint64()) | 1
		dir.Seq = uint16(b.rng.Uint64())
		dir.Timestamp = uint32(b.rng.Uint64())
		if sd.off {
			dir.Holds = []Interval{{0, c.Duration}}
			continue
		}
		for _, h := range sd.holds {
			dir.Holds = append(dir.Holds, Interval{h.From - c.Start, h.To - c.Start})
		}
		sending := sendingSpans(&c, dir)
		if len(sd.voices) == 1 && sd.voices[0].spans == nil {
			dir.ToneHz = sd.voices[0].tone
		} else {
			dir.PCM = make([]int16, int(c.Duration*SampleRate/time.Second))
			for _, v := range sd.voices {
				for _, sp := range v.spans {
					a := max(0, int((sp.From-c.Start)*SampleRate/time.Second))
					z := min(len(dir.PCM), int((sp.To-c.Start)*SampleRate/time.Second))
					if a >= z {
						continue
					}
					t := Tone(v.tone, 0, int64(a), z-a)
					for i, s := range t {
						dir.PCM[a+i] = int16(max(-32768, min(32767, int32(dir.PCM[a+i])+int32(s))))
					}
				}
			}
		}
		var vlan *uint16
		if c.VLAN != 0 {
			v := c.VLAN
			vlan = &v
		}
		for _, v := range sd.voices {
			active := sending
			if v.spans != nil {
				active = intersect(sending, v.spans)
			}
			l := Leg{Agent: sd.agent, Name: v.name, Direction: sd.dir, ToneHz: v.tone, Amplitude: DefaultAmplitude,
				SSRC: fmt.Sprintf("0x%08x", dir.SSRC), Src: src.Addr.String(), Dst: dst.Addr.String(), VLAN: vlan,
				Monitored: sd.monitored, Codec: c.Codec.String(), stream: 2*idx + d}
			if c.SRTP != nil {
				key := c.SRTP.FromAgent
				if d == 1 {
					key = c.SRTP.ToAgent
				}
				l.SRTP = &LegSRTP{Suite: SRTPSuite, Key: base64.StdEncoding.EncodeToString(key)}
			}
			for _, a := range active {
				l.Active = append(l.Active, Span{a.From.Milliseconds(), a.To.Milliseconds()})
			}
			b.m.Legs = append(b.m.Legs, l)
		}
	}
	b.cfg.Calls = append(b.cfg.Calls, c)
	return idx
}

// sendingSpans returns the absolute intervals during which dir sends
// packets (ignoring discontinuous transmission), from its slots.
func sendingSpans(c *Call, dir *Direction) []Interval {
	var out []Interval
	p := c.ptime()
	for k := range c.slots() {
		off := time.Duration(k) * p
		held := false
		for _, h := range dir.Holds {
			if off >= h.From && off < h.To {
				held = true
			}
		}
		if held {
			continue
		}
		at := c.Start + off
		if n := len(out); n > 0 && out[n-1].To == at {
			out[n-1].To = at + p
			continue
		}
		out = append(out, Interval{at, at + p})
	}
	return out
}

// intersect returns the intersection of two sorted lists of intervals.
func intersect(a, b []Interval) []Interval {
	var out []Interval
	for _, x := range a {
		for _, y := range b {
			f, t := max(x.From, y.From), min(x.To, y.To)
			if f < t {
				out = append(out, Interval{f, t})
			}
		}
	}
	slices.SortFunc(out, func(x, y Interval) int { return int(x.From - y.From) })
	return out
}

// background adds what every scenario has besides its own call flow: an
// unrelated call of agent 1050 (not monitored) and non-RTP UDP traffic:
// the monitored phone's DNS look-ups (10.10.0.1:51234 ↔ 10.0.0.53:53, on
// the voice VLAN 85, every 2 s) and a PC's NBNS broadcasts
// (10.10.0.101:137 → 10.10.255.255:137 on the data VLAN 10, every 1.5 s).
// Their transaction IDs often start like an RTP version 2 header.
func (b *builder) background() {
	c := newCall("1050", phone(50, 20100), gateway(50, 30100), 85, ms(200), b.dur-ms(400))
	b.add(c, b.otherLeg("1050", FromAgent, "other-call-agent"), b.otherLeg("1050", ToAgent, "other-call-far"))

	dnsPhone := phone(1, 51234)
	dns := Endpoint{MAC: [6]byte{2, 0, 10, 0, 0, 53}, Addr: netip.MustParseAddrPort("10.0.0.53:53")}
	pc := Endpoint{MAC: [6]byte{2, 0, 10, 10, 0, 101}, Addr: netip.MustParseAddrPort("10.10.0.101:137")}
	bcast := Endpoint{MAC: [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Addr: netip.MustParseAddrPort("10.10.255.255:137")}
	var nq, nb int
	for at := ms(500); at < b.dur; at += 2 * time.Second {
		id := rtpLikeID(b.rng)
		name := "cucm1.example.com"
		b.cfg.Datagrams = append(b.cfg.Datagrams,
			Datagram{At: at, Src: dnsPhone, Dst: dns, VLAN: 85, Payload: capturetest.DNS{ID: id, Flags: 0x0100, Name: name}.Bytes()},
			Datagram{At: at + ms(3), Src: dns, Dst: dnsPhone, VLAN: 85,
				Payload: capturetest.DNS{ID: id, Flags: 0x8180, Name: name, Answer: netip.MustParseAddr("10.0.0.10"), TTL: 3600}.Bytes()})
		nq++
	}
	for at := ms(300); at < b.dur; at += 1500 * time.Millisecond {
		b.cfg.Datagrams = append(b.cfg.Datagrams,
			Datagram{At: at, Src: pc, Dst: bcast, VLAN: 10, Payload: capturetest.NBNSQuery(rtpLikeID(b.rng), "FILESERVER")})
		nb++
	}
	v85, v10 := uint16(85), uint16(10)
	b.m.Other = append(b.m.Other,
		OtherFlow{Protocol: "dns", Src: dnsPhone.Addr.String(), Dst: dns.Addr.String(), VLAN: &v85, Packets: nq},
		OtherFlow{Protocol: "dns", Src: dns.Addr.String(), Dst: dnsPhone.Addr.String(), VLAN: &v85, Packets: nq},
		OtherFlow{Protocol: "nbns", Src: pc.Addr.String(), Dst: bcast.Addr.String(), VLAN: &v10, Packets: nb})
}

// consult adds agent 1001's monitored consultation call with colleague
// 1002: from the agent's phone port 20002 to 1002's phone at 20004.
func (b *builder) consult(start, dur time.Duration) {
	b.monCall(agentCall(20002, phone(2, 20004), start, dur), "agent-to-colleague", "colleague")
}

// otherLeg is a leg of a call nobody monitors, with a tone from the top
// of the palette.
func (b *builder) otherLeg(agent, dir, name string) side {
	return side{agent: agent, dir: dir, voices: []voice{{name: name, tone: b.lastTone()}}}
}

// The scenarios. Times are in milliseconds from the epoch; agent 1001's
// phone is 10.10.0.1 with RTP port 20000 (20002, 20004 for further calls),
// the customer's gateway 10.20.0.1:30000, all on voice VLAN 85.
var scenarioDefs = []scenarioDef{
	{ScenarioInfo{Name: "hold-resume", Summary: "agent 1001 puts the customer on hold 4-8 s and resumes: " +
		"same SSRCs, sequence numbers continue, RTP timestamps jump by the hold"}, 12 * time.Second,
		func(b *builder) {
			c := agentCall(20000, gateway(1, 30000), 0, 12*time.Second)
			h := iv(4000, 8000)
			b.monCall(c, "agent", "customer", h)
		}},
	{ScenarioInfo{Name: "resume-new-ssrc", Summary: "hold 4-7 s, then the call resumes with new SSRCs " +
		"and new RTP ports on both sides"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 4*time.Second), "agent", "customer")
			b.monCall(agentCall(20010, gateway(1, 30010), 7*time.Second, 5*time.Second), "agent-resumed", "customer-resumed")
		}},
	{ScenarioInfo{Name: "consult-retrieve", Summary: "customer on hold 3-8 s while agent 1001 consults " +
		"colleague 1002 (3.5-7.5 s, second call from the same phone); the customer call is retrieved " +
		"with the same SSRCs"}, 12 * time.Second,
		func(b *builder) {
			h := iv(3000, 8000)
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 12*time.Second), "agent", "customer", h)
			b.consult(ms(3500), 4*time.Second)
		}},
	{ScenarioInfo{Name: "consult-overlap", Summary: "the consultation call (3-9 s) overlaps the customer " +
		"call, which is not held: four streams of two calls at once"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 12*time.Second), "agent", "customer")
			b.consult(3*time.Second, 6*time.Second)
		}},
	{ScenarioInfo{Name: "blind-transfer", Summary: "agent 1001 blind-transfers the customer to agent 1002 " +
		"at 5 s; the transferred call (5.5-12 s, 1002's phone) is not 1001's and must not be heard; " +
		"1001 takes a new call at 8 s"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 5*time.Second), "agent", "customer")
			b.add(newCall("1002", phone(2, 20002), gateway(1, 30002), 85, ms(5500), ms(6500)),
				b.leg("1002", FromAgent, "transferred-colleague", false),
				b.leg("1002", ToAgent, "transferred-customer", false))
			b.monCall(agentCall(20004, gateway(3, 30004), 8*time.Second, 4*time.Second), "next-agent", "next-customer")
		}},
	{ScenarioInfo{Name: "attended-transfer", Summary: "agent 1001 holds the customer at 3 s, consults " +
		"agent 1002 (3.5-7 s), completes the transfer: the customer then talks with 1002 (7.3-12 s), " +
		"not heard in 1001's session"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 3*time.Second), "agent", "customer")
			b.consult(ms(3500), ms(3500))
			b.add(newCall("1002", phone(2, 20006), gateway(1, 30000), 85, ms(7300), ms(4700)),
				b.leg("1002", FromAgent, "transferred-colleague", false),
				b.leg("1002", ToAgent, "transferred-customer", false))
		}},
	{ScenarioInfo{Name: "conference", Summary: "direct call 0-3 s, then a three-party conference on a " +
		"bridge (10.30.0.20): the phone sends to the bridge and receives the bridge's mix of the " +
		"customer (3.3-12 s) and colleague 1002 (5-10 s)"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 3*time.Second), "agent", "customer")
			a2, cb, k := b.tone(), b.tone(), b.tone()
			all, coll := []Interval{iv(3300, 12000)}, []Interval{iv(5000, 10000)}
			b.add(agentCall(20002, mediaServer(20, 24000), ms(3300), ms(8700)),
				side{agent: "1001", dir: FromAgent, monitored: true, voices: []voice{{"agent-to-bridge", a2, nil}}},
				side{agent: "1001", dir: ToAgent, monitored: true, voices: []voice{
					{"bridge-mix-customer", cb, all}, {"bridge-mix-colleague", k, coll}}})
			b.add(newCall("", gateway(1, 30002), mediaServer(20, 24002), 85, ms(3300), ms(8700)),
				side{dir: NoAgent, voices: []voice{{"customer-to-bridge", cb, nil}}},
				side{dir: NoAgent, voices: []voice{{"bridge-to-customer-agent", a2, all},
					{"bridge-to-customer-colleague", k, coll}}})
			b.add(newCall("1002", phone(2, 20006), mediaServer(20, 24004), 85, 5*time.Second, 5*time.Second),
				side{agent: "1002", dir: FromAgent, voices: []voice{{"colleague-to-bridge", k, nil}}},
				side{agent: "1002", dir: ToAgent, voices: []voice{{"bridge-to-colleague-agent", a2, coll},
					{"bridge-to-colleague-customer", cb, coll}}})
		}},
	{ScenarioInfo{Name: "stray-packet", Summary: "one RTP packet of another SSRC (another tone) on the " +
		"customer-to-agent flow at 6.01 s, in the middle of the call"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 12*time.Second), "agent", "customer")
			b.add(agentCall(20000, gateway(1, 30000), ms(6010), 20*time.Millisecond),
				side{off: true}, b.mon(ToAgent, "stray"))
		}},
	{ScenarioInfo{Name: "two-vlans", Summary: "the same phone IP and port 10.10.0.1:20000 on VLANs 85 " +
		"and 86 (two devices, two calls at once from 2 s); both belong to agent 1001 and are heard"},
		12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 12*time.Second), "agent-vlan85", "customer-vlan85")
			p := phone(1, 20000)
			p.MAC[4] = 1
			b.monCall(newCall("1001", p, gateway(2, 30000), 86, 2*time.Second, 9*time.Second), "agent-vlan86", "customer-vlan86")
		}},
	{ScenarioInfo{Name: "music-on-hold", Summary: "agent 1001 holds the customer 3-6 s: music on hold " +
		"from 10.30.0.10 to the customer's gateway, not heard; then the far end holds the agent " +
		"8-11 s: music on hold to the agent's phone, heard"}, 13 * time.Second,
		func(b *builder) {
			h1, h2 := iv(3000, 6000), iv(8000, 11000)
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 13*time.Second), "agent", "customer", h1, h2)
			b.add(newCall("", mediaServer(10, 16384), gateway(1, 30000), 85, ms(3100), ms(2800)),
				b.leg("", NoAgent, "moh-to-customer", false), side{off: true})
			b.add(agentCall(20000, mediaServer(10, 16386), ms(8100), ms(2800)),
				side{off: true}, b.mon(ToAgent, "moh-to-agent"))
		}},
	{ScenarioInfo{Name: "g729b-silence", Summary: "G.729 with annex B on both sides: the agent and the " +
		"customer talk in turns (1.4 s talkspurts), silences go as SID frames and then no packets",
		NeedsG729: true}, 12 * time.Second,
		func(b *builder) {
			c := agentCall(20000, gateway(1, 30000), 0, 12*time.Second)
			c.Codec, c.VAD = G729, true
			var ag, cu []Interval
			for t := 600; t+1400 <= 11800; t += 2800 {
				ag = append(ag, iv(t, t+1400))
				cu = append(cu, iv(t+1400, t+2800))
			}
			b.tone()
			b.tone()
			b.add(c, side{agent: "1001", dir: FromAgent, monitored: true, voices: []voice{{"agent", b.tone(), ag}}},
				side{agent: "1001", dir: ToAgent, monitored: true, voices: []voice{{"customer", b.tone(), cu}}})
		}},
	{ScenarioInfo{Name: "loss-jitter", Summary: "a 12 s call through a bad network: 1% random loss, " +
		"bursts of 4 lost packets (1%), 40 ms jitter, 2% reordered, 1% duplicated"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 12*time.Second), "agent", "customer")
			b.cfg.Impair = Impairments{Loss: 0.01, BurstRate: 0.01, BurstLen: 4, Jitter: 40 * time.Millisecond,
				Reorder: 0.02, Duplicate: 0.01}
		}},
	{ScenarioInfo{Name: "multi-agent", Summary: "agents 1001 and 1002 monitored to one supervisor at " +
		"once (1002 holds 5-7 s); agent 1003's call is not monitored"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), 0, 12*time.Second), "agent-1001", "customer-1001")
			h := iv(5000, 7000)
			b.add(newCall("1002", phone(2, 20002), gateway(2, 30002), 85, ms(500), 11*time.Second),
				b.leg("1002", FromAgent, "agent-1002", true, h), b.leg("1002", ToAgent, "customer-1002", true, h))
			b.add(newCall("1003", phone(3, 20004), gateway(3, 30004), 85, time.Second, 10*time.Second),
				b.leg("1003", FromAgent, "agent-1003", false), b.leg("1003", ToAgent, "customer-1003", false))
			b.m.Monitored = append(b.m.Monitored, MonitoredAgent{Agent: "1002", Endpoints: []string{"10.10.0.2"}})
		}},
}
