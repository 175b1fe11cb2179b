package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
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
	cfg     *config
	log     *slog.Logger
	filter  *filter.Filter
	fw      *relay.Forwarder
	relay   *relay.Server
	ln      *service.Listener
	started time.Time

	sessionsChanged chan struct{} // closed and replaced on every change
	smu             sync.Mutex

	stats   captureStats
	workers []*worker
	lives   []*capture.Live
	node    *cluster.Node // nil without a cluster
	audit   *audit.Log    // nil without audit.file
	rec     *recorders
	reg     *prometheus.Registry
}

type captureStats struct {
	frames, decodeErrors, rtp, rtcp, matched, forwarded atomic.Uint64
	replayDone                                          atomic.Bool
}

func run(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	log, _ := cli.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	s := &server{cfg: cfg, log: log, filter: filter.New(), started: time.Now(),
		sessionsChanged: make(chan struct{})}

	dialTLS, err := service.DialTLS(cfg.SecurityDir, cfg.Insecure, cfg.StrictKeys, log)
	if err != nil {
		return cli.Usage(err)
	}
	s.ln, err = service.Listen(service.ListenConfig{Addr: cfg.Listen, SecurityDir: cfg.SecurityDir,
		Insecure: cfg.Insecure, Strict: cfg.StrictKeys, Logger: log,
		Lockout: smtls.LockoutConfig{Threshold: cfg.LockThreshold, Duration: cfg.LockDuration, Logger: log}})
	if err != nil {
		return cli.Usage(err)
	}
	defer s.ln.Close()

	var sources []capture.Source
	var drops []*atomic.Uint64 // kernel drop counter of each source's capture
	if cfg.Pcap != "" {
		fs, err := capture.OpenFile(cfg.Pcap, capture.FileOptions{Speed: cfg.PcapSpeed})
		if err != nil {
			return cli.Usage(err)
		}
		sources = append(sources, fs)
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
				return cli.Failf("cannot capture on %s: %v", ifname, err)
			}
			s.lives = append(s.lives, live)
			for _, src := range live.Sources() {
				sources = append(sources, src)
				drops = append(drops, live.DropCounter())
			}
		}
	}
	closeSources := func() {
		for _, src := range sources {
			src.Close()
		}
	}
	s.rec = newRecorders(cfg.RecordDir, log)
	defer s.rec.closeAll()
	if cfg.AuditFile != "" {
		s.audit, err = audit.Open(cfg.AuditFile)
		if err != nil {
			closeSources()
			return cli.Usagef("audit file %q: %v", cfg.AuditFile, err)
		}
		defer s.audit.Close()
		stop := audit.ReopenOnSIGHUP(s.audit, func(err error) { log.Error("reopening the audit file failed", "file", cfg.AuditFile, "err", err) })
		defer stop()
	}

	reg := prometheus.NewRegistry()
	s.reg = reg
	s.registerMetrics(reg)
	if s.ln.TLS != nil {
		reg.MustRegister(smtls.NewCollector(s.ln.Lockout, s.ln.TLS))
	}
	ms, err := service.StartMetrics(cfg.MetricsListen, reg, log)
	if err != nil {
		closeSources()
		return cli.Usage(err)
	}
	defer ms.Close()

	s.fw = relay.NewForwarder(relay.ForwarderConfig{
		Dial:              relay.DialConfig{TLS: dialTLS, TOS: cfg.MediaTOS},
		Name:              cfg.Name,
		QueueLen:          cfg.QueueLen,
		HeartbeatInterval: cfg.HeartbeatIntv,
		HeartbeatRetries:  cfg.HeartbeatRetry,
		Logger:            log,
	})
	defer s.fw.Close()

	if cfg.Cluster {
		if err := s.startCluster(); err != nil {
			closeSources()
			return err
		}
		defer s.node.Close()
	}

	s.relay = relay.NewServer(relay.ServerConfig{Handler: s, Logger: log, Name: cfg.Name,
		HeartbeatTimeout: cfg.HeartbeatTmo})
	serveDone := make(chan struct{})
	go func() {
		defer close(serveDone)
		s.relay.Serve(s.ln)
	}()
	defer func() {
		s.relay.Close()
		<-serveDone
	}()
	log.Info("smserver started", "name", cfg.Name, "listen", s.ln.Addr().String(),
		"tls", !cfg.Insecure, "source", sourceName(cfg))

	captureCtx, stopCapture := context.WithCancel(ctx)
	defer stopCapture()
	capDone := make(chan error, len(sources))
	for i, src := range sources {
		w := newWorker(s, src, drops[i])
		s.workers = append(s.workers, w)
	}
	for _, w := range s.workers {
		go func() { capDone <- w.run(captureCtx, cfg.PcapWaitSession) }()
	}
	if s.node != nil {
		go s.reportCapturing(captureCtx)
	}
	var capErr error
	waitWorkers := func(n int) {
		for ; n > 0; n-- {
			if err := <-capDone; err != nil && capErr == nil {
				capErr = err
			}
		}
	}
	if cfg.Pcap == "" {
		<-ctx.Done()
		log.Info("stopping", "reason", "signal")
		closeSources() // unblocks ReadBatch
		waitWorkers(len(s.workers))
	} else {
		select {
		case <-ctx.Done():
			log.Info("stopping", "reason", "signal")
			stopCapture()
			waitWorkers(len(s.workers))
		case err := <-capDone:
			if err != nil {
				return cli.Failf("reading capture %s: %v", cfg.Pcap, err)
			}
			s.stats.replayDone.Store(true)
			log.Info("replay finished", "frames", s.stats.frames.Load(), "matched", s.stats.matched.Load())
			if cfg.ExitAfterReplay {
				fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				s.fw.Flush(fctx)
				cancel()
			} else {
				<-ctx.Done()
			}
		}
	}
	for _, l := range s.lives {
		l.Close()
	}
	if capErr != nil {
		return cli.Failf("capture stopped: %v", capErr)
	}
	fmt.Fprintf(stdout, "smserver: frames read %d, RTP %d, RTP matched %d, packets relayed %d\n",
		s.stats.frames.Load(), s.stats.rtp.Load(), s.stats.matched.Load(), s.relayed())
	return nil
}

