package gen

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// phoneUA returns the SIP user agent of call c's agent side: the phone at
// c.Agent's IP address on SIPPort.
func phoneUA(c *Call) sipUA {
	return sipUA{agent: c.AgentID, ext: c.AgentID, vlan: c.VLAN,
		ep: Endpoint{MAC: c.Agent.MAC, Addr: netip.AddrPortFrom(c.Agent.Addr.Addr(), SIPPort)}}
}

// farUser names the far party of a call by its media address: customer
// gateway 10.20.a.b is the customer number +1555010bbbb, phone 10.10.0.n
// is extension 1000+n, media server 10.30.0.n is 8000+n.
func farUser(a netip.Addr) string {
	b := a.Unmap().As4()
	switch {
	case b[0] == 10 && b[1] == 20:
		return fmt.Sprintf("+1555010%04d", int(b[2])*256+int(b[3]))
	case b[0] == 10 && b[1] == 10 && b[2] == 0:
		return fmt.Sprint(1000 + int(b[3]))
	case b[0] == 10 && b[1] == 30:
		return fmt.Sprint(8000 + int(b[3]))
	}
	return "anonymous"
}

// dialog adds a SIP dialog of the agent phone of calls[0], inbound when
// the far side is a customer gateway, and returns it for the caller to
// adjust.
func (b *builder) dialog(calls ...int) *dialogDef {
	c := &b.cfg.Calls[calls[0]]
	far := c.Far.Addr.Addr().Unmap().As4()
	d := &dialogDef{ua: phoneUA(c), far: farUser(c.Far.Addr.Addr()), calls: calls, inbound: far[1] == 20}
	b.dialogs = append(b.dialogs, d)
	return d
}

// register adds a REGISTER of ua at at.
func (b *builder) register(at time.Duration, ua sipUA) {
	b.regs = append(b.regs, registration{at: at, ua: ua})
}

// holdEvents returns the re-INVITEs of the holds call ci has on both
// sides: the agent's phone holds (sendonly) at the start of each and
// resumes (sendrecv) at its end, unless the call ends first.
func (b *builder) holdEvents(ci int) []dialogEvent {
	c := &b.cfg.Calls[ci]
	var out []dialogEvent
	for _, h := range c.FromAgent.Holds {
		if !slices.Contains(c.ToAgent.Holds, h) || h.From <= 0 {
			continue
		}
		out = append(out, dialogEvent{at: c.Start + h.From, byAgent: true, call: ci, agentDir: sendonly})
		if h.To < c.Duration {
			out = append(out, dialogEvent{at: c.Start + h.To, byAgent: true, call: ci, agentDir: sendrecv})
		}
	}
	return out
}

// autoDialogs gives every call not yet signalled one dialog of its
// agent's phone, with its holds: all calls of an agent except those with
// a silent side (a stray packet) and those without an agent (a trunk to a
// media server).
func (b *builder) autoDialogs() {
	covered := map[int]bool{}
	for _, d := range b.dialogs {
		for _, c := range d.calls {
			covered[c] = true
		}
		for _, ev := range d.events {
			covered[ev.call] = true
		}
	}
	for i := range b.cfg.Calls {
		if covered[i] || b.noSIP[i] || b.cfg.Calls[i].AgentID == "" {
			continue
		}
		d := b.dialog(i)
		d.events = b.holdEvents(i)
	}
}

// writeSIP adds the scenario's SIP signalling to the capture and the
// manifest.
func (b *builder) writeSIP() error {
	b.autoDialogs()
	w := &sipWriter{rng: newRand(b.seed, 0x51b0), cfg: &b.cfg}
	dialogs := slices.Clone(b.dialogs)
	for _, d := range dialogs {
		w.prepare(d)
	}
	slices.SortStableFunc(dialogs, func(x, y *dialogDef) int { return int(x.invite - y.invite) })
	regs := slices.Clone(b.regs)
	for _, d := range dialogs {
		if d.ua.mobile || slices.ContainsFunc(regs, func(r registration) bool { return r.ua.same(&d.ua) && r.at <= d.invite }) {
			continue
		}
		regs = append(regs, registration{at: d.invite - time.Second, ua: d.ua})
	}
	slices.SortStableFunc(regs, func(x, y registration) int { return int(x.at - y.at) })
	for i := range regs {
		w.register(&regs[i])
	}
	for _, d := range dialogs {
		w.dialog(d)
	}
	frames, flows := w.frames()
	for i := range frames {
		if err := frames[i].validate(i); err != nil {
			return fmt.Errorf("SIP message: %w", err)
		}
	}
	b.cfg.Datagrams = append(b.cfg.Datagrams, frames...)
	b.m.Other = append(b.m.Other, flows...)
	b.m.SIP = &w.info
	// A leg belongs to the dialog of its call, or, for a call without
	// signalling (a stray packet), to that of a call with the same
	// addresses.
	in := func(d *dialogDef, ci int) bool {
		return slices.Contains(d.calls, ci) || slices.ContainsFunc(d.events, func(e dialogEvent) bool { return e.referTo == "" && e.call == ci })
	}
	for i := range b.m.Legs {
		l := &b.m.Legs[i]
		ci := l.stream / 2
		c := &b.cfg.Calls[ci]
		for _, d := range b.dialogs {
			if in(d, ci) {
				l.CallID = d.callID
			}
		}
		for j := range b.cfg.Calls {
			o := &b.cfg.Calls[j]
			if l.CallID != "" || !b.noSIP[ci] || o.Agent.Addr != c.Agent.Addr || o.Far.Addr != c.Far.Addr {
				continue
			}
			for _, d := range b.dialogs {
				if in(d, j) {
					l.CallID = d.callID
				}
			}
		}
	}
	return nil
}

