package captureserver

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// server is a running smserver.
type server struct {
	cfg     *Config
	log     *slog.Logger
	filter  *filter.Filter
	fw      *relay.Forwarder
	relay   *relay.Server
	ln      *service.Listener
	started time.Time

	sessionsChanged chan struct{} // closed and replaced on every change
	smu             sync.Mutex

	startMu   sync.Mutex      // serialises the look-up and install of starts
	stops     recentStops     // sessions stopped here lately
	accessMu  sync.RWMutex    // guards admins and policy, which a reload replaces
	admins    map[string]bool // normalised fingerprints of administrators
	authAudit minuteLimiter   // bounds the auth-refused audit lines
	agents    *agents         // SIP tracking; nil when off
	policy    *policy         // the authorization rules; nil or empty: every client
	watch     watchers        // agent watches and the informed sessions' state
	// unauthorized counts the starts the authorization rules refused.
	unauthorized atomic.Uint64

	// beats holds the heartbeats of the long-running loops (/healthz);
	// capReady notes the frames for /readyz's capture check.
	beats    *service.Heartbeats
	capReady *captureReadiness

	stats   captureStats
	refused refusals // starts refused by a limit or the supervisor check
	workers []*worker
	lives   []*capture.Live
	node    *cluster.Node // nil without a cluster
	audit   *audit.Log    // nil without audit.file
	// certs holds the certificates of every link (nil with --insecure);
	// SIGHUP reloads them. Its Expiries tell when they expire.
	certs *smtls.Store
	rec   *recorders
	reg   *prometheus.Registry

	// now is the clock of the session keeper (supervisor grace, lifetime
	// without a cluster, capture periods) and of the forwarder's
	// reachability; cfg.Clock or time.Now.
	now func() time.Time
	// caps holds this member's capture periods, by session; only tick
	// (one goroutine at a time, under capMu) touches it.
	capMu sync.Mutex
	caps  map[string]*capturePeriod
	// owners is the owner of every session at the last cluster
	// notification, to tell which member writes a lifetime end.
	omu    sync.Mutex
	owners map[string]ownedSession
}

type ownedSession struct {
	owner string
	sess  *filter.Session
}

// newServer returns a server with its filter, recorders and clock, and
// nothing running.
func newServer(cfg *Config, log *slog.Logger) *server {
	s := &server{cfg: cfg, log: log, filter: filter.New(), started: time.Now(),
		sessionsChanged: make(chan struct{}), admins: map[string]bool{}, now: cfg.Clock,
		caps: map[string]*capturePeriod{}, owners: map[string]ownedSession{}}
	if s.now == nil {
		s.now = time.Now
	}
	for _, fp := range cfg.Admins {
		if norm, ok := NormalizeFingerprint(fp); ok {
			s.admins[norm] = true
		}
	}
	s.rec = newRecorders(cfg.RecordDir, log)
	s.rec.event = s.auditEvent
	s.agents = newAgents(s, cfg.SIP, cfg.SIPPorts)
	var err error
	if s.policy, err = compilePolicy(cfg.Rules); err != nil {
		// Run refuses bad rules before it gets here; a server built
		// anyway allows administrators only.
		s.policy = &policy{rules: []compiledRule{{}}}
	}
	return s
}

// newForwarder makes the server's forwarder; its connections to
// supervisors are audited (supervisor-connected, -disconnected).
func (s *server) newForwarder(dial relay.DialConfig) {
	s.fw = relay.NewForwarder(relay.ForwarderConfig{
		Dial:              dial,
		Name:              s.cfg.Name,
		QueueLen:          s.cfg.QueueLen,
		HeartbeatInterval: s.cfg.HeartbeatIntv,
		HeartbeatRetries:  s.cfg.HeartbeatRetry,
		Logger:            s.log,
		Now:               s.now,
		OnConnect:         s.supervisorConnected,
		OnDisconnect:      s.supervisorDisconnected,
	})
}

type captureStats struct {
	frames, decodeErrors, rtp, rtcp, matched, forwarded atomic.Uint64
	// srtpDecrypted and srtpFailed count the SRTP packets of monitored
	// calls decrypted with the SDES keys of their SDP, and those that
	// failed authentication or decryption (dropped).
	srtpDecrypted, srtpFailed atomic.Uint64
	replayDone                atomic.Bool
}