// reportCapturing tells the cluster every second which sessions this
// server is capturing packets of.
func (s *server) reportCapturing(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var ids []string
		for _, w := range s.workers {
			ids = append(ids, w.activeSessions()...)
		}
		s.node.ReportCapturing(ids)
	}
}

func sourceName(cfg *config) string {
	if cfg.Pcap != "" {
		return "pcap:" + cfg.Pcap
	}
	return fmt.Sprint(cfg.Interfaces)
}

func (s *server) relayed() uint64 {
	var n uint64
	for _, st := range s.fw.Stats() {
		n += st.Sent
	}
	return n
}

func (s *server) registerMetrics(reg *prometheus.Registry) {
	counter := func(name, help string, v *atomic.Uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "capture", Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	counter("frames_total", "Frames read from the capture sources.", &s.stats.frames)
	counter("decode_errors_total", "Frames that failed to decode.", &s.stats.decodeErrors)
	counter("rtp_packets_total", "RTP packets decoded.", &s.stats.rtp)
	counter("rtcp_packets_total", "RTCP packets decoded.", &s.stats.rtcp)
	counter("matched_packets_total", "RTP packets belonging to a monitor session.", &s.stats.matched)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Subsystem: "capture", Name: "streams", Help: "RTP streams tracked by the capture's stream tables."},
		func() float64 {
			n := 0
			for _, w := range s.workers {
				_, t, _ := w.streamStats()
				n += t
			}
			return float64(n)
		}))
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "capture", Name: "streams_over_cap_total", Help: "RTP packets of streams beyond the stream table's cap (not tracked)."},
		func() float64 {
			var n uint64
			for _, w := range s.workers {
				_, _, o := w.streamStats()
				n += o
			}
			return float64(n)
		}))
	kernel := func(name, help string, get func(capture.LiveStats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "capture", Name: name, Help: help},
			func() float64 {
				var n uint64
				for _, l := range s.lives {
					n += get(l.Stats())
				}
				return float64(n)
			}))
	}
	kernel("kernel_packets_total", "Frames the kernel passed to the capture rings (after the BPF filter).", func(st capture.LiveStats) uint64 { return st.Packets })
	kernel("kernel_drops_total", "Frames the kernel dropped because a capture ring was full.", func(st capture.LiveStats) uint64 { return st.Drops })
	kernel("kernel_freezes_total", "Times a capture ring had no free block.", func(st capture.LiveStats) uint64 { return st.FreezeQueue })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Name: "sessions", Help: "Active monitor sessions."},
		func() float64 { return float64(len(s.filter.Sessions())) }))
	sender := func(name, help string, get func(relay.SenderStats) uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "relay", Name: name, Help: help},
			func() float64 {
				var n uint64
				if s.fw != nil {
					for _, st := range s.fw.Stats() {
						n += get(st)
					}
				}
				return float64(n)
			}))
	}
	reg.MustRegister(newMOSCollector(s.sessionStreams))
	sender("media_sent_total", "Media packets sent to supervisor services.", func(st relay.SenderStats) uint64 { return st.Sent })
	sender("media_dropped_total", "Media packets dropped because a supervisor queue was full.", func(st relay.SenderStats) uint64 { return st.Dropped })
	sender("reconnects_total", "Reconnections to supervisor services.", func(st relay.SenderStats) uint64 { return st.Reconnects })
}

