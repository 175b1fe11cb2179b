package siptrack

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Tracker learns registrations and calls from SIP messages. Create it
// with New; the zero value is not usable. It is safe for concurrent use
// (see the package documentation for who calls what).
type Tracker struct {
	cfg       Config
	ports     [1024]uint64 // bitmap of SIP ports
	udpParser *sip.Parser
	tcpParser *sip.Parser

	mu           sync.Mutex
	calls        map[string]*callState
	callOrder    []*callState // creation order; removed entries compacted lazily
	callsRemoved int
	regs         map[regKey]*regEntry
	regOrder     []*regEntry
	regsRemoved  int
	pending      map[pendingKey]*pendingReg
	flows        map[flowKey]*flow
	changed      bool // the published view is out of date
	notify       bool // OnChange is due

	gen atomic.Uint64        // bumped on every change; the view carries the one it shows
	pub atomic.Pointer[view] // the latest view built

	st counters

	// sdpSeen, set by tests before any Packet, sees every SDP read.
	sdpSeen func(callID string, media []Media)
}

type counters struct {
	messages, requests, responses, malformed, sdpMalformed, keepalives atomic.Uint64
	tcpDropped, tcpEvicted, tcpGaps, tcpRetransmits                    atomic.Uint64
	callsRefused, callsTimedOut, regsRefused                           atomic.Uint64
	calls, regs, flows                                                 atomic.Int64
}

// New returns a Tracker configured by cfg (zero fields take their
// defaults, see Config).
func New(cfg Config) *Tracker {
	cfg = cfg.withDefaults()
	t := &Tracker{
		cfg:       cfg,
		udpParser: sip.NewParser(),
		tcpParser: sip.NewParser(),
		calls:     make(map[string]*callState),
		regs:      make(map[regKey]*regEntry),
		pending:   make(map[pendingKey]*pendingReg),
		flows:     make(map[flowKey]*flow),
	}
	t.udpParser.MaxMessageLength = 65535
	t.tcpParser.MaxMessageLength = cfg.TCPBufferLimit
	for _, p := range cfg.Ports {
		if p != 0 {
			t.ports[p>>6] |= 1 << (p & 63)
		}
	}
	return t
}

// IsSIPPort reports whether port is one of the configured SIP ports. It
// takes no lock and does not allocate.
func (t *Tracker) IsSIPPort(port uint16) bool {
	return port != 0 && t.ports[port>>6]&(1<<(port&63)) != 0
}

// Packet feeds one UDP datagram's payload (tcp false) or one TCP
// segment's payload (tcp true) seen at ts from src to dst on vlan (0 for
// none). The segments of one TCP flow must come in order; use TCPSegment
// when sequence numbers are at hand, so that retransmissions and gaps are
// handled. Malformed input is counted in Stats and ignored. Packet does
// not keep payload.
func (t *Tracker) Packet(ts time.Time, vlan uint16, src, dst netip.AddrPort, tcp bool, payload []byte) {
	t.mu.Lock()
	if tcp {
		t.tcpLocked(ts, vlan, src, dst, payload, 0, false)
	} else {
		t.udpLocked(ts, vlan, src, dst, payload)
	}
	t.finish()
}

// TCPSegment feeds one TCP segment's payload with its sequence number.
// Bytes already seen (retransmissions, overlaps) are skipped and counted;
// a missing segment resets the flow (counted in Stats.TCPGaps) and the
// tracker picks up at the next message that starts at a line boundary.
func (t *Tracker) TCPSegment(ts time.Time, vlan uint16, src, dst netip.AddrPort, seq uint32, payload []byte) {
	t.mu.Lock()
	t.tcpLocked(ts, vlan, src, dst, payload, seq, true)
	t.finish()
}

// Expire drops what has expired at now: registrations past their expiry,
// REGISTER transactions that got no final response, ended calls older
// than CallLinger, and TCP flows idle for TCPIdle. It ends calls that
// rang for RingTimeout or went silent for CallIdle.
func (t *Tracker) Expire(now time.Time) {
	t.mu.Lock()
	t.expireLocked(now)
	t.finish()
}