// scenarioSIP defines the dialogs of the scenarios whose calls are not
// one dialog each (see autoDialogs): media moved by re-INVITE, transfers,
// far-end holds, and the SIP scenarios' own signalling.
var scenarioSIP = map[string]func(b *builder){
	// One dialog: held at 4 s, resumed at 7 s on new ports.
	"resume-new-ssrc": func(b *builder) {
		d := b.dialog(0, 1)
		d.events = []dialogEvent{{at: 4 * time.Second, byAgent: true, call: 0, agentDir: sendonly},
			{at: 7 * time.Second, byAgent: true, call: 1, agentDir: sendrecv}}
	},
	// The agent REFERs the customer to 1002 at 4.9 s; the PBX hangs up
	// the agent's dialog and calls 1002 (a dialog of 1002's phone).
	"blind-transfer": func(b *builder) {
		d := b.dialog(0)
		d.events = []dialogEvent{{at: ms(4900), byAgent: true, referTo: "1002"}}
		d.bye = ms(5020)
	},
	// The agent holds the customer at 3 s, consults 1002 (an outbound
	// dialog), and at 6.95 s REFERs the customer to 1002 replacing the
	// consultation; both of the agent's dialogs end.
	"attended-transfer": func(b *builder) {
		cust := b.dialog(0)
		consult := b.dialog(1)
		cust.events = []dialogEvent{{at: 3 * time.Second, byAgent: true, call: 0, agentDir: sendonly},
			{at: ms(6950), byAgent: true, referTo: "1002", replaces: consult}}
		cust.bye = ms(7100)
		consult.bye = ms(7060)
	},
	// The PBX moves the agent's call to the bridge by re-INVITE at 3.3 s.
	"conference": func(b *builder) {
		d := b.dialog(0, 1)
		d.events = []dialogEvent{{at: ms(3300), call: 1, agentDir: sendrecv}}
	},
	// The agent holds 3-6 s; the far end holds the agent 8-11 s with
	// music on hold from the media server, by the PBX's re-INVITEs.
	"music-on-hold": func(b *builder) {
		d := b.dialog(0)
		d.events = []dialogEvent{{at: 3 * time.Second, byAgent: true, call: 0, agentDir: sendonly},
			{at: 6 * time.Second, byAgent: true, call: 0, agentDir: sendrecv},
			{at: 8 * time.Second, call: 2, agentDir: recvonly},
			{at: 11 * time.Second, call: 0, agentDir: sendrecv}}
	},
	"sip-inbound-outbound": func(b *builder) {
		b.register(ms(200), phoneUA(&b.cfg.Calls[0]))
		b.dialog(0)
		b.dialog(1).inbound = false
	},
	"sip-mobile-gateway": func(b *builder) {
		for i := range 4 {
			d := b.dialog(i)
			d.ua.mobile = true
			d.byeByAgent = i%2 == 0
		}
	},
	"sip-softphone-ip-change": func(b *builder) {
		b.register(ms(300), phoneUA(&b.cfg.Calls[0]))
		b.register(6*time.Second, phoneUA(&b.cfg.Calls[1]))
		b.register(ms(6500), phoneUA(&b.cfg.Calls[2]))
	},
	"sip-tcp-split": func(b *builder) {
		ua := phoneUA(&b.cfg.Calls[0])
		ua.tcpPort = 49170
		b.register(ms(300), ua)
		in := b.dialog(0)
		in.ua, in.events = ua, b.holdEvents(0)
		out := b.dialog(1)
		out.ua, out.inbound, out.byeByAgent = ua, false, true
	},
}

// mobileGateway is the voice gateway shared by the mobile agents, on the
// gateway VLAN 90, with the RTP port p.
func mobileGateway(p uint16) Endpoint {
	return Endpoint{MAC: [6]byte{2, 0, 10, 40, 0, 1}, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 40, 0, 1}), p)}
}