// sessionsUpdated wakes whoever waits for a session change, tells each
// supervisor service which of its sessions stopped and closes supervisor
// connections no session uses.
func (s *server) sessionsUpdated() {
	s.fw.Sync(s.filter.Sessions())
	s.rec.sync(s.filter.Sessions())
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

func newSessionID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// StartMonitor implements relay.Handler. Every request, accepted or
// refused, is written to the audit trail before the reply; if the audit
// trail cannot be written, the request is refused.
func (s *server) StartMonitor(ctx context.Context, p *relay.Peer, req *relay.StartMonitor) (*relay.SessionStatus, error) {
	rec := s.auditRecord(p, audit.ActionStart)
	rec.Agent, rec.Endpoints, rec.Supervisor, rec.SessionID = req.Agent, req.Endpoints, req.Supervisor, req.Session
	sess, err := sessionFromRequest(req)
	if err == nil {
		rec.SessionID = sess.ID
		err = s.startSession(sess)
	}
	if err != nil {
		rec.Result, rec.Reason = audit.ResultRefused, err.Error()
		s.writeAudit(rec)
		s.log.Info("monitor start refused", "peer", p.Addr, "agent", req.Agent, "err", err)
		return nil, &relay.Error{Code: relay.CodeBadRequest, Message: err.Error()}
	}
	rec.Result = audit.ResultAccepted
	if err := s.writeAudit(rec); err != nil {
		s.stopSession(sess.ID)
		return nil, &relay.Error{Code: relay.CodeInternal, Message: "the audit trail cannot be written, so no session is started: " + err.Error()}
	}
	s.log.Info("monitor started", "session", sess.ID, "agent", sess.Agent, "endpoints", req.Endpoints,
		"supervisor", sess.Supervisor, "record", sess.Record, "peer", p.Addr, "client", peerName(p))
	return &relay.SessionStatus{Session: sess.ID, State: "started", Agent: sess.Agent,
		Endpoints: endpointStrings(sess), Supervisor: sess.Supervisor}, nil
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
		var err error
		if cc.TLS, err = smtls.ServerConfig(s.cfg.SecurityDir, smtls.Options{Strict: s.cfg.StrictKeys}); err != nil {
			return cli.Usage(err)
		}
		if cc.ClientTLS, err = smtls.ClientConfig(s.cfg.SecurityDir, smtls.Options{Strict: s.cfg.StrictKeys}); err != nil {
			return cli.Usage(err)
		}
	}
	node, err := cluster.Start(cc)
	if err != nil {
		return cli.Failf("cluster on %s: %v", s.cfg.ClusterListen, err)
	}
	s.node = node
	s.reg.MustRegister(node.Collector())
	node.Subscribe(func(ss []*filter.Session) {
		s.filter.Set(ss)
		s.sessionsUpdated()
	})
	log.Info("cluster member started", "listen", node.RouteAddr(), "peers", s.cfg.Peers)
	return nil
}

