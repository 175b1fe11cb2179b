package captureserver

import (
	"bytes"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/directory"
	"github.com/silentmon/silentmon/internal/sdes"
	"github.com/silentmon/silentmon/internal/siptrack"
)

// agents finds the media of monitored agents without endpoints from the
// client: from the agent directory (the agent's phones, by IP or MAC, and
// its extensions) and from the SIP signalling on the SPAN (the calls of
// the agent's id and extensions as SIP user parts, and in each call the
// media addresses the SDP gave the agent's side). They make the learned
// filter: sessions with the same id, agent and supervisor as the
// cluster's, whose endpoints are the phones and media addresses found. A
// session's own endpoints stay in the main filter; a packet both match is
// forwarded once.
//
// The tracker is fed from the capture workers under mu (SIP is a few
// messages a second, never on the RTP path); the learned filter is
// rebuilt, under rmu, when the tracker's calls change, when the directory
// is loaded and when sessions change, and read lock-free by the workers.
type agents struct {
	mu      sync.Mutex        // serialises the tracker's feeding
	rmu     sync.Mutex        // serialises rebuilds: the last one reads the latest state
	tracker *siptrack.Tracker // nil without SIP tracking
	dir     atomic.Pointer[directory.Directory]
	keys    atomic.Pointer[srtpKeys] // SDES keys of the monitored calls' SRTP media
	learned *filter.Filter
	s       *server

	// The shared store (the cluster's, or a localStore) and what this
	// server made of it: the effective directory (dir) merges the
	// directories every member published; binds holds the CTI bindings.
	store   atomic.Pointer[sharedStore]
	member  string               // this member's key in spaceDirectory
	cmu     sync.Mutex           // guards cancels
	cancels []func()             // the store subscriptions
	dmu     sync.Mutex           // serialises directory merges
	own     *directory.Directory // the directory this member loaded; nil without one
	parts   map[string]sharedPart
	binds   atomic.Pointer[bindTable]
	bmu     sync.Mutex // serialises the read-modify-write of bindings (bind)
	tmu     sync.Mutex // serialises the reading of the bindings (bindingsChanged)
}

// sharedPart is a member's published directory, as read and decoded.
type sharedPart struct {
	raw []byte
	dir *directory.Directory // nil when it could not be read
}

// newAgents returns the agents of s; sip turns SIP tracking on, on ports.
func newAgents(s *server, sip bool, ports []uint16) *agents {
	a := &agents{s: s, learned: filter.New(), member: memberKey(s.cfg.Name)}
	if sip {
		a.tracker = siptrack.New(siptrack.Config{Ports: ports, OnChange: a.rebuild})
	}
	a.share(newLocalStore())
	return a
}

// share makes st the store of the directories and bindings (the
// cluster's, once it runs): it subscribes to both spaces, publishes the
// directory this member loaded (or withdraws the one an earlier run of
// this member published, when it has none now), and applies what st
// holds.
func (a *agents) share(st sharedStore) {
	a.unsubscribe()
	a.store.Store(&st)
	cancels := []func(){st.SubscribeShared(spaceDirectory, a.directoryChanged), st.SubscribeShared(spaceBindings, a.bindingsChanged)}
	a.cmu.Lock()
	a.cancels = cancels
	a.cmu.Unlock()
	a.dmu.Lock()
	own := a.own
	a.dmu.Unlock()
	if own != nil {
		a.publish(own)
	} else if _, local := st.(*localStore); !local {
		if err := st.Delete(spaceDirectory, a.member); err != nil {
			a.s.log.Warn("cannot withdraw this member's agent directory from the cluster", "err", err)
		}
	}
	a.directoryChanged()
	a.bindingsChanged()
}

// close ends the store subscriptions.
func (a *agents) close() {
	if a == nil {
		return
	}
	a.unsubscribe()
}

// unsubscribe ends the store subscriptions that share made, if any; the
// cancels run outside the lock.
func (a *agents) unsubscribe() {
	a.cmu.Lock()
	old := a.cancels
	a.cancels = nil
	a.cmu.Unlock()
	for _, c := range old {
		c()
	}
}

func (a *agents) sharedStore() sharedStore { return *a.store.Load() }

// setDirectory installs the directory this member loaded (at start, and
// on every reload): it replaces this member's part of the effective
// directory, here at once and on the other members through the store.
func (a *agents) setDirectory(d *directory.Directory) {
	a.dmu.Lock()
	a.own = d
	a.dmu.Unlock()
	a.publish(d)
	a.directoryChanged()
}