// run builds the whole server (listeners, sources, audit file, metrics,
// forwarder, cluster node, workers, relay server) before anything serves:
// the metrics, health and relay handlers read all of it. It returns when
// ctx ends, when a replay is done (with ExitAfterReplay), or with exit 1
// when a capture worker fails for good or the relay listener fails.
func Run(ctx context.Context, cfg *Config, stdout, stderr io.Writer) error {
	level := new(slog.LevelVar) // a reload sets log.level
	log, _ := cli.NewLevelLogger(stderr, cfg.LogFormat, cfg.LogLevel, level)
	if _, err := compilePolicy(cfg.Rules); err != nil {
		return cli.Usage(err)
	}
	if len(cfg.Rules) > 0 && cfg.Insecure {
		return cli.Usagef("%s cannot be enforced with --insecure: clients present no certificate to match; remove the rules or --insecure", KeyRules)
	}
	s := newServer(cfg, log)
	if len(cfg.Rules) == 0 {
		log.Warn("no authorization rules (" + KeyRules + "): every client may monitor every agent")
	}

	// Supervisors are dialed with the capture server's own certificate
	// (role capture) and must present a supervisor's.
	// Every link takes its certificates from one store, which SIGHUP
	// reloads.
	var dialTLS *tls.Config
	if !cfg.Insecure {
		var err error
		if s.certs, err = smtls.NewStore(cfg.SecurityDir, smtls.Options{Strict: cfg.StrictKeys, Logger: log}); err != nil {
			return cli.Usage(err)
		}
		dialTLS, err = s.certs.ClientConfig(smtls.ServerFile, []smtls.Role{smtls.RoleCapture}, []smtls.Role{smtls.RoleSupervisor})
		if err != nil {
			return cli.Usage(err)
		}
	}
	var err error
	s.ln, err = service.Listen(service.ListenConfig{Addr: cfg.Listen, SecurityDir: cfg.SecurityDir, Store: s.certs,
		Insecure: cfg.Insecure, Strict: cfg.StrictKeys, Logger: log,
		Roles: []smtls.Role{smtls.RoleCapture}, PeerRoles: []smtls.Role{smtls.RoleClient, smtls.RoleAdmin, smtls.RoleCTI},
		Lockout: smtls.LockoutConfig{Threshold: cfg.LockThreshold, Duration: cfg.LockDuration, MaxSources: cfg.LockMaxSources, Logger: log},
		Listen: smtls.ListenOptions{HandshakeTimeout: cfg.HandshakeTimeout, MaxHandshakes: cfg.MaxHandshakes,
			MaxHandshakesPerSource: cfg.MaxHandshakesPerSource, OnAuthFailure: s.authRefused},
	})
	if err != nil {
		return cli.Usage(err)
	}
	defer s.ln.Close()

	// captureCtx ends the workers; a paced replay's wait between two
	// frames ends with it.
	captureCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	var sources []capture.Source
	var names []string
	var drops []*atomic.Uint64 // kernel drop counter of each source's capture
	if cfg.Pcap != "" {
		fs, err := capture.OpenFile(cfg.Pcap, capture.FileOptions{Speed: cfg.PcapSpeed, Done: captureCtx.Done()})
		if err != nil {
			return cli.Usage(err)
		}
		sources = append(sources, fs)
		names = append(names, cfg.Pcap)
		drops = append(drops, nil)
	} else {
		for _, ifname := range cfg.Interfaces {
			lc := cfg.Live
			lc.Interface = ifname
			live, err := capture.OpenLive(lc)
			if err != nil {
				for _, l := range s.lives {
					l.Close()
				}
				if errors.Is(err, fs.ErrPermission) {
					// The sentence names the fix; %.0w wraps the
					// kernel's refusal without repeating it.
					exe, xerr := os.Executable()
					if xerr != nil {
						exe = "/usr/bin/smserver"
					}
					return &cli.Error{Code: cli.ExitUsage, Err: fmt.Errorf("capturing on %s needs the CAP_NET_RAW and CAP_NET_ADMIN capabilities, which this process lacks: run as root, or grant them (the silentmon-server package's unit does, with AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN; or run setcap cap_net_raw,cap_net_admin+ep %s)%.0w", ifname, exe, err)}
				}
				return cli.Failf("cannot capture on %s: %v", ifname, err)
			}
			s.lives = append(s.lives, live)
			for i, src := range live.Sources() {
				sources = append(sources, src)
				names = append(names, fmt.Sprintf("%s#%d", ifname, i))
				drops = append(drops, live.DropCounter())
			}
		}
	}
	closeSources := func() {
		for _, src := range sources {
			src.Close()
		}
	}
	defer closeSources()
	defer s.rec.closeAll()
	if cfg.AuditFile != "" {
		s.audit, err = audit.OpenWith(cfg.AuditFile, audit.Options{Member: cfg.Name})
		if err != nil {
			return cli.Usagef("audit file %q: %v", cfg.AuditFile, err)
		}
		defer s.audit.Close()
	}

	// One SIGHUP handler: configuration, certificates, directory, audit
	// file (reload.go).
	rl := newReloader(s, level, s.certs)
	if cfg.DirectoryFile != "" {
		if err := rl.openDirectory(cfg.DirectoryFile); err != nil {
			return cli.Usage(err)
		}
	}
	defer rl.close()
	stopReload := cli.OnSIGHUP(func() { rl.reload() })
	defer stopReload()

	reg := prometheus.NewRegistry()
	s.reg = reg
	s.registerMetrics(reg)
	if s.ln.TLS != nil {
		reg.MustRegister(smtls.NewCollector(s.ln.Lockout, s.ln.TLS), smtls.NewStoreCollector(s.certs))
	}
	// Listens now (a bad address fails before anything starts) and serves
	// once the server is complete.
	ms, err := service.ListenMetrics(cfg.MetricsListen, reg, log, s.health)
	if err != nil {
		return cli.Usage(err)
	}
	defer ms.Close()
	if cfg.listening != nil {
		cfg.listening(s.ln.Addr(), ms.Addr())
	}

	s.beats = service.NewHeartbeats(s.now)
	ms.AddHealth(service.Check{Name: "loops", Check: s.beats.Check}, service.Check{Name: "forwarder", Check: s.forwarderHealth})
	for i, src := range sources {
		w := newWorker(s, src, names[i], drops[i])
		w.beat = s.beats.Add("capture worker "+names[i], time.Second)
		s.workers = append(s.workers, w)
	}
	s.newForwarder(relay.DialConfig{TLS: dialTLS, TOS: cfg.MediaTOS})
	defer s.fw.Close()
	if cfg.Cluster {
		if err := s.startCluster(); err != nil {
			return err
		}
		defer s.node.Close()
	}
	s.relay = relay.NewServer(relay.ServerConfig{Handler: s, Logger: log, Name: cfg.Name,
		HeartbeatTimeout: cfg.HeartbeatTmo})

	// Everything is built: serve.
	ms.AddReady(s.readyChecks()...)
	ms.Serve()
	serveErr := make(chan error, 1)
	acceptBeat := s.beats.Add("relay accept loop", time.Second)
	acceptBeat.Waiting() // blocked in Accept; /healthz names it if it stops
	go func() { err := s.relay.Serve(s.ln); acceptBeat.Stopped(err); serveErr <- err }()
	defer s.relay.Close() // waits for Serve
	log.Info("smserver started", "name", cfg.Name, "listen", s.ln.Addr().String(),
		"tls", !cfg.Insecure, "source", sourceName(cfg))

	restarts := workerRestarts
	if cfg.Pcap != "" {
		restarts = 0 // a file that cannot be read will not be read better later
	}
	capDone := make(chan error, len(s.workers))
	for _, w := range s.workers {
		go func() { capDone <- w.supervise(captureCtx, cfg.PcapWaitSession, restarts) }()
	}
	running := len(s.workers)
	keepCtx, stopKeep := context.WithCancel(context.Background())
	keepDone := make(chan struct{})
	keepBeat := s.beats.Add("session keeper", time.Second)
	go func() { defer close(keepDone); s.keep(keepCtx, keepBeat) }()
	// Runs before the forwarder, the recorders and the audit file close.
	defer func() {
		stopKeep()
		<-keepDone
		s.shutdown()
	}()

	var failed error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("stopping", "reason", "signal")
			break wait
		case err := <-serveErr:
			// Serve returns before Close only if the listener failed or
			// was closed under it.
			if err == nil {
				err = net.ErrClosed
			}
			failed = cli.Failf("the client listener on %s failed: %v", s.ln.Addr(), err)
			break wait
		case err := <-capDone:
			running--
			if err != nil {
				if cfg.Pcap != "" {
					failed = cli.Failf("reading capture %s: %v", cfg.Pcap, err)
				} else {
					failed = cli.Failf("capture stopped: %v", err)
				}
				break wait
			}
			if running > 0 || cfg.Pcap == "" {
				continue
			}
			s.stats.replayDone.Store(true)
			log.Info("replay finished", "frames", s.stats.frames.Load(), "matched", s.stats.matched.Load())
			if cfg.ExitAfterReplay {
				fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				s.fw.Flush(fctx)
				cancel()
				break wait
			}
		}
	}
	if failed != nil {
		log.Error("stopping", "reason", failed.Error())
	}
	stopCapture()
	closeSources() // unblocks ReadBatch
	for ; running > 0; running-- {
		<-capDone // after stopCapture, a worker's end is not an error
	}
	for _, l := range s.lives {
		l.Close()
	}
	if failed != nil {
		return failed
	}
	fmt.Fprintf(stdout, "smserver: frames read %d, RTP %d, RTP matched %d, packets relayed %d\n",
		s.stats.frames.Load(), s.stats.rtp.Load(), s.stats.matched.Load(), s.relayed())
	return nil
}