// finish ends a writer's critical section: it releases the lock, bumps
// the generation when something changed and calls OnChange when due.
func (t *Tracker) finish() {
	notify := t.notify
	if t.changed {
		t.gen.Add(1)
	}
	t.changed, t.notify = false, false
	t.st.calls.Store(int64(len(t.calls)))
	t.st.regs.Store(int64(len(t.regs)))
	t.st.flows.Store(int64(len(t.flows)))
	t.mu.Unlock()
	if notify && t.cfg.OnChange != nil {
		t.cfg.OnChange()
	}
}

// Snapshot returns an immutable view of the registrations and calls. It
// is safe to keep; it must not be modified.
func (t *Tracker) Snapshot() *Snapshot {
	return t.view().snap
}

// MediaOf returns the calls, not ended, in which user (an extension or a
// registered user part) is From, To or the user of a leg, each with its
// state and the media of both parties: Local holds the user's own legs'
// media, Remote the others'. Refused streams (port 0) and hold addresses
// (0.0.0.0) are left out. The result is the caller's.
func (t *Tracker) MediaOf(user string) []CallMedia {
	if user == "" {
		return nil
	}
	return t.view().mediaOf(user)
}

// Stats returns the tracker's counters.
func (t *Tracker) Stats() Stats {
	return Stats{
		Messages:             t.st.messages.Load(),
		Requests:             t.st.requests.Load(),
		Responses:            t.st.responses.Load(),
		Malformed:            t.st.malformed.Load(),
		SDPMalformed:         t.st.sdpMalformed.Load(),
		Keepalives:           t.st.keepalives.Load(),
		TCPDropped:           t.st.tcpDropped.Load(),
		TCPFlowsEvicted:      t.st.tcpEvicted.Load(),
		TCPGaps:              t.st.tcpGaps.Load(),
		TCPRetransmits:       t.st.tcpRetransmits.Load(),
		CallsRefused:         t.st.callsRefused.Load(),
		CallsTimedOut:        t.st.callsTimedOut.Load(),
		RegistrationsRefused: t.st.regsRefused.Load(),
		Calls:                int(t.st.calls.Load()),
		Registrations:        int(t.st.regs.Load()),
		TCPFlows:             int(t.st.flows.Load()),
	}
}

// view returns the latest view, building it when something changed since
// the last one. The lock is held only to collect the records, which are
// immutable once published.
func (t *Tracker) view() *view {
	if v := t.pub.Load(); v != nil && v.gen == t.gen.Load() {
		return v
	}
	t.mu.Lock()
	g := t.gen.Load()
	if v := t.pub.Load(); v != nil && v.gen == g {
		t.mu.Unlock()
		return v
	}
	regs := make([]*Registration, 0, len(t.regs))
	for _, e := range t.regOrder {
		if !e.removed {
			regs = append(regs, e.pub)
		}
	}
	calls := make([]*Call, 0, len(t.calls))
	for _, c := range t.callOrder {
		if !c.removed {
			calls = append(calls, c.pub)
		}
	}
	t.mu.Unlock()

	snap := &Snapshot{
		Registrations: make([]Registration, len(regs)),
		Calls:         make([]Call, len(calls)),
	}
	for i, r := range regs {
		snap.Registrations[i] = *r
	}
	for i, c := range calls {
		snap.Calls[i] = *c
	}
	v := &view{gen: g, snap: snap}
	for {
		old := t.pub.Load()
		if old != nil && old.gen >= g {
			return old
		}
		if t.pub.CompareAndSwap(old, v) {
			return v
		}
	}
}

// expireLocked implements Expire.
func (t *Tracker) expireLocked(now time.Time) {
	for k, e := range t.regs {
		if !e.pub.Expires.After(now) {
			t.removeReg(k, e)
		}
	}
	for k, p := range t.pending {
		if !p.ts.Add(pendingRegisterLife).After(now) {
			delete(t.pending, k)
		}
	}
	for id, c := range t.calls {
		switch {
		case c.state == StateEnded:
			if !c.ended.Add(t.cfg.CallLinger).After(now) {
				t.removeCall(id, c)
			}
		case !c.established && !c.lastSeen.Add(t.cfg.RingTimeout).After(now),
			c.established && !c.lastSeen.Add(t.cfg.CallIdle).After(now):
			t.st.callsTimedOut.Add(1)
			c.end(now)
			t.touch(c, true)
		}
	}
	for k, f := range t.flows {
		if !f.last.Add(t.cfg.TCPIdle).After(now) {
			delete(t.flows, k)
		}
	}
}
