package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/silentmon/silentmon/filter"
)

// routeCheckEvery is how often the node looks for new routes, to fetch a
// snapshot from each new peer.
const routeCheckEvery = 100 * time.Millisecond

// snapTimeout bounds one snapshot request.
const snapTimeout = time.Second

// Node is this capture server's membership in the cluster. It is safe for
// concurrent use. Start creates it; Close stops its goroutines and the
// embedded NATS server.
type Node struct {
	cfg     Config
	log     *slog.Logger
	srv     *server.Server
	nc      *nats.Conn
	busSubj string

	mu      sync.Mutex // guards the fields below
	st      *state
	subs    map[int]func([]*filter.Session)
	nextSub int
	synced  map[string]bool // server IDs of routes a snapshot came from
	closed  bool

	dirty chan struct{} // capacity 1: the session set changed
	done  chan struct{}
	wg    sync.WaitGroup

	stats counters
}

type counters struct {
	announced, withdrawn, received, invalid, expired, snapshots, snapshotErrs, slowConsumer atomic.Uint64
}

// Start starts the embedded NATS server with its route listener, connects
// to it in-process and joins the cluster through cfg.Peers. It returns once
// the route listener is open; routes to the seeds come up in the
// background and are retried forever.
func Start(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("member", cfg.Name)
	host, portStr, _ := net.SplitHostPort(cfg.Listen)
	port, _ := strconv.Atoi(portStr)
	if port == 0 {
		port = server.RANDOM_PORT
	}
	if host == "" {
		host = "0.0.0.0"
	}
	routes := make([]*url.URL, 0, len(cfg.Peers))
	for _, p := range cfg.Peers {
		routes = append(routes, &url.URL{Scheme: "nats-route", Host: p})
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: cfg.Name,
		// The node connects in-process. The client listener cannot be
		// turned off while routes are on (the route listener waits for
		// it), so it is bound to loopback on a random port and needs a
		// random token that never leaves this process.
		Host:            "127.0.0.1",
		Port:            server.RANDOM_PORT,
		Authorization:   token,
		NoSigs:          true,
		NoSystemAccount: true,
		PingInterval:    cfg.PingInterval,
		MaxPingsOut:     2,
		MaxPayload:      8 << 20,
		Cluster: server.ClusterOpts{
			Name:           cfg.ClusterName,
			Host:           host,
			Port:           port,
			Advertise:      cfg.Advertise,
			NoAdvertise:    true, // no client URLs to gossip: there are none
			PoolSize:       -1,   // one route per peer
			ConnectRetries: 60,   // gossiped routes; seeds are retried forever
			PingInterval:   cfg.PingInterval,
			MaxPingsOut:    2,
			TLSTimeout:     2,
		},
		Routes: routes,
	}
	if !cfg.Insecure {
		tc, err := routeTLS(cfg.TLS, cfg.ClientTLS)
		if err != nil {
			return nil, err
		}
		opts.Cluster.TLSConfig = tc
	} else {
		log.Warn("cluster routes run in plaintext (--insecure): peers are not authenticated and session data crosses the network unencrypted")
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	nl := &natsLogger{l: log.With("component", "nats")}
	nl.starting.Store(true)
	srv.SetLoggerV2(nl, false, false, false)
	srv.Start()
	ready := false
	for deadline := time.Now().Add(10 * time.Second); !ready && nl.lastFatal() == "" && time.Now().Before(deadline); {
		ready = srv.ReadyForConnections(50*time.Millisecond) && srv.ClusterAddr() != nil
	}
	if !ready {
		srv.Shutdown()
		srv.WaitForShutdown()
		if msg := nl.lastFatal(); msg != "" {
			return nil, fmt.Errorf("cluster listen address %s: %s", cfg.Listen, msg)
		}
		return nil, fmt.Errorf("cluster listen address %s: the route listener did not start", cfg.Listen)
	}

	nl.starting.Store(false)
	n := &Node{
		cfg:     cfg,
		log:     log,
		srv:     srv,
		busSubj: "silentmon." + cfg.ClusterName + ".bus",
		st:      newState(cfg.Name),
		subs:    make(map[int]func([]*filter.Session)),
		synced:  make(map[string]bool),
		dirty:   make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	nc, err := nats.Connect("",
		nats.InProcessServer(srv),
		nats.Token(token),
		nats.Name("silentmon-cluster "+cfg.Name),
		nats.NoEcho(),
		nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				n.stats.slowConsumer.Add(1)
			}
			n.log.Warn("cluster bus error", "err", err)
		}),
	)
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("connecting to the embedded cluster server: %w", err)
	}
	n.nc = nc
	if _, err := nc.Subscribe(n.busSubj, n.onBus); err == nil {
		_, err = nc.Subscribe(n.snapSubj(srv.ID()), n.onSnapRequest)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("subscribing on the cluster bus: %w", err)
	}
	n.mu.Lock()
	n.st.touch(cfg.Name, cfg.Now(), nil)
	n.mu.Unlock()

	n.wg.Add(2)
	go n.notifyLoop()
	go n.tickLoop()
	log.Info("cluster member started", "routes", n.RouteAddr(), "tls", !cfg.Insecure, "peers", cfg.Peers)
	return n, nil
}