// keep runs tick every second until ctx ends, beating beat (may be nil)
// at each.
func (s *server) keep(ctx context.Context, beat *service.Heartbeat) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.tick(s.now())
		beat.Beat()
	}
}

// tick is the session keeper's round, at time now (tests call it with an
// injected clock): it tells the cluster which sessions this member
// captures, writes capture-begin and capture-end lines, reports failed
// recordings, and ends the sessions this member owns whose supervisor has
// been unreachable for longer than the grace (and, without a cluster,
// those whose lifetime is over).
func (s *server) tick(now time.Time) {
	if s.node != nil {
		var ids []string
		for _, w := range s.workers {
			ids = append(ids, w.activeSessions()...)
		}
		s.node.ReportCapturing(ids)
	}
	if s.capReady != nil {
		s.capReady.observe(now)
	}
	s.trackCaptures(now, false)
	s.rec.reportFailures()
	s.checkSessions(now)
}

// shutdown writes what this member's stop ends: capture-end for every
// capture period, and without a cluster an end line (server shutdown) for
// every session. In a cluster the sessions live on (another member
// adopts them), so they get no end line.
func (s *server) shutdown() {
	now := s.now()
	s.trackCaptures(now, true)
	if s.node != nil {
		return
	}
	for _, x := range s.filter.Sessions() {
		s.writeEnd(x, audit.ReasonServerShutdown, now)
	}
}

// captureIdle is how long a session's packets must be absent from this
// member for its capture period to end (capture-end); the next packet
// begins a new one (capture-begin).
const captureIdle = 30 * time.Second

// capturePeriod is one session's capture on this member: packets counts
// every packet this member forwarded for it (all periods), base those
// before the current period.
type capturePeriod struct {
	active        bool
	packets, base uint64
	last          time.Time
	sess          *filter.Session
}

// trackCaptures compares the workers' per-session figures with the
// capture periods: a session with a packet since its last period ended
// begins one (capture-begin); a period ends (capture-end, with its
// packets) when the session's packets have been absent for captureIdle,
// when the session ended, or, with final, because this member stops.
func (s *server) trackCaptures(now time.Time, final bool) {
	s.capMu.Lock()
	defer s.capMu.Unlock()
	seen := map[string]sessionSeen{}
	for _, w := range s.workers {
		for id, x := range w.sessionsSeen() {
			y := seen[id]
			y.packets += x.packets
			if x.last.After(y.last) {
				y.last = x.last
			}
			seen[id] = y
		}
	}
	live := map[string]*filter.Session{}
	for _, x := range s.filter.Sessions() {
		live[x.ID] = x
	}
	for id, x := range seen {
		sess := live[id]
		if sess == nil {
			continue
		}
		c := s.caps[id]
		if c == nil {
			c = &capturePeriod{sess: sess}
			s.caps[id] = c
		}
		if x.packets > c.packets {
			c.packets, c.last = x.packets, x.last
		}
		if !c.active && c.packets > c.base && !final && now.Sub(c.last) < captureIdle {
			c.active = true
			s.auditEvent(audit.Record{Time: now, Action: audit.ActionCaptureBegin, SessionID: id, Agent: sess.Agent,
				Endpoints: endpointStrings(sess), Supervisor: sess.Supervisor})
			s.log.Info("capture began", "session", id, "agent", sess.Agent)
		}
	}
	for id, c := range s.caps {
		gone := live[id] == nil
		if c.active && (final || gone || now.Sub(c.last) >= captureIdle) {
			c.active = false
			n := c.packets - c.base
			c.base = c.packets
			s.auditEvent(audit.Record{Time: now, Action: audit.ActionCaptureEnd, SessionID: id, Agent: c.sess.Agent,
				Endpoints: endpointStrings(c.sess), Supervisor: c.sess.Supervisor, Packets: n})
			s.log.Info("capture ended", "session", id, "agent", c.sess.Agent, "packets", n)
		}
		if gone {
			delete(s.caps, id)
		}
	}
}

// checkSessions keeps a connection to the supervisor of every session
// this member owns (every session, without a cluster) and ends the
// session when that supervisor has been unreachable for longer than
// cfg.SupervisorGrace. Only the owner decides, so the members do not all
// end the session at once; the owner is always a live member (a silent
// owner's sessions are adopted), and the grace starts again when the
// session changes owner. Without a cluster, checkSessions also ends the
// sessions whose lifetime is over.
func (s *server) checkSessions(now time.Time) {
	var mine []*filter.Session
	for _, x := range s.filter.Sessions() {
		if s.node != nil {
			if o, ok := s.node.Owner(x.ID); !ok || o != s.cfg.Name {
				continue
			}
		} else if !x.Until.IsZero() && !now.Before(x.Until) {
			s.endSession(x, audit.ReasonLifetimeOver, now)
			continue
		}
		s.fw.Reach(x.Supervisor)
		mine = append(mine, x)
	}
	if len(mine) == 0 || s.cfg.SupervisorGrace <= 0 {
		return
	}
	since := map[string]time.Time{}
	for _, st := range s.fw.Stats() {
		since[st.Supervisor] = st.UnreachableSince
	}
	for _, x := range mine {
		t := since[x.Supervisor]
		if t.IsZero() || now.Sub(t) <= s.cfg.SupervisorGrace {
			continue
		}
		s.log.Warn("ending a session: its supervisor is unreachable", "session", x.ID, "agent", x.Agent,
			"supervisor", x.Supervisor, "since", t, "grace", s.cfg.SupervisorGrace)
		s.endSession(x, audit.ReasonSupervisorGone, now)
	}
}

// endSession ends x for reason (an audit Reason constant; the cluster's
// reasons are the same words) and writes its end line, unless another
// member or request ended it first.
func (s *server) endSession(x *filter.Session, reason string, now time.Time) {
	if s.node != nil {
		if err := s.node.End(x.ID, reason); err != nil {
			if !errors.Is(err, cluster.ErrUnknownSession) {
				s.log.Error("cannot end a session", "session", x.ID, "reason", reason, "err", err)
			}
			return
		}
	}
	if !s.filter.Remove(x.ID) && s.node == nil {
		return
	}
	s.sessionsUpdated()
	s.writeEnd(x, reason, now)
	s.log.Info("session ended", "session", x.ID, "agent", x.Agent, "reason", reason)
}

