package captureserver

import (
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
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
}

// newAgents returns the agents of s; sip turns SIP tracking on, on ports.
func newAgents(s *server, sip bool, ports []uint16) *agents {
	a := &agents{s: s, learned: filter.New()}
	if sip {
		a.tracker = siptrack.New(siptrack.Config{Ports: ports, OnChange: a.rebuild})
	}
	return a
}

// setDirectory installs a newly loaded directory.
func (a *agents) setDirectory(d *directory.Directory) {
	a.dir.Store(d)
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
// the session's extensions and the directory's.
func (a *agents) users(sess *filter.Session) []string {
	out := append([]string{sess.Agent}, sess.Extensions...)
	if d := a.dir.Load(); d != nil {
		if ag, ok := d.ByID(sess.Agent); ok {
			out = append(out, ag.Extensions...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// known reports whether anything is known of the agent: the directory
// has it, or the tracker has a registration or a call of one of its user
// parts.
func (a *agents) known(sess *filter.Session) bool {
	if a == nil {
		return false
	}
	if d := a.dir.Load(); d != nil {
		if _, ok := d.ByID(sess.Agent); ok {
			return true
		}
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

// endpoints returns what the directory and the tracker give sess's agent
// now: its phones, and the media addresses of its current calls.
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
	for _, sess := range a.s.filter.Sessions() {
		a.collectKeys(sess, keys)
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
	dst = a.learned.MatchAll(p, dst)
	for i := n; i < len(dst); {
		dup := false
		for _, m := range dst[:i] {
			if m.Session.ID == dst[i].Session.ID {
				dup = true
				break
			}
		}
		if dup {
			dst = slices.Delete(dst, i, i+1)
			continue
		}
		i++
	}
	return dst
}

// reloadOnSIGHUP reloads the directory of w whenever the process receives
// SIGHUP, as the audit file is reopened; stop ends it.
func reloadOnSIGHUP(w *directory.Watcher, log *slog.Logger) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-ch:
				if err := w.Reload(); err != nil {
					log.Warn("agent directory not reloaded", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		<-finished
	}
}

// register adds the SIP tracker's figures to reg (silentmon_sip_...).
func (a *agents) register(reg *prometheus.Registry) {
	if a == nil || a.tracker == nil {
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
