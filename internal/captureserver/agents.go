package captureserver

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/siptrack"
)

// agents finds the media of monitored agents from the SIP signalling on
// the SPAN: the calls of each session's agent (its id and its extensions
// as SIP user parts), and in each call the media addresses the SDP named
// for the agent's side. They make the learned filter: sessions with the
// same id, agent and supervisor as the cluster's, whose endpoints are the
// agent's media addresses (IP and port). A session's own endpoints stay
// in the main filter; a packet both match is forwarded once.
//
// The tracker is fed from the capture workers under mu (SIP is a few
// messages a second, never on the RTP path); the learned filter is
// rebuilt when the tracker's calls change and when sessions change, and
// read lock-free by the workers.
type agents struct {
	mu      sync.Mutex // serialises the tracker's feeding
	rmu     sync.Mutex // serialises rebuilds: the last one reads the latest state
	tracker *siptrack.Tracker
	learned *filter.Filter
	s       *server
}

func newAgents(s *server, ports []uint16) *agents {
	a := &agents{s: s, learned: filter.New()}
	a.tracker = siptrack.New(siptrack.Config{Ports: ports, OnChange: a.changed})
	return a
}

// expire drops the tracker's expired registrations and calls at now.
func (a *agents) expire(now time.Time) {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.tracker.Expire(now)
	a.mu.Unlock()
}

// packet feeds a UDP datagram the capture decoded as neither RTP nor
// RTCP, or a TCP segment, to the tracker when one of its ports is a SIP
// port.
func (a *agents) packet(p *capture.Packet, ts time.Time) {
	if a == nil || (!a.tracker.IsSIPPort(p.Src.Port()) && !a.tracker.IsSIPPort(p.Dst.Port())) {
		return
	}
	var vlan uint16
	if p.NumVLANs > 0 {
		vlan = p.VLANs[0].ID()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case p.Kind == capture.KindUDP:
		a.tracker.Packet(ts, vlan, p.Src, p.Dst, false, p.UDP)
	case p.IPProto == 6 && len(p.TCP) > 0:
		a.tracker.TCPSegment(ts, vlan, p.Src, p.Dst, p.TCPSeq, p.TCP)
	}
}

// changed is the tracker's OnChange: it runs on the goroutine that fed
// the packet, after the tracker released its locks.
func (a *agents) changed() { a.rebuild() }

// users returns the SIP user parts that stand for sess's agent: its id
// and its extensions.
func users(sess *filter.Session) []string {
	out := append([]string{sess.Agent}, sess.Extensions...)
	slices.Sort(out)
	return slices.Compact(out)
}

// known reports whether the tracker knows anything of the agent: a
// registration or a call of one of its user parts.
func (a *agents) known(sess *filter.Session) bool {
	if a == nil {
		return false
	}
	snap := a.tracker.Snapshot()
	us := users(sess)
	for _, r := range snap.Registrations {
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

// rebuild makes the learned filter from the sessions and the tracker.
func (a *agents) rebuild() {
	if a == nil {
		return
	}
	a.rmu.Lock()
	defer a.rmu.Unlock()
	var learned []*filter.Session
	for _, sess := range a.s.filter.Sessions() {
		var eps []filter.Endpoint
		seen := map[netip.AddrPort]bool{}
		for _, u := range users(sess) {
			for _, cm := range a.tracker.MediaOf(u) {
				for _, m := range cm.Local {
					if !m.Addr.IsValid() || m.Addr.Port() == 0 || m.Addr.Addr().IsUnspecified() || seen[m.Addr] {
						continue
					}
					seen[m.Addr] = true
					eps = append(eps, filter.Endpoint{IP: m.Addr.Addr(), PortLo: m.Addr.Port(), PortHi: m.Addr.Port()})
				}
			}
		}
		if len(eps) == 0 {
			continue
		}
		d := *sess
		d.Endpoints = eps
		learned = append(learned, &d)
	}
	a.learned.Set(learned)
}

// match appends to dst the learned filter's matches of p whose session
// is not already in dst (matched by its own endpoints).
func (a *agents) match(p *capture.Packet, dst []filter.Match) []filter.Match {
	if a == nil {
		return dst
	}
	n := len(dst)
	dst = a.learned.MatchAll(p, dst)
	for i := n; i < len(dst); {
		dup := false
		for _, m := range dst[:n] {
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