// writeEnd writes the end line of x. It is written once per session, by
// the member that decided the end: the one that accepted the stop, the
// owner that found the supervisor gone, the owner when the lifetime ran
// out (the cluster ends it on every member at once), or a member without
// a cluster that shuts down.
func (s *server) writeEnd(x *filter.Session, reason string, now time.Time) {
	s.auditEvent(audit.Record{Time: now, Action: audit.ActionEnd, Reason: reason, SessionID: x.ID, Agent: x.Agent,
		Endpoints: endpointStrings(x), Supervisor: x.Supervisor, RequestID: x.RequestID, Until: x.Until})
}

// auditEvent writes an event line; a failure is logged by writeAudit and
// refuses nothing.
func (s *server) auditEvent(rec audit.Record) { _ = s.writeAudit(rec) }

// supervisorConnected and supervisorDisconnected are the forwarder's
// connection hooks: they audit the supervisor's certificate.
func (s *server) supervisorConnected(addr string, cs *tls.ConnectionState) {
	subject, fp := smtls.PeerIdentity(cs)
	s.auditEvent(audit.Record{Time: s.now(), Action: audit.ActionSupervisorConnected, Supervisor: addr,
		SupervisorSubject: subject, SupervisorFingerprint: fp})
}

func (s *server) supervisorDisconnected(addr string, err error) {
	why := "closed by this server (no session uses it, or shutdown)"
	if err != nil {
		why = err.Error()
	}
	s.auditEvent(audit.Record{Time: s.now(), Action: audit.ActionSupervisorDisconnected, Supervisor: addr, Reason: why})
}

func sourceName(cfg *Config) string {
	if cfg.Pcap != "" {
		return "pcap:" + cfg.Pcap
	}
	return fmt.Sprint(cfg.Interfaces)
}

// sessionsUpdated wakes whoever waits for a session change, tells each
// supervisor service which of its sessions stopped and closes supervisor
// connections no session uses.
func (s *server) sessionsUpdated() {
	s.agents.rebuild()
	ss := s.filter.Sessions()
	s.fw.Sync(ss)
	for _, x := range ss {
		if s.node == nil {
			s.fw.Reach(x.Supervisor)
		} else if o, ok := s.node.Owner(x.ID); ok && o == s.cfg.Name {
			s.fw.Reach(x.Supervisor)
		}
	}
	s.rec.sync(ss)
	s.updateWatches()
	s.smu.Lock()
	close(s.sessionsChanged)
	s.sessionsChanged = make(chan struct{})
	s.smu.Unlock()
}