// softphone is a PC running agent softphone at IP 10.10.0.ip, on the data
// VLAN 10.
func softphone(agent string, mac byte, ip byte, start, dur time.Duration, far Endpoint) Call {
	ep := Endpoint{MAC: [6]byte{2, 0, 10, 10, 1, mac}, Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 10, 0, ip}), 20000)}
	return newCall(agent, ep, far, 10, start, dur)
}

// The scenarios that always carry SIP. Agent 1001 registers before its
// first call; every scenario also holds agent 1050's unrelated call with
// its signalling.
var sipScenarioDefs = []scenarioDef{
	{ScenarioInfo{Name: "sip-inbound-outbound", SIP: true, Summary: "agent 1001 registers at 0.2 s, takes an " +
		"inbound call (1-5 s, from the PBX) and places an outbound call (6.5-11 s) on another RTP port"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), time.Second, 4*time.Second), "agent-inbound", "customer-inbound")
			b.monCall(agentCall(20002, gateway(2, 30002), ms(6500), ms(4500)), "agent-outbound", "customer-outbound")
		}},
	{ScenarioInfo{Name: "sip-mobile-gateway", SIP: true, Summary: "mobile agents 1001, 1003 and 1004 reached " +
		"through one voice gateway (10.40.0.1, VLAN 90) with ports allocated per call: 1001's two calls " +
		"(1-5.5 s on 41236, 6.5-11.5 s on 40112) interleave with the others' ports; only SDP tells them apart"},
		12 * time.Second,
		func(b *builder) {
			mob := func(agent string, port uint16, far Endpoint, start, dur time.Duration) Call {
				return newCall(agent, mobileGateway(port), far, 90, start, dur)
			}
			b.monCall(mob("1001", 41236, gateway(1, 30000), time.Second, ms(4500)), "mobile-agent-1", "customer-1")
			b.add(mob("1003", 41238, gateway(3, 30004), ms(600), ms(10800)),
				b.leg("1003", FromAgent, "mobile-1003", false), b.leg("1003", ToAgent, "customer-1003", false))
			b.monCall(mob("1001", 40112, gateway(2, 30002), ms(6500), 5*time.Second), "mobile-agent-2", "customer-2")
			b.add(mob("1004", 40110, gateway(4, 30006), 6*time.Second, 5*time.Second),
				b.leg("1004", FromAgent, "mobile-1004", false), b.leg("1004", ToAgent, "customer-1004", false))
			b.m.Monitored[0].Endpoints = []string{}
		}},
	{ScenarioInfo{Name: "sip-softphone-ip-change", SIP: true, Summary: "agent 1001's softphone registers " +
		"from 10.10.0.61 (call 1-5 s), re-registers from 10.10.0.77 at 6 s (call 7-11.5 s); agent 1005's " +
		"softphone then takes 10.10.0.61 (call 7.5-11 s, not 1001's)"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(softphone("1001", 1, 61, time.Second, 4*time.Second, gateway(1, 30000)), "softphone-old-ip", "customer-1")
			b.monCall(softphone("1001", 1, 77, 7*time.Second, ms(4500), gateway(2, 30002)), "softphone-new-ip", "customer-2")
			b.add(softphone("1005", 5, 61, ms(7500), ms(3500), gateway(5, 30008)),
				b.leg("1005", FromAgent, "softphone-1005", false), b.leg("1005", ToAgent, "customer-1005", false))
			b.m.Monitored[0].Endpoints = []string{}
		}},
	{ScenarioInfo{Name: "sip-tcp-split", SIP: true, Summary: "agent 1001's phone signals over TCP " +
		"(10.10.0.1:49170 to the PBX's 5060): an inbound call 1-5.5 s held 3-4 s by re-INVITE and an " +
		"outbound call to 1002 (6.5-11 s); messages with SDP are split over 2 or 3 segments, each " +
		"100 Trying shares a segment with the 180 Ringing"}, 12 * time.Second,
		func(b *builder) {
			b.monCall(agentCall(20000, gateway(1, 30000), time.Second, ms(4500)), "agent-inbound", "customer-inbound", iv(3000, 4000))
			b.monCall(agentCall(20002, phone(2, 20004), ms(6500), ms(4500)), "agent-to-colleague", "colleague")
		}},
	{ScenarioInfo{Name: "sip-srtp-sdes", SIP: true, Summary: "an inbound call (1-11 s) with SRTP " +
		"(RTP/SAVP, AES_CM_128_HMAC_SHA1_80) whose SDES keys are in the SDP's a=crypto lines; the RTP is " +
		"encrypted with them"}, 12 * time.Second,
		func(b *builder) {
			rng := newRand(b.seed, 0x5e7b)
			key := func() []byte {
				k := make([]byte, srtpKeyLen)
				for i := range k {
					k[i] = byte(rng.Uint32())
				}
				return k
			}
			c := agentCall(20000, gateway(1, 30000), time.Second, 10*time.Second)
			c.SRTP = &SRTPKeys{FromAgent: key(), ToAgent: key()}
			b.monCall(c, "agent-srtp", "customer-srtp")
		}},
}
