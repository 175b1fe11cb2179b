package captureserver

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/internal/service"
	smtls "github.com/silentmon/silentmon/tls"
)

// DefaultReadyFrames is how recently frames must have been read for
// smserver to be ready without looking at the interfaces.
const DefaultReadyFrames = 10 * time.Second

// captureReadiness is /readyz's "capture" check: ready while frames were
// read in the last window; on a quiet SPAN port, ready while every
// capture interface is up with carrier present; a replay is ready while
// it runs and after it ends (replay finished). Observe, called by the
// session keeper every second, notes when the frame count last moved.
// Safe for concurrent use.
type captureReadiness struct {
	now        func() time.Time
	frames     func() uint64
	window     time.Duration
	replay     string      // the capture file, "" when live
	replayDone func() bool // the replay read its file to the end
	interfaces []string
	link       func(ifname string) linkState

	mu        sync.Mutex
	last      uint64
	lastMoved time.Time // zero: no frame yet
}

// linkState is an interface's state as the kernel shows it.
type linkState struct {
	Up      bool  // administratively up (IFF_UP)
	Carrier bool  // operational: carrier present (IFF_RUNNING)
	Err     error // the interface is gone or unreadable
}

// readLink reads the state of ifname over netlink (net.InterfaceByName),
// in this process's network namespace: /sys/class/net shows the
// namespace sysfs was mounted in, which may be another.
func readLink(ifname string) linkState {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		if all, lerr := net.Interfaces(); lerr == nil && !slices.ContainsFunc(all, func(x net.Interface) bool { return x.Name == ifname }) {
			return linkState{Err: errors.New("the interface does not exist")}
		}
		return linkState{Err: err}
	}
	return linkState{Up: ifi.Flags&net.FlagUp != 0, Carrier: ifi.Flags&net.FlagRunning != 0}
}

// observe notes the frame count at now.
func (c *captureReadiness) observe(now time.Time) {
	n := c.frames()
	c.mu.Lock()
	if n != c.last {
		c.last, c.lastMoved = n, now
	}
	c.mu.Unlock()
}

func (c *captureReadiness) check() error {
	if c.replay != "" {
		if c.replayDone() {
			return service.Note("replay finished")
		}
		return nil
	}
	now := c.now()
	c.observe(now)
	c.mu.Lock()
	moved := c.lastMoved
	c.mu.Unlock()
	if !moved.IsZero() && now.Sub(moved) <= c.window {
		return nil
	}
	var errs []error
	for _, ifname := range c.interfaces {
		st := c.link(ifname)
		switch {
		case st.Err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", ifname, st.Err))
		case !st.Up:
			errs = append(errs, fmt.Errorf("%s is down; bring it up with ip link set %s up", ifname, ifname))
		case !st.Carrier:
			errs = append(errs, fmt.Errorf("%s: carrier down (no link: cable unplugged or the switch port down)", ifname))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if moved.IsZero() {
		return service.Note("no frame yet; %s up with carrier", strings.Join(c.interfaces, ", "))
	}
	return service.Note("no frame for %s; %s up with carrier", now.Sub(moved).Round(time.Second), strings.Join(c.interfaces, ", "))
}

// clusterReadiness is /readyz's "cluster" check: with peers configured,
// every member this one knows of has a route, and some route exists;
// status gives the node's view (cluster.Node.Status).
func clusterReadiness(peers []string, status func() cluster.Status) func() error {
	return func() error {
		st := status()
		routed := map[string]bool{}
		for _, r := range st.Routes {
			routed[r.Member] = true
		}
		var errs []error
		for _, m := range st.Members {
			if m.State == "self" || routed[m.Name] {
				continue
			}
			errs = append(errs, fmt.Errorf("no route to peer %s (%s)", m.Name, m.State))
		}
		if len(st.Routes) == 0 && len(peers) > 0 && len(errs) == 0 {
			errs = append(errs, fmt.Errorf("no route to peer %s", strings.Join(peers, " or ")))
		}
		return errors.Join(errs...)
	}
}

// readyChecks are smserver's /readyz checks: capture, cluster (with
// peers), certificate (over TLS).
func (s *server) readyChecks() []service.Check {
	s.capReady = &captureReadiness{now: s.now, frames: s.stats.frames.Load, window: DefaultReadyFrames,
		replay: s.cfg.Pcap, replayDone: s.stats.replayDone.Load, interfaces: s.cfg.Interfaces, link: readLink}
	if s.cfg.ReadyFrames > 0 {
		s.capReady.window = s.cfg.ReadyFrames
	}
	checks := []service.Check{{Name: "capture", Check: s.capReady.check}}
	if s.node != nil && len(s.cfg.Peers) > 0 {
		checks = append(checks, service.Check{Name: "cluster", Check: clusterReadiness(s.cfg.Peers, s.node.Status)})
	}
	if !s.cfg.Insecure {
		checks = append(checks, service.CertificateCheck(s.now, 0, s.certExpiries))
	}
	return checks
}

// certExpiries lists the certificates smserver uses: those of its
// certificate store (reloaded on SIGHUP), else, read from the security
// directory, the CA, its own (CtiosServer.pem) and, in a cluster, the
// peer links' one.
func (s *server) certExpiries() []service.Expiry {
	if s.certs != nil {
		return service.StoreExpiries(s.certs)()
	}
	files := []string{smtls.RootCertFile, smtls.ServerFile}
	if s.cfg.Cluster {
		peer := smtls.PeerFile
		if _, err := os.Lstat(filepath.Join(s.cfg.SecurityDir, peer)); errors.Is(err, os.ErrNotExist) {
			peer = smtls.ClientFile
		}
		files = append(files, peer)
	}
	return service.FileExpiries(s.cfg.SecurityDir, files...)
}

// health is /healthz's check of the capture workers: an error while one
// is down (waiting to be restarted) or after one failed for good. The
// loops' heartbeats are checked beside it.
func (s *server) health() error {
	for _, w := range s.workers {
		if err := w.health(); err != nil {
			return err
		}
	}
	return nil
}

// forwarderHealth is /healthz's check of the forwarder: every connected
// link's loop turned within 3 heartbeat intervals (at least 10 s).
func (s *server) forwarderHealth() error {
	if s.fw == nil {
		return nil
	}
	return s.fw.Stuck(s.now(), max(3*s.cfg.HeartbeatIntv, service.MinHeartbeatBound))
}