func (s *server) waitSession(ctx context.Context) error {
	for {
		s.smu.Lock()
		ch := s.sessionsChanged
		s.smu.Unlock()
		if len(s.filter.Sessions()) > 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// newSessionID returns 128 random bits in hex (32 characters): session
// ids are chosen by the server, never by a client.
func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// retryWait is how long a start sent again after a broken connection waits
// for the session its first attempt may have made on another member to
// reach this one before making a new one.
const retryWait = 500 * time.Millisecond

// StartMonitor implements relay.Handler. Every request that starts a
// session or is refused is written to the audit trail before the reply;
// if the audit trail cannot be written, the request is refused. A request
// that finds the session it asks for already there (the same idempotency
// key from the same requester, or a re-assertion of the requester's own
// session) changes nothing and writes no line.
func (s *server) StartMonitor(ctx context.Context, p *relay.Peer, req *relay.StartMonitor) (*relay.SessionStatus, error) {
	rec := s.auditRecord(p, audit.ActionStart)
	rec.Agent, rec.Endpoints, rec.Supervisor, rec.SessionID = req.Agent, req.Endpoints, req.Supervisor, req.Session
	refuse := func(code string, err error) (*relay.SessionStatus, error) {
		rec.Result, rec.Reason = audit.ResultRefused, err.Error()
		if code != relay.CodeUnknown && code != relay.CodeUnauthorized && !filter.ValidID(req.Session) {
			rec.SessionID = ""
		}
		s.writeAudit(rec)
		s.log.Info("monitor start refused", "peer", p.Addr, "client", peerName(p), "agent", req.Agent, "err", err)
		return nil, &relay.Error{Code: code, Message: err.Error()}
	}
	if err := checkStart(req); err != nil {
		return refuse(relay.CodeBadRequest, err)
	}
	rec.RequestID = req.IdempotencyKey
	subject, requester := smtls.PeerIdentity(p.TLS)

	s.startMu.Lock()
	defer s.startMu.Unlock()
	if req.Session != "" {
		// A client re-asserts a session it started (after a failover).
		cur := findSession(s.allSessions(), req.Session)
		if cur == nil {
			return refuse(relay.CodeUnknown, fmt.Errorf("session %s does not exist (stopped or expired); a client cannot choose the id of a new session", req.Session))
		}
		if cur.Requester != requester {
			return refuse(relay.CodeUnauthorized, fmt.Errorf("session %s was started by another identity (%s); only that identity may re-assert it", cur.ID, requesterName(cur)))
		}
		if err := s.authorize(p, cur); err != nil {
			s.unauthorized.Add(1)
			return refuse(relay.CodeUnauthorized, err)
		}
		if s.node != nil {
			if err := s.node.Announce(cur); err != nil {
				if errors.Is(err, cluster.ErrEnded) {
					return refuse(relay.CodeUnknown, endedError(cur.ID))
				}
				return nil, &relay.Error{Code: relay.CodeInternal, Message: fmt.Sprintf("re-asserting session %s: %v", cur.ID, err)}
			}
		}
		s.log.Info("monitor re-asserted", "session", cur.ID, "agent", cur.Agent, "peer", p.Addr, "client", peerName(p))
		return sessionReply(cur, false), nil
	}
	if req.IdempotencyKey != "" {
		cur, err := s.findRequest(ctx, req, requester)
		if err != nil {
			return refuse(relay.CodeBadRequest, err)
		}
		if cur != nil {
			if err := s.authorize(p, cur); err != nil {
				s.unauthorized.Add(1)
				return refuse(relay.CodeUnauthorized, err)
			}
			s.log.Info("monitor start repeated", "session", cur.ID, "agent", cur.Agent, "request", req.IdempotencyKey, "peer", p.Addr, "client", peerName(p))
			return sessionReply(cur, false), nil
		}
	}
	sess, err := sessionFromRequest(req, s.cfg.maxEndpoints())
	if err == nil {
		s.agents.resolveAgent(sess)
		rec.Agent = sess.Agent
		// Before anything is said about the agent.
		if err := s.authorize(p, sess); err != nil {
			s.unauthorized.Add(1)
			return refuse(relay.CodeUnauthorized, err)
		}
		err = s.checkKnown(sess)
	}
	if err == nil {
		err = s.checkSessionCount()
	}
	if err != nil {
		return refuse(s.refused.count(err), err)
	}
	sess.ID, sess.RequestID = newSessionID(), req.IdempotencyKey
	sess.Requester, sess.RequesterSubject = requester, subject
	sess.Started = time.Now().UTC()
	if req.ForMS > 0 {
		sess.Until = sess.Started.Add(time.Duration(req.ForMS) * time.Millisecond)
	}
	rec.SessionID, rec.Until = sess.ID, sess.Until
	if sess.Record {
		if err := s.rec.usable(); err != nil {
			rec.SessionID = ""
			return refuse(relay.CodeBadRequest, fmt.Errorf("this server cannot record (--record): %w", err))
		}
	}
	// The accepted line is durable before the session is installed: a
	// session no line accounts for never captures a packet. If the
	// install then fails, a refused start line with the same session id
	// follows the accepted one: that session never existed.
	rec.Result = audit.ResultAccepted
	if err := s.writeAudit(rec); err != nil {
		return nil, &relay.Error{Code: relay.CodeInternal, Message: "the audit trail cannot be written, so no session is started: " + err.Error()}
	}
	if err := s.startSession(sess); err != nil {
		code := relay.CodeInternal
		if errors.Is(err, cluster.ErrEnded) {
			code, err = relay.CodeBadRequest, fmt.Errorf("session %s ended before it was installed (its lifetime is over): %w", sess.ID, err)
		}
		rec.Result, rec.Reason = audit.ResultRefused, "not installed: "+err.Error()
		s.writeAudit(rec)
		s.log.Info("monitor start refused", "peer", p.Addr, "client", peerName(p), "agent", req.Agent, "err", err)
		return nil, &relay.Error{Code: code, Message: err.Error()}
	}
	s.log.Info("monitor started", "session", sess.ID, "agent", sess.Agent, "endpoints", req.Endpoints,
		"supervisor", sess.Supervisor, "record", sess.Record, "until", sess.Until, "informed", sess.Informed, "peer", p.Addr, "client", peerName(p))
	return sessionReply(sess, false), nil
}

// endedError is the refusal of a re-assertion of a session the cluster
// has ended (cluster.ErrEnded).
func endedError(id string) error {
	return fmt.Errorf("session %s was stopped; start a new one", id)
}

// checkStart validates what a start request carries from the wire, before
// anything else uses it.
func checkStart(req *relay.StartMonitor) error {
	if req.Session != "" && !filter.ValidID(req.Session) {
		return fmt.Errorf("session id %q is not 1 to %d of A-Z a-z 0-9 . _ -", req.Session, filter.MaxIDLen)
	}
	if req.IdempotencyKey != "" && !filter.ValidID(req.IdempotencyKey) {
		return fmt.Errorf("idempotency key %q is not 1 to %d of A-Z a-z 0-9 . _ -", req.IdempotencyKey, filter.MaxIDLen)
	}
	if req.ForMS < 0 || req.ForMS > relay.MaxLifetime.Milliseconds() {
		return fmt.Errorf("lifetime for_ms %d is not between 1 ms and %v (0: none)", req.ForMS, relay.MaxLifetime)
	}
	if req.Session == "" && req.Agent != "" && !filter.ValidAgent(req.Agent) {
		return fmt.Errorf("agent %q is not 1 to %d printable characters without a slash", req.Agent, filter.MaxAgentLen)
	}
	return nil
}

// findRequest returns the session an earlier attempt of req (same
// idempotency key, same requester) made, or nil. A key another identity
// used, or used for another request, is refused. A retry that finds
// nothing waits up to retryWait for the cluster to bring the session its
// first attempt may have made on another member.
func (s *server) findRequest(ctx context.Context, req *relay.StartMonitor, requester string) (*filter.Session, error) {
	deadline := time.Now().Add(retryWait)
	for {
		for _, x := range s.allSessions() {
			if x.RequestID != req.IdempotencyKey {
				continue
			}
			if x.Requester != requester {
				return nil, fmt.Errorf("idempotency key %s belongs to a request of another identity", req.IdempotencyKey)
			}
			if x.Agent != req.Agent || x.Supervisor != req.Supervisor || x.Record != req.Record || x.Informed != req.InformAgent {
				return nil, fmt.Errorf("idempotency key %s was used for another request (session %s, agent %s)", req.IdempotencyKey, x.ID, x.Agent)
			}
			return x, nil
		}
		if !req.Retry || s.node == nil || time.Now().After(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// allSessions returns every session: the cluster's converged set (which
// may be ahead of this member's filter), or the filter's alone.
func (s *server) allSessions() []*filter.Session {
	if s.node != nil {
		return s.node.Sessions()
	}
	return s.filter.Sessions()
}

func findSession(ss []*filter.Session, id string) *filter.Session {
	for _, x := range ss {
		if x.ID == id {
			return x
		}
	}
	return nil
}

func sessionReply(sess *filter.Session, already bool) *relay.SessionStatus {
	st := &relay.SessionStatus{Session: sess.ID, State: relay.SessionStarted, Agent: sess.Agent,
		Endpoints: endpointStrings(sess), Supervisor: sess.Supervisor, Informed: sess.Informed}
	if !sess.Until.IsZero() {
		st.Until = sess.Until.UTC().Format(time.RFC3339)
	}
	return st
}

func requesterName(sess *filter.Session) string {
	if sess.RequesterSubject != "" {
		return sess.RequesterSubject
	}
	if sess.Requester != "" {
		return sess.Requester
	}
	return "a client without a certificate"
}

// mayStop reports whether the peer may stop sess: the identity that
// started it, or an administrator. On an --insecure listener there is no
// identity, and anyone may stop any session. A session without a
// requester (started through an --insecure listener) may be stopped over
// TLS by an administrator only.
func (s *server) mayStop(p *relay.Peer, sess *filter.Session) bool {
	if p.TLS == nil {
		return true
	}
	_, fp := smtls.PeerIdentity(p.TLS)
	if fp == "" {
		return false
	}
	return fp == sess.Requester || s.isAdmin(p)
}

// isAdmin reports whether p's certificate makes it an administrator: it
// carries the admin role, or its fingerprint is one of security.admins
// (--admin), for certificates issued before roles existed elsewhere.
func (s *server) isAdmin(p *relay.Peer) bool {
	if p.TLS == nil {
		return false
	}
	if smtls.PeerHasRole(p.TLS, smtls.RoleAdmin) {
		return true
	}
	_, fp := smtls.PeerIdentity(p.TLS)
	s.accessMu.RLock()
	defer s.accessMu.RUnlock()
	return fp != "" && s.admins[fp]
}

// authRefused audits a failed client authentication on 42228 (the
// listener has logged it and counted it for the lockout). At most
// authAuditBurst lines are written per minute, so that many sources
// cannot fill the disk through the trail; the rest are counted in
// silentmon_tls_auth_failures_total only.
func (s *server) authRefused(src net.Addr, subject, reason string, err error) {
	if !s.authAudit.allow(s.now()) {
		return
	}
	rec := audit.Record{Time: s.now(), Action: audit.ActionAuthRefused, Source: src.String(), ClientSubject: subject,
		Reason: reason + ": " + err.Error(), Endpoints: []string{}}
	if werr := s.writeAudit(rec); werr != nil {
		s.log.Error("cannot write the audit line of a refused client", "source", src.String(), "err", werr)
	}
}

// authAuditBurst bounds the auth-refused audit lines per minute.
const authAuditBurst = 60

// minuteLimiter allows n events per calendar minute. Safe for
// concurrent use.
type minuteLimiter struct {
	mu     sync.Mutex
	minute time.Time
	n      int
}

func (l *minuteLimiter) allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if m := now.Truncate(time.Minute); !m.Equal(l.minute) {
		l.minute, l.n = m, 0
	}
	l.n++
	return l.n <= authAuditBurst
}

// routeRefused audits a cluster route refused for its certificate (the
// route layer has logged it): someone holding a certificate of the site
// CA tried to join the cluster without being a peer.
func (s *server) routeRefused(remote, subject string, err error) {
	rec := audit.Record{Time: s.now(), Action: audit.ActionRouteRefused, Source: remote, ClientSubject: subject,
		Reason: err.Error(), Endpoints: []string{}}
	if werr := s.writeAudit(rec); werr != nil {
		s.log.Error("cannot write the audit line of a refused route", "remote", remote, "err", werr)
	}
}

func (s *server) auditRecord(p *relay.Peer, action string) audit.Record {
	rec := audit.Record{Time: time.Now(), Action: action, Endpoints: []string{}}
	if p.Addr != nil {
		rec.Source = p.Addr.String()
	}
	if p.TLS != nil {
		rec.ClientSubject, rec.ClientFingerprint = smtls.PeerIdentity(p.TLS)
	}
	return rec
}

func (s *server) writeAudit(rec audit.Record) error {
	if s.audit == nil {
		return nil
	}
	if rec.Endpoints == nil {
		rec.Endpoints = []string{}
	}
	if err := s.audit.Write(rec); err != nil {
		s.log.Error("audit trail write failed", "file", s.cfg.AuditFile, "err", err)
		return err
	}
	return nil
}

// startSession installs a session, through the cluster when there is one.
func (s *server) startSession(sess *filter.Session) error {
	if s.node != nil {
		return s.node.Announce(sess)
	}
	s.filter.Add(sess)
	s.sessionsUpdated()
	return nil
}

// stopSession ends a session everywhere; it returns the session, or an
// error if it does not exist.
func (s *server) stopSession(id string) (*filter.Session, error) {
	sess, ok := s.filter.Session(id)
	if s.node != nil {
		if err := s.node.Withdraw(id); err != nil {
			if errors.Is(err, cluster.ErrUnknownSession) {
				return nil, fmt.Errorf("session %q does not exist", id)
			}
			return nil, err
		}
		if !ok {
			sess = &filter.Session{ID: id}
		}
		// Stop capturing at once here; the cluster's notification follows.
		s.filter.Remove(id)
		s.sessionsUpdated()
		return sess, nil
	}
	if !ok || !s.filter.Remove(id) {
		return nil, fmt.Errorf("session %q does not exist", id)
	}
	s.sessionsUpdated()
	return sess, nil
}

func (s *server) startCluster() error {
	log := s.log.With("component", "cluster")
	cc := cluster.Config{Name: s.cfg.Name, Listen: s.cfg.ClusterListen, Peers: s.cfg.Peers,
		Insecure: s.cfg.Insecure, Logger: log, SessionTTL: s.cfg.HeartbeatTmo, Refresh: s.cfg.HeartbeatIntv}
	if cc.Refresh >= cc.SessionTTL {
		cc.Refresh = cc.SessionTTL / 3
	}
	if !s.cfg.Insecure {
		// Routes present the peer certificate both ways and accept only
		// peers; a refusal is logged by the route layer and audited here.
		var err error
		if cc.TLS, err = s.certs.PeerConfig(); err != nil {
			return cli.Usage(err)
		}
		cc.OnRouteRefused = s.routeRefused
	}
	node, err := cluster.Start(cc)
	if err != nil {
		return cli.Failf("cluster on %s: %v", s.cfg.ClusterListen, err)
	}
	s.reg.MustRegister(node.Collector())
	s.attachNode(node)
	log.Info("cluster member started", "listen", node.RouteAddr(), "peers", s.cfg.Peers)
	return nil
}

// attachNode makes node the server's cluster: its sessions become the
// filter's, its ends are audited (clusterEnded), it answers the other
// members' audit queries, and its shared store holds the agent
// directories and CTI bindings.
func (s *server) attachNode(node *cluster.Node) {
	s.node = node
	s.agents.share(node) // the directories and CTI bindings of every member
	s.serveAuditGather()
	s.serveAgentsGather(node) // what this member's SIP knows, for the others
	node.SubscribeEnds(s.clusterEnded)
	node.Subscribe(func(ss []*filter.Session) {
		owners := make(map[string]ownedSession, len(ss))
		for _, x := range ss {
			o, _ := node.Owner(x.ID)
			owners[x.ID] = ownedSession{owner: o, sess: x}
		}
		s.omu.Lock()
		s.owners = owners
		s.omu.Unlock()
		s.filter.Set(ss)
		s.sessionsUpdated()
	})
}

// clusterEnded writes the end line of a session whose lifetime ran out,
// on the member that owned it (as this member last knew). Stops and
// supervisor-gone ends are written where they were decided (StopMonitor,
// endSession), not here.
func (s *server) clusterEnded(id, reason string) {
	if reason != cluster.ReasonLifetimeOver {
		return
	}
	s.omu.Lock()
	o, ok := s.owners[id]
	s.omu.Unlock()
	if ok && o.owner == s.cfg.Name {
		s.writeEnd(o.sess, audit.ReasonLifetimeOver, s.now())
	}
}

func peerName(p *relay.Peer) string {
	if p.TLS == nil {
		return "(insecure)"
	}
	subject, _ := smtls.PeerIdentity(p.TLS)
	return subject
}

// sessionFromRequest checks the request and returns the session it asks
// for, without an id. It names at most maxEndpoints endpoints.
func sessionFromRequest(req *relay.StartMonitor, maxEndpoints int) (*filter.Session, error) {
	if req.Agent == "" {
		return nil, errors.New("the request names no agent")
	}
	if !filter.ValidAgent(req.Agent) {
		return nil, fmt.Errorf("agent %q is not 1 to %d printable characters without a slash", req.Agent, filter.MaxAgentLen)
	}
	if len(req.Extensions) > filter.MaxExtensions {
		return nil, fmt.Errorf("the request for agent %s names %d extensions, more than %d", req.Agent, len(req.Extensions), filter.MaxExtensions)
	}
	for _, x := range req.Extensions {
		if !filter.ValidExtension(x) {
			return nil, fmt.Errorf("extension %q is not 1 to %d of A-Z a-z 0-9 + * # . _ -", x, filter.MaxExtensionLen)
		}
	}
	if len(req.Endpoints) > maxEndpoints {
		return nil, fmt.Errorf("%w: the request for agent %s names %d endpoints, more than the limit of %d (%s)",
			errMaxEndpoints, req.Agent, len(req.Endpoints), maxEndpoints, KeyMaxEndpoints)
	}
	if err := checkSupervisor(req.Supervisor); err != nil {
		return nil, err
	}
	sess := &filter.Session{Agent: req.Agent, Supervisor: req.Supervisor, Record: req.Record,
		Extensions: slices.Clone(req.Extensions), Wait: req.Wait, Informed: req.InformAgent}
	for _, e := range req.Endpoints {
		ep, err := filter.ParseEndpoint(e)
		if err != nil {
			return nil, err
		}
		sess.Endpoints = append(sess.Endpoints, ep)
	}
	return sess, nil
}

// checkSupervisor accepts HOST:PORT where HOST is an IP address a capture
// server can dial (not unspecified, multicast or broadcast) or a DNS name
// (letters, digits, '-' and '.', at most 253 characters, not all-numeric
// like "0" or "127.1", which some resolvers read as addresses) and PORT a
// number from 1 to 65535. Errors wrap errSupervisor.
func checkSupervisor(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%w: supervisor %q is not HOST:PORT", errSupervisor, addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != port {
		return fmt.Errorf("%w: supervisor %q: port %q is not a number from 1 to 65535", errSupervisor, addr, port)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		switch {
		case ip.IsUnspecified():
			return fmt.Errorf("%w: supervisor %q: %s is the unspecified address, not a host to dial; name the supervisor service's own address", errSupervisor, addr, host)
		case ip.IsMulticast():
			return fmt.Errorf("%w: supervisor %q: %s is a multicast address, not a host to dial", errSupervisor, addr, host)
		case ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			return fmt.Errorf("%w: supervisor %q: %s is the broadcast address, not a host to dial", errSupervisor, addr, host)
		}
		return nil
	}
	if len(host) > 253 {
		return fmt.Errorf("%w: supervisor %q: host name longer than 253 characters", errSupervisor, addr)
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	for _, label := range labels {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("%w: supervisor %q: %q is not a host name", errSupervisor, addr, host)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("%w: supervisor %q: %q is not a host name", errSupervisor, addr, host)
			}
		}
	}
	if last := labels[len(labels)-1]; strings.Trim(last, "0123456789") == "" || strings.HasPrefix(strings.ToLower(last), "0x") {
		return fmt.Errorf("%w: supervisor %q: %q is neither an IP address in standard form nor a host name", errSupervisor, addr, host)
	}
	return nil
}

// NormalizeFingerprint returns a SHA-256 fingerprint written as 64
// hexadecimal digits, in either case, with or without colons between the
// bytes, in the form smtls.Fingerprint and smtls.PeerIdentity give (upper
// case, colons); ok is false when fp is not such a fingerprint.
func NormalizeFingerprint(fp string) (norm string, ok bool) {
	b, err := hex.DecodeString(strings.ReplaceAll(fp, ":", ""))
	if err != nil || len(b) != sha256.Size {
		return "", false
	}
	return strings.ReplaceAll(fmt.Sprintf("% X", b), " ", ":"), true
}

func endpointStrings(s *filter.Session) []string {
	out := make([]string, len(s.Endpoints))
	for i, e := range s.Endpoints {
		out[i] = e.String()
	}
	return out
}

// StopMonitor implements relay.Handler. Only the identity that started
// the session or an administrator may stop it; others are refused with
// CodeUnauthorized. A stop sent again (after a broken connection) for a
// session the same identity stopped here a moment ago is answered
// "stopped", with no second audit line.
func (s *server) StopMonitor(ctx context.Context, p *relay.Peer, req *relay.StopMonitor) (*relay.SessionStatus, error) {
	rec := s.auditRecord(p, audit.ActionStop)
	rec.SessionID = req.Session
	refuse := func(code string, err error) (*relay.SessionStatus, error) {
		rec.Result, rec.Reason = audit.ResultRefused, err.Error()
		s.writeAudit(rec)
		s.log.Info("monitor stop refused", "peer", p.Addr, "client", peerName(p), "err", err)
		return nil, &relay.Error{Code: code, Message: err.Error()}
	}
	if !filter.ValidID(req.Session) {
		rec.SessionID = ""
		return refuse(relay.CodeBadRequest, fmt.Errorf("session id %q is not 1 to %d of A-Z a-z 0-9 . _ -", req.Session, filter.MaxIDLen))
	}
	_, requester := smtls.PeerIdentity(p.TLS)
	cur := findSession(s.allSessions(), req.Session)
	if cur == nil {
		if prev, ok := s.stops.get(req.Session); ok && prev.Requester == requester {
			s.log.Info("monitor stop repeated", "session", prev.ID, "peer", p.Addr, "client", peerName(p))
			st := sessionReply(prev, true)
			st.State, st.AlreadyStopped = relay.SessionStopped, true
			return st, nil
		}
		return refuse(relay.CodeUnknown, fmt.Errorf("session %q does not exist", req.Session))
	}
	rec.Agent, rec.Endpoints, rec.Supervisor = cur.Agent, endpointStrings(cur), cur.Supervisor
	if !s.mayStop(p, cur) {
		return refuse(relay.CodeUnauthorized, fmt.Errorf("session %s was started by %s; only that identity or an administrator may stop it", cur.ID, requesterName(cur)))
	}
	sess, err := s.stopSession(req.Session)
	if err != nil {
		return refuse(relay.CodeUnknown, err)
	}
	if sess.Agent == "" {
		sess = cur
	}
	s.stops.add(sess)
	rec.Result = audit.ResultAccepted
	rec.Agent, rec.Endpoints, rec.Supervisor = sess.Agent, endpointStrings(sess), sess.Supervisor
	if err := s.writeAudit(rec); err != nil {
		return nil, &relay.Error{Code: relay.CodeInternal, Message: "the session stopped, but the audit trail cannot be written: " + err.Error()}
	}
	s.writeEnd(sess, audit.ReasonStopped, rec.Time)
	s.log.Info("monitor stopped", "session", sess.ID, "agent", sess.Agent, "peer", p.Addr, "client", peerName(p))
	st := sessionReply(sess, false)
	st.State = relay.SessionStopped
	return st, nil
}

// recentStops remembers the last sessions stopped on this member (at most
// maxRecentStops, for at most recentStopAge), so that a stop sent again
// after a broken connection is answered truthfully. Safe for concurrent
// use.
type recentStops struct {
	mu    sync.Mutex
	order []string
	m     map[string]stoppedSession
}

type stoppedSession struct {
	*filter.Session
	at time.Time
}

const (
	maxRecentStops = 1024
	recentStopAge  = time.Hour
)

func (r *recentStops) add(sess *filter.Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]stoppedSession{}
	}
	if _, ok := r.m[sess.ID]; !ok {
		r.order = append(r.order, sess.ID)
	}
	r.m[sess.ID] = stoppedSession{sess, time.Now()}
	for len(r.order) > maxRecentStops {
		delete(r.m, r.order[0])
		r.order = r.order[1:]
	}
}