func peerName(p *relay.Peer) string {
	if p.TLS == nil {
		return "(insecure)"
	}
	subject, _ := smtls.PeerIdentity(p.TLS)
	return subject
}

func sessionFromRequest(req *relay.StartMonitor) (*filter.Session, error) {
	if req.Agent == "" {
		return nil, errors.New("the request names no agent")
	}
	if len(req.Endpoints) == 0 {
		return nil, fmt.Errorf("the request for agent %s names no endpoint", req.Agent)
	}
	sess := &filter.Session{ID: req.Session, Agent: req.Agent, Supervisor: req.Supervisor, Record: req.Record}
	if sess.ID == "" {
		sess.ID = newSessionID()
	}
	for _, e := range req.Endpoints {
		ep, err := filter.ParseEndpoint(e)
		if err != nil {
			return nil, err
		}
		sess.Endpoints = append(sess.Endpoints, ep)
	}
	host, port, err := net.SplitHostPort(req.Supervisor)
	if err != nil || host == "" || port == "" {
		return nil, fmt.Errorf("supervisor %q is not HOST:PORT", req.Supervisor)
	}
	return sess, sess.Validate()
}

func endpointStrings(s *filter.Session) []string {
	out := make([]string, len(s.Endpoints))
	for i, e := range s.Endpoints {
		out[i] = e.String()
	}
	return out
}

// StopMonitor implements relay.Handler.
func (s *server) StopMonitor(ctx context.Context, p *relay.Peer, req *relay.StopMonitor) (*relay.SessionStatus, error) {
	rec := s.auditRecord(p, audit.ActionStop)
	rec.SessionID = req.Session
	sess, err := s.stopSession(req.Session)
	if err != nil {
		rec.Result, rec.Reason = audit.ResultRefused, err.Error()
		s.writeAudit(rec)
		return nil, &relay.Error{Code: relay.CodeUnknown, Message: err.Error()}
	}
	rec.Result = audit.ResultAccepted
	rec.Agent, rec.Endpoints, rec.Supervisor = sess.Agent, endpointStrings(sess), sess.Supervisor
	if err := s.writeAudit(rec); err != nil {
		return nil, &relay.Error{Code: relay.CodeInternal, Message: "the session stopped, but the audit trail cannot be written: " + err.Error()}
	}
	s.log.Info("monitor stopped", "session", sess.ID, "agent", sess.Agent, "peer", p.Addr, "client", peerName(p))
	return &relay.SessionStatus{Session: sess.ID, State: "stopped", Agent: sess.Agent,
		Endpoints: endpointStrings(sess), Supervisor: sess.Supervisor}, nil
}

// Media implements relay.Handler: a capture server takes no media.
func (s *server) Media(p *relay.Peer, f *relay.MediaFrame) error {
	return &relay.Error{Code: relay.CodeBadRequest, Message: "a capture server does not accept media"}
}

// Closed implements relay.Handler.
func (s *server) Closed(p *relay.Peer, err error) {}

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
	recs := s.rec.paths()
	sup := map[string]relay.SenderStats{}
	for _, x := range st.Supervisors {
		sup[x.Supervisor] = x
	}
	for _, w := range s.workers {
		_, tracked, overflow := w.streamStats()
		st.Capture.Streams += tracked
		st.Capture.StreamOverflow += overflow
	}
	for _, sj := range s.sessionStreams() {
		sj.SupervisorState = "idle"
		if o, ok := owners[sj.ID]; ok {
			sj.Owner, sj.CapturedBy = o.Owner, o.CapturedBy
		}
		sj.Recording = recs[sj.ID]
		if ss, ok := sup[sj.Supervisor]; ok {
			sj.SupervisorState = ss.State
			sj.QueueDrops = ss.Dropped
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
			Streams: streams[x.ID]}
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