// publish puts d in the store under this member's key; a server without
// a cluster keeps it to itself. A directory too large to share (more
// than 4 MiB compressed) is used here only, with a warning.
func (a *agents) publish(d *directory.Directory) {
	st := a.sharedStore()
	if _, local := st.(*localStore); local {
		return
	}
	b, err := encodeDirectory(d)
	if err == nil {
		err = st.Put(spaceDirectory, a.member, b)
	}
	if err != nil {
		a.s.log.Warn("the agent directory is not shared with the cluster", "err", err)
	}
}

// directoryChanged makes the effective directory: the directories the
// members published, merged in the order of their member keys (an agent,
// extension or phone in two of them is taken from the member whose name
// sorts first), with this member's own loaded directory in its place
// even before (or without) its publication. It is nil when no member
// has a directory. The learned filter is rebuilt.
func (a *agents) directoryChanged() {
	if a == nil {
		return
	}
	entries := a.sharedStore().Entries(spaceDirectory)
	a.dmu.Lock()
	if a.own != nil {
		entries[a.member] = nil
	}
	parts := make(map[string]sharedPart, len(entries))
	var dirs []*directory.Directory
	for _, k := range slices.Sorted(maps.Keys(entries)) {
		if k == a.member && a.own != nil {
			dirs = append(dirs, a.own)
			continue
		}
		raw := entries[k]
		p, ok := a.parts[k]
		if !ok || !bytes.Equal(p.raw, raw) {
			p = sharedPart{raw: raw}
			d, err := decodeDirectory(raw)
			if err != nil {
				a.s.log.Warn("the agent directory of another member is not used", "member", k, "err", err)
			} else {
				p.dir = d
			}
		}
		parts[k] = p
		if p.dir != nil {
			dirs = append(dirs, p.dir)
		}
	}
	a.parts = parts
	switch len(dirs) {
	case 0:
		a.dir.Store(nil)
	case 1:
		a.dir.Store(dirs[0])
	default:
		a.dir.Store(directory.Merge(dirs...))
	}
	a.dmu.Unlock()
	a.rebuild()
}

// expire drops the tracker's expired registrations and calls at now.
func (a *agents) expire(now time.Time) {
	if a == nil || a.tracker == nil {
		return
	}
	a.mu.Lock()
	a.tracker.Expire(now)
	a.mu.Unlock()
}

// packet feeds a packet the capture decoded as neither RTP nor RTCP to
// the tracker (which keeps SIP, UDP or TCP, and ignores the rest).
func (a *agents) packet(p *capture.Packet, ts time.Time) {
	if a == nil || a.tracker == nil {
		return
	}
	a.mu.Lock()
	a.tracker.Feed(ts, p)
	a.mu.Unlock()
}