func (r *recentStops) get(id string) (*filter.Session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	x, ok := r.m[id]
	if !ok || time.Since(x.at) > recentStopAge {
		return nil, false
	}
	return x.Session, true
}

// Media implements relay.Handler: a capture server takes no media.
func (s *server) Media(p *relay.Peer, f *relay.MediaFrame) error {
	return &relay.Error{Code: relay.CodeBadRequest, Message: "a capture server does not accept media"}
}

// Closed implements relay.Handler: the connection's agent watch ends.
func (s *server) Closed(p *relay.Peer, err error) { s.watch.remove(p) }

// Status implements relay.Handler.
func (s *server) Status(ctx context.Context, p *relay.Peer) (any, error) {
	return s.status(), nil
}

func (s *server) status() *status.ServerStatus {
	st := &status.ServerStatus{Server: s.cfg.Name, Version: relay.Version, UptimeS: time.Since(s.started).Seconds(),
		Source: sourceName(s.cfg), ReplayDone: s.stats.replayDone.Load(),
		Capture: status.CaptureStatus{Frames: s.stats.frames.Load(), DecodeErrors: s.stats.decodeErrors.Load(),
			RTP: s.stats.rtp.Load(), RTCP: s.stats.rtcp.Load(), Matched: s.stats.matched.Load()},
		Supervisors: s.fw.Stats(), Sessions: []status.SessionStatus{}}
	if len(s.lives) > 0 {
		var k capture.LiveStats
		for _, l := range s.lives {
			ls := l.Stats()
			k.Packets += ls.Packets
			k.Drops += ls.Drops
			k.FreezeQueue += ls.FreezeQueue
		}
		st.Kernel = &status.KernelStatus{Packets: k.Packets, Drops: k.Drops, FreezeQueue: k.FreezeQueue}
	}
	owners := map[string]cluster.SessionStatus{}
	if s.node != nil {
		cs := s.node.Status()
		st.Cluster = &cs
		for _, x := range cs.Sessions {
			owners[x.ID] = x
		}
	}
	recs, recStates := s.rec.paths(), s.rec.states()
	sup := map[string]relay.SenderStats{}
	for _, x := range st.Supervisors {
		sup[x.Supervisor] = x
	}
	for _, w := range s.workers {
		_, tracked, overflow := w.streamStats()
		st.Capture.Streams += tracked
		st.Capture.StreamOverflow += overflow
	}
	streams := s.sessionStreams()
	s.addEncrypted(streams)
	for _, sj := range streams {
		sj.SupervisorState = "idle"
		if o, ok := owners[sj.ID]; ok {
			sj.Owner, sj.CapturedBy = o.Owner, o.CapturedBy
		}
		sj.Recording, sj.RecordingState = recs[sj.ID], recStates[sj.ID]
		if ss, ok := sup[sj.Supervisor]; ok {
			sj.SupervisorState = ss.State
			sj.QueueDrops = ss.Dropped
			if ss.State != "connected" && !ss.UnreachableSince.IsZero() {
				sj.SupervisorError = ss.LastError
				sj.SupervisorErrorSince = ss.UnreachableSince.UTC().Format(time.RFC3339)
			}
		}
		st.Sessions = append(st.Sessions, sj)
	}
	return st
}