func (n *Node) snapSubj(serverID string) string {
	return "silentmon." + n.cfg.ClusterName + ".snap." + serverID
}

// Name returns this member's name.
func (n *Node) Name() string { return n.cfg.Name }

// RouteAddr returns the address the route listener is bound to.
func (n *Node) RouteAddr() string {
	if a := n.srv.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// Announce makes this member the owner of s and propagates s to every
// member; the node refreshes it every Config.Refresh until Withdraw or
// Close. Announcing an ID again replaces the session (and takes it over if
// another member owned it). s must not be modified afterwards.
func (n *Node) Announce(s *filter.Session) error {
	if s == nil {
		return fmt.Errorf("announce: no session")
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	e := n.st.announce(s, n.cfg.Now())
	n.mu.Unlock()
	n.stats.announced.Add(1)
	n.markDirty()
	return n.publish(&message{Kind: kindUp, From: n.cfg.Name, Sessions: []wireEntry{e}})
}

// Withdraw ends session id everywhere. Any member may withdraw any session
// it knows; an unknown id returns an error wrapping ErrUnknownSession.
func (n *Node) Withdraw(id string) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	v, ok := n.st.withdraw(id, n.cfg.Now())
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("withdraw session %q: %w", id, ErrUnknownSession)
	}
	n.stats.withdrawn.Add(1)
	n.markDirty()
	return n.publish(&message{Kind: kindDown, From: n.cfg.Name, Down: []wireDown{{ID: id, Version: v}}})
}

// Sessions returns the converged set, this member's and the others' that
// have not expired, sorted by ID. The slice is the caller's; the sessions
// are shared and must not be modified.
func (n *Node) Sessions() []*filter.Session {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.st.list()
}

// Owner returns the member that owns session id.
func (n *Node) Owner(id string) (string, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.st.sessions[id]
	if e == nil {
		return "", false
	}
	return e.owner, true
}

// Subscribe registers fn to receive the session set (as Sessions returns
// it) after every change, and once soon after registration. fn runs on the
// node's notification goroutine, one call at a time, never under the
// node's lock; changes that happen while it runs coalesce into one later
// call. The returned function unregisters fn.
func (n *Node) Subscribe(fn func([]*filter.Session)) (cancel func()) {
	n.mu.Lock()
	id := n.nextSub
	n.nextSub++
	n.subs[id] = fn
	n.mu.Unlock()
	n.markDirty()
	return func() {
		n.mu.Lock()
		delete(n.subs, id)
		n.mu.Unlock()
	}
}