// users returns the SIP user parts that stand for sess's agent: its id,
// the session's extensions, the directory's and those a CTI bound to it.
func (a *agents) users(sess *filter.Session) []string {
	out := append([]string{sess.Agent}, sess.Extensions...)
	if d := a.dir.Load(); d != nil {
		if ag, ok := d.ByID(sess.Agent); ok {
			out = append(out, ag.Extensions...)
		}
	}
	if b := a.bound(sess.Agent); b != nil {
		out = append(out, b.Extensions...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// known reports whether anything is known of the agent: the directory
// has it, a CTI bound it, or the tracker has a registration or a call of
// one of its user parts.
func (a *agents) known(sess *filter.Session) bool {
	if a == nil {
		return false
	}
	if d := a.dir.Load(); d != nil {
		if _, ok := d.ByID(sess.Agent); ok {
			return true
		}
	}
	if a.bound(sess.Agent) != nil {
		return true
	}
	if a.tracker == nil {
		return false
	}
	us := a.users(sess)
	for _, r := range a.tracker.Snapshot().Registrations {
		if slices.Contains(us, r.Extension) {
			return true
		}
	}
	for _, u := range us {
		if len(a.tracker.MediaOf(u)) > 0 {
			return true
		}
	}
	return false
}

// endpoints returns what the directory, the CTI bindings and the tracker
// give sess's agent now: its phones, and the media addresses of its
// current calls.
func (a *agents) endpoints(sess *filter.Session) []filter.Endpoint {
	var eps []filter.Endpoint
	if d := a.dir.Load(); d != nil {
		if ag, ok := d.ByID(sess.Agent); ok {
			for _, dev := range ag.Devices {
				if dev.IP.IsValid() {
					eps = append(eps, filter.Endpoint{IP: dev.IP, VLAN: dev.VLAN})
				}
				if len(dev.MAC) == 6 {
					eps = append(eps, filter.Endpoint{MAC: [6]byte(dev.MAC), HasMAC: true, VLAN: dev.VLAN})
				}
			}
		}
	}
	if b := a.bound(sess.Agent); b != nil {
		eps = append(eps, b.eps...)
	}
	if a.tracker == nil {
		return eps
	}
	for _, m := range a.tracker.AgentMedia(a.users(sess)) {
		eps = append(eps, filter.Endpoint{IP: m.Addr.Addr(), PortLo: m.Addr.Port(), PortHi: m.Addr.Port()})
	}
	return eps
}

// rebuild makes the learned filter from the sessions, the directory and
// the tracker.
func (a *agents) rebuild() {
	if a == nil {
		return
	}
	a.rmu.Lock()
	defer a.rmu.Unlock()
	var learned []*filter.Session
	keys := srtpKeys{}
	pts := map[string]map[uint8]string{}
	for _, sess := range a.s.filter.Sessions() {
		a.collectKeys(sess, keys)
		if m := a.payloadTypes(sess); len(m) > 0 {
			pts[sess.ID] = m
		}
		eps := a.endpoints(sess)
		if len(eps) == 0 {
			continue
		}
		d := *sess
		d.Endpoints = eps
		learned = append(learned, &d)
	}
	a.learned.Set(learned)
	if len(keys) == 0 {
		a.keys.Store(nil)
	} else {
		a.keys.Store(&keys)
	}
	if fw := a.s.fw; fw != nil {
		fw.SetPayloadTypes(pts)
	}
}

// collectKeys adds to keys the SDES keys of sess's agent's current SRTP
// calls, by the agent's media address.
func (a *agents) collectKeys(sess *filter.Session, keys srtpKeys) {
	if a.tracker == nil {
		return
	}
	for _, m := range a.tracker.AgentMedia(a.users(sess)) {
		if m.SRTP {
			var p srtpPair
			p.send, p.hasSend = sdes.ParseCrypto(m.Crypto)
			p.recv, p.hasRecv = sdes.ParseCrypto(m.PeerCrypto)
			keys[m.Addr] = p
		}
	}
}

// srtpKey returns the key of an SRTP packet of a monitored call: sent
// by the agent from src, or received by it at dst; ok is false when the
// packet is not of a call negotiated with SDES keys.
func (a *agents) srtpKey(src, dst netip.AddrPort, fromAgent bool) (addr netip.AddrPort, k sdes.Key, ok bool) {
	if a == nil {
		return addr, k, false
	}
	keys := a.keys.Load()
	if keys == nil {
		return addr, k, false
	}
	if fromAgent {
		p, found := (*keys)[src]
		return src, p.send, found && p.hasSend
	}
	p, found := (*keys)[dst]
	return dst, p.recv, found && p.hasRecv
}

// match appends to dst the learned filter's matches of p whose session
// is not already in dst (matched by its own endpoints, or by another of
// its learned ones).
func (a *agents) match(p *capture.Packet, dst []filter.Match) []filter.Match {
	if a == nil {
		return dst
	}
	n := len(dst)
	return filter.DropRepeated(a.learned.MatchAll(p, dst), n)
}

// register adds the SIP tracker's figures to reg (silentmon_sip_...).
func (a *agents) register(reg *prometheus.Registry) {
	if a == nil {
		return
	}
	a.registerSRTP(reg)
	if a.tracker == nil {
		return
	}
	stat := func(f func(siptrack.Stats) float64) func() float64 {
		return func() float64 { return f(a.tracker.Stats()) }
	}
	for _, c := range []struct {
		name, help string
		f          func(siptrack.Stats) float64
	}{
		{"messages_total", "SIP messages read on the SPAN.", func(s siptrack.Stats) float64 { return float64(s.Messages) }},
		{"malformed_total", "SIP messages, datagrams or TCP resynchronisations that could not be read (ignored).", func(s siptrack.Stats) float64 { return float64(s.Malformed) }},
		{"sdp_malformed_total", "SDP bodies that could not be read.", func(s siptrack.Stats) float64 { return float64(s.SDPMalformed) }},
		{"tcp_resets_total", "SIP TCP flows reset (a message over the bound, or a missing segment).", func(s siptrack.Stats) float64 { return float64(s.TCPDropped + s.TCPGaps) }},
		{"refused_total", "Calls and registrations refused because a table was full.", func(s siptrack.Stats) float64 { return float64(s.CallsRefused + s.RegistrationsRefused) }},
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "sip", Name: c.name, Help: c.help}, stat(c.f)))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Subsystem: "sip", Name: "calls", Help: "Calls the SIP tracker holds, ended ones kept for status included."},
		stat(func(s siptrack.Stats) float64 { return float64(s.Calls) })))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Subsystem: "sip", Name: "registrations", Help: "Extension bindings (REGISTER) the SIP tracker holds."},
		stat(func(s siptrack.Stats) float64 { return float64(s.Registrations) })))
}