// sessionStreams returns every session with its streams and their
// figures (packets, loss, jitter, MOS) and the worst MOS, the rest of the
// status left to fill.
func (s *server) sessionStreams() []status.SessionStatus {
	streams := map[string][]status.StreamStatus{}
	for _, w := range s.workers {
		stats, _, _ := w.streamStats()
		for k, n := range w.snapshot() {
			sj := status.StreamStatus{SSRC: fmt.Sprintf("0x%08x", k.ssrc),
				Direction: k.dir.String(), Src: k.src.String(), Dst: k.dst.String(), Packets: n}
			key := capture.StreamKey{VLAN: capture.NoVLAN, Src: k.src, Dst: k.dst, SSRC: k.ssrc}
			if k.vlan != 0 {
				v := int(k.vlan & 0x0fff)
				sj.VLAN = &v
				key.VLAN = uint16(v)
			}
			if x, ok := stats[key]; ok {
				sj.Codec, sj.Lost, sj.LostNet, sj.LostCap = x.Codec, x.Lost, x.LostNetwork, x.LostCapture
				sj.JitterMs, sj.MaxDeltaMs = x.Jitter, x.MaxDelta
				sj.MOS = streamMOS(x)
			}
			streams[k.session] = append(streams[k.session], sj)
		}
	}
	var out []status.SessionStatus
	for _, x := range s.filter.Sessions() {
		sj := status.SessionStatus{ID: x.ID, Agent: x.Agent, Endpoints: endpointStrings(x), Supervisor: x.Supervisor,
			Streams: streams[x.ID], Requester: x.RequesterSubject, Informed: x.Informed}
		if !x.Until.IsZero() {
			sj.Until = x.Until.UTC().Format(time.RFC3339)
		}
		if !x.Started.IsZero() {
			sj.Started = x.Started.UTC().Format(time.RFC3339)
		}
		if sj.Streams == nil {
			sj.Streams = []status.StreamStatus{}
		}
		sort.Slice(sj.Streams, func(i, j int) bool {
			return sj.Streams[i].Src+sj.Streams[i].SSRC < sj.Streams[j].Src+sj.Streams[j].SSRC
		})
		for _, y := range sj.Streams {
			sj.Packets += y.Packets
		}
		sj.WorstMOS = worstMOS(sj.Streams)
		out = append(out, sj)
	}
	return out
}