// ReportCapturing tells the cluster which sessions this member is capturing
// packets of right now (for status: which member captures which session).
// It publishes at once when the list changed, and with every refresh.
func (n *Node) ReportCapturing(ids []string) {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if ids == nil {
		ids = []string{}
	}
	n.mu.Lock()
	if n.closed || slices.Equal(ids, n.st.capturing()) {
		n.mu.Unlock()
		return
	}
	n.st.touch(n.cfg.Name, n.cfg.Now(), ids)
	n.mu.Unlock()
	_ = n.publish(&message{Kind: kindBeat, From: n.cfg.Name, Capturing: ids, HasCapturing: true})
}

// Close stops the node's goroutines, its bus connection and the embedded
// server. Sessions this member owns are not withdrawn: the other members
// drop them after Config.SessionTTL unless a client re-asserts them
// elsewhere. Close is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()
	close(n.done)
	n.wg.Wait()
	n.nc.Close()
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.log.Info("cluster member stopped")
	return nil
}

func (n *Node) markDirty() {
	select {
	case n.dirty <- struct{}{}:
	default:
	}
}

func (n *Node) publish(m *message) error {
	b, err := encodeMessage(m)
	if err != nil {
		return err
	}
	if err := n.nc.Publish(n.busSubj, b); err != nil {
		if errors.Is(err, nats.ErrConnectionClosed) {
			return ErrClosed
		}
		return fmt.Errorf("publishing a cluster %s message: %w", m.Kind, err)
	}
	return nil
}

// onBus runs on the subscription's goroutine, one message at a time.
func (n *Node) onBus(msg *nats.Msg) {
	m, err := decodeMessage(msg.Data)
	if err != nil {
		n.stats.invalid.Add(1)
		n.log.Warn("ignoring a bad cluster message", "err", err)
		return
	}
	n.stats.received.Add(1)
	if n.merge(m) {
		n.markDirty()
	}
}

// merge applies a message (from the bus or a snapshot) to the state and
// reports whether the session set changed.
func (n *Node) merge(m *message) bool {
	now := n.cfg.Now()
	changed := false
	n.mu.Lock()
	defer n.mu.Unlock()
	if m.From == n.cfg.Name {
		return false
	}
	var capturing []string
	if m.HasCapturing {
		capturing = m.Capturing
		if capturing == nil {
			capturing = []string{}
		}
	}
	n.st.touch(m.From, now, capturing)
	for _, d := range m.Down {
		if n.st.remove(d.ID, d.Version, now) {
			changed = true
		}
	}
	for _, e := range m.Sessions {
		if n.st.apply(e, now, n.cfg.SessionTTL) {
			changed = true
		}
	}
	return changed
}

// onSnapRequest answers a peer's snapshot request with everything known.
func (n *Node) onSnapRequest(msg *nats.Msg) {
	n.mu.Lock()
	es, ds := n.st.snapshot(n.cfg.Now())
	capturing := n.st.capturing()
	n.mu.Unlock()
	b, err := encodeMessage(&message{Kind: kindSnap, From: n.cfg.Name, Sessions: es, Down: ds,
		Capturing: capturing, HasCapturing: true})
	if err == nil {
		err = msg.Respond(b)
	}
	if err != nil {
		n.log.Warn("answering a snapshot request", "err", err)
	}
}

// notifyLoop calls the subscribers after changes.
func (n *Node) notifyLoop() {
	defer n.wg.Done()
	for {
		select {
		case <-n.done:
			return
		case <-n.dirty:
		}
		n.mu.Lock()
		list := n.st.list()
		fns := make([]func([]*filter.Session), 0, len(n.subs))
		ids := make([]int, 0, len(n.subs))
		for id := range n.subs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			fns = append(fns, n.subs[id])
		}
		n.mu.Unlock()
		for _, fn := range fns {
			fn(list)
		}
	}
}

// tickLoop refreshes owned sessions, expires others' and fetches a
// snapshot from every new route.
func (n *Node) tickLoop() {
	defer n.wg.Done()
	sweepEvery := min(max(n.cfg.SessionTTL/10, 50*time.Millisecond), time.Second)
	refresh := time.NewTicker(n.cfg.Refresh)
	sweep := time.NewTicker(sweepEvery)
	routes := time.NewTicker(routeCheckEvery)
	defer refresh.Stop()
	defer sweep.Stop()
	defer routes.Stop()
	n.checkRoutes()
	for {
		select {
		case <-n.done:
			return
		case <-refresh.C:
			n.beat()
		case <-sweep.C:
			n.expire()
		case <-routes.C:
			n.checkRoutes()
		}
	}
}

// beat publishes every owned session and the capture list.
func (n *Node) beat() {
	n.mu.Lock()
	own := n.st.owned()
	capturing := n.st.capturing()
	n.st.touch(n.cfg.Name, n.cfg.Now(), nil)
	n.mu.Unlock()
	for i := 0; i == 0 || i < len(own); i += maxEntries {
		chunk := own[i:min(i+maxEntries, len(own))]
		if err := n.publish(&message{Kind: kindBeat, From: n.cfg.Name, Sessions: chunk,
			Capturing: capturing, HasCapturing: true}); err != nil {
			n.log.Warn("refreshing sessions", "err", err)
			return
		}
	}
}

func (n *Node) expire() {
	n.mu.Lock()
	gone := n.st.expire(n.cfg.Now(), n.cfg.SessionTTL, n.cfg.TombstoneTTL)
	n.mu.Unlock()
	if len(gone) > 0 {
		n.stats.expired.Add(uint64(len(gone)))
		n.log.Info("sessions expired: no refresh from their owner", "sessions", gone, "ttl", n.cfg.SessionTTL)
		n.markDirty()
	}
}

// checkRoutes fetches a snapshot from each peer whose route is new since
// the last check, and forgets peers whose route went away so that a
// reconnection (restart, healed partition) fetches again.
func (n *Node) checkRoutes() {
	rz, err := n.srv.Routez(nil)
	if err != nil {
		return
	}
	up := make(map[string]bool, len(rz.Routes))
	for _, r := range rz.Routes {
		up[r.RemoteID] = true
	}
	n.mu.Lock()
	for id := range n.synced {
		if !up[id] {
			delete(n.synced, id)
		}
	}
	var todo []*server.RouteInfo
	for _, r := range rz.Routes {
		if !n.synced[r.RemoteID] {
			todo = append(todo, r)
		}
	}
	n.mu.Unlock()
	for _, r := range todo {
		if n.fetchSnapshot(r) {
			n.mu.Lock()
			n.synced[r.RemoteID] = true
			n.mu.Unlock()
		}
	}
}

// fetchSnapshot asks the member behind route r for everything it knows.
func (n *Node) fetchSnapshot(r *server.RouteInfo) bool {
	select {
	case <-n.done:
		return false
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), snapTimeout)
	defer cancel()
	go func() {
		select {
		case <-n.done: // Close does not wait for a slow peer
			cancel()
		case <-ctx.Done():
		}
	}()
	msg, err := n.nc.RequestWithContext(ctx, n.snapSubj(r.RemoteID), nil)
	if err != nil {
		// Usually the peer's subscription has not crossed the new route
		// yet; the next check retries.
		n.stats.snapshotErrs.Add(1)
		n.log.Debug("snapshot request failed; retrying", "peer", r.RemoteName, "err", err)
		return false
	}
	m, err := decodeMessage(msg.Data)
	if err != nil || m.Kind != kindSnap {
		n.stats.invalid.Add(1)
		n.log.Warn("ignoring a bad snapshot", "peer", r.RemoteName, "err", err)
		return true
	}
	n.stats.snapshots.Add(1)
	changed := n.merge(m)
	n.log.Info("fetched sessions from a peer", "peer", m.From, "sessions", len(m.Sessions), "withdrawn", len(m.Down))
	if changed {
		n.markDirty()
	}
	return true
}

func randomToken() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating the bus token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
