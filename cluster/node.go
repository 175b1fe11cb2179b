package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
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

// snapPage bounds the tombstones in one snapshot reply (about 100 bytes
// each, well under the 8 MB payload limit); more are fetched in pages.
const snapPage = 20_000

// maxPendingEnds bounds the ends waiting for slow end subscribers; the
// oldest are dropped first.
const maxPendingEnds = 10_000

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
	endSubs map[int]func(id, reason string)
	nextSub int
	ends    []End           // ends not yet delivered to the end subscribers
	synced  map[string]bool // server IDs of routes a snapshot came from
	closed  bool

	dirty chan struct{} // capacity 1: the session set changed
	done  chan struct{}
	wg    sync.WaitGroup

	stats counters

	kv *sharedStore // the shared store (shared.go), with its own lock
}

type counters struct {
	announced, withdrawn, received, invalid, lifetimeOver, adopted, ended, endsDropped,
	snapshots, snapshotErrs, slowConsumer atomic.Uint64
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
		tc, err := routeTLS(cfg.TLS, cfg.ClientTLS, cfg.OnRouteRefused)
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
		st:      newState(cfg.Name, max(cfg.MaxTombstones, 0)),
		subs:    make(map[int]func([]*filter.Session)),
		endSubs: make(map[int]func(id, reason string)),
		synced:  make(map[string]bool),
		dirty:   make(chan struct{}, 1),
		done:    make(chan struct{}),
		kv:      newSharedStore(),
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
				// The shared store is not refreshed: fetch every
				// peer's snapshot again to recover what was dropped.
				n.mu.Lock()
				clear(n.synced)
				n.mu.Unlock()
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

	n.wg.Add(3)
	go n.notifyLoop()
	go n.tickLoop()
	go n.routeLoop()
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
// member; the node refreshes it every Config.Refresh until it ends or the
// node closes. Announcing an ID again replaces the session (and takes it
// over if another member owned it). An ID that has ended anywhere in the
// cluster (Withdraw, End, its lifetime) is refused with an error wrapping
// ErrEnded, and so is a session whose Until has passed. s must not be
// modified afterwards.
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
	e, err := n.st.announce(s, n.cfg.Now())
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	n.stats.announced.Add(1)
	n.markDirty()
	return n.publish(&message{Kind: kindUp, From: n.cfg.Name, Sessions: []wireEntry{e}})
}

// Withdraw ends session id everywhere with the reason "stopped": it is
// End(id, ReasonStopped).
func (n *Node) Withdraw(id string) error { return n.End(id, ReasonStopped) }

// End ends session id everywhere for reason (empty: "stopped"; at most 128
// printable characters), for example ReasonSupervisorGone when smserver
// finds the session's supervisor unreachable for longer than its grace.
// Any member may end any session it knows; an unknown id returns an error
// wrapping ErrUnknownSession. The end is terminal: every member keeps a
// tombstone of id for Config.TombstoneTTL and refuses the id meanwhile,
// whatever a member cut off by a partition kept announcing. Subscribers
// of SubscribeEnds on every member receive id and reason.
func (n *Node) End(id, reason string) error {
	if reason == "" {
		reason = ReasonStopped
	}
	if !validReason(reason) {
		return fmt.Errorf("end session %q: bad reason %q (1 to %d printable characters)", id, reason, maxReasonLen)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return ErrClosed
	}
	d, ok := n.st.end(id, reason, n.cfg.Now())
	n.takeEndsLocked()
	n.mu.Unlock()
	if !ok {
		return fmt.Errorf("end session %q: %w", id, ErrUnknownSession)
	}
	n.stats.withdrawn.Add(1)
	n.markDirty()
	return n.publish(&message{Kind: kindDown, From: n.cfg.Name, Down: []wireDown{d}})
}

// SubscribeEnds registers fn to be told of every session that ends on this
// member, with the reason: ReasonStopped, ReasonLifetimeOver,
// ReasonSupervisorGone or the reason End was given, wherever in the
// cluster the end was decided. fn runs on the node's notification
// goroutine, before the Subscribe callbacks that follow the same change,
// one call per ended session (ends do not coalesce; if fn falls more than
// 10,000 ends behind, the oldest are dropped and counted). The returned
// function unregisters fn.
func (n *Node) SubscribeEnds(fn func(id, reason string)) (cancel func()) {
	n.mu.Lock()
	id := n.nextSub
	n.nextSub++
	n.endSubs[id] = fn
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		delete(n.endSubs, id)
		n.mu.Unlock()
	}
}

// takeEndsLocked moves the state's new ends to the delivery queue. The
// caller holds n.mu.
func (n *Node) takeEndsLocked() {
	ends := n.st.takeEnds()
	if len(ends) == 0 {
		return
	}
	n.stats.ended.Add(uint64(len(ends)))
	for _, e := range ends {
		if e.Reason == ReasonLifetimeOver {
			n.stats.lifetimeOver.Add(1)
		}
	}
	n.ends = append(n.ends, ends...)
	if over := len(n.ends) - maxPendingEnds; over > 0 {
		n.stats.endsDropped.Add(uint64(over))
		n.ends = slices.Delete(n.ends, 0, over)
	}
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
// server. Sessions this member owns are not withdrawn: they belong to the
// cluster, and another member adopts them after Config.SessionTTL. Close
// is idempotent.
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
	n.mergeShared(m.From, m.Shared)
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
		if n.st.remove(d, now) {
			changed = true
		}
	}
	for _, e := range m.Sessions {
		if n.st.apply(e, now, n.cfg.SessionTTL) {
			changed = true
		}
	}
	n.takeEndsLocked()
	return changed
}

// onSnapRequest answers a peer's snapshot request with everything known,
// or the page of tombstones after req.After.
func (n *Node) onSnapRequest(msg *nats.Msg) {
	var req snapRequest
	if len(msg.Data) > 0 {
		if err := json.Unmarshal(msg.Data, &req); err != nil {
			n.stats.invalid.Add(1)
			n.log.Warn("ignoring a bad snapshot request", "err", err)
			return
		}
	}
	if req.Shared {
		n.answerSharedSnap(msg, req)
		return
	}
	n.mu.Lock()
	es, ds, more := n.st.snapshot(n.cfg.Now(), req.After, snapPage)
	capturing := n.st.capturing()
	n.mu.Unlock()
	b, err := encodeMessage(&message{Kind: kindSnap, From: n.cfg.Name, Sessions: es, Down: ds,
		Capturing: capturing, HasCapturing: true, More: more})
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
		for _, id := range slices.Sorted(maps.Keys(n.subs)) {
			fns = append(fns, n.subs[id])
		}
		endFns := make([]func(string, string), 0, len(n.endSubs))
		for _, id := range slices.Sorted(maps.Keys(n.endSubs)) {
			endFns = append(endFns, n.endSubs[id])
		}
		ends := n.ends
		n.ends = nil
		n.mu.Unlock()
		for _, e := range ends {
			for _, fn := range endFns {
				fn(e.ID, e.Reason)
			}
		}
		for _, fn := range fns {
			fn(list)
		}
	}
}

// tickLoop refreshes owned sessions and sweeps (lifetimes, adoptions,
// old tombstones). It never waits for a peer, so a slow snapshot cannot
// delay a refresh and make this member look silent.
func (n *Node) tickLoop() {
	defer n.wg.Done()
	sweepEvery := min(max(n.cfg.SessionTTL/10, 50*time.Millisecond), time.Second)
	refresh := time.NewTicker(n.cfg.Refresh)
	sweep := time.NewTicker(sweepEvery)
	defer refresh.Stop()
	defer sweep.Stop()
	for {
		select {
		case <-n.done:
			return
		case <-refresh.C:
			n.beat()
		case <-sweep.C:
			n.sweep()
		}
	}
}

// routeLoop fetches a snapshot from every new route.
func (n *Node) routeLoop() {
	defer n.wg.Done()
	routes := time.NewTicker(routeCheckEvery)
	defer routes.Stop()
	n.checkRoutes()
	for {
		select {
		case <-n.done:
			return
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

// sweep ends the sessions whose lifetime is over and adopts those whose
// owner fell silent (state.sweep), and publishes what this member now
// owns or ended.
func (n *Node) sweep() {
	n.sweepShared(n.cfg.Now())
	n.mu.Lock()
	res := n.st.sweep(n.cfg.Now(), n.cfg.SessionTTL, n.cfg.TombstoneTTL)
	ends := n.st.ends
	n.takeEndsLocked()
	n.mu.Unlock()
	for _, e := range ends {
		if e.Reason == ReasonLifetimeOver {
			n.log.Info(fmt.Sprintf("session %s ended: lifetime over", e.ID), "session", e.ID, "reason", e.Reason)
		}
	}
	if len(ends) > 0 {
		n.markDirty()
	}
	for i := 0; i < len(res.lifetime); i += maxEntries {
		chunk := res.lifetime[i:min(i+maxEntries, len(res.lifetime))]
		if err := n.publish(&message{Kind: kindDown, From: n.cfg.Name, Down: chunk}); err != nil {
			n.log.Warn("publishing the end of sessions whose lifetime is over", "err", err)
		}
	}
	if len(res.adopted) == 0 {
		return
	}
	ups := make([]wireEntry, 0, len(res.adopted))
	for _, a := range res.adopted {
		n.stats.adopted.Add(1)
		silent := a.silent.Round(time.Second)
		if a.from == n.cfg.Name {
			n.log.Info(fmt.Sprintf("resumed session %s of agent %s, owned by this member before a restart", a.entry.Session.ID, a.agent),
				"session", a.entry.Session.ID, "agent", a.agent)
		} else {
			n.log.Info(fmt.Sprintf("adopted session %s of agent %s from member %s, silent for %s", a.entry.Session.ID, a.agent, a.from, silent),
				"session", a.entry.Session.ID, "agent", a.agent, "from", a.from, "silent", silent)
		}
		ups = append(ups, a.entry)
	}
	for i := 0; i < len(ups); i += maxEntries {
		if err := n.publish(&message{Kind: kindUp, From: n.cfg.Name, Sessions: ups[i:min(i+maxEntries, len(ups))]}); err != nil {
			n.log.Warn("publishing adopted sessions", "err", err)
			return
		}
	}
}

// checkRoutes fetches a snapshot (sessions, then the shared store) from
// each peer whose route is new since the last check, and forgets peers whose route went away so that a
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
		if n.fetchSnapshot(r) && n.fetchSharedSnapshot(r) {
			n.mu.Lock()
			n.synced[r.RemoteID] = true
			n.mu.Unlock()
		}
	}
}

// fetchSnapshot asks the member behind route r for everything it knows,
// page after page of tombstones.
func (n *Node) fetchSnapshot(r *server.RouteInfo) bool {
	var req snapRequest
	for page := 0; ; page++ {
		m, ok := n.fetchSnapPage(r, req, snapTimeout)
		if !ok {
			return page > 0 // a partial snapshot still counts: refreshes follow
		}
		if m == nil {
			return true
		}
		changed := n.merge(m)
		if changed {
			n.markDirty()
		}
		if page == 0 {
			n.stats.snapshots.Add(1)
		}
		n.log.Info("fetched sessions from a peer", "peer", m.From, "sessions", len(m.Sessions), "ended", len(m.Down), "page", page)
		if !m.More || len(m.Down) == 0 {
			return true
		}
		req.After = m.Down[len(m.Down)-1].ID
	}
}

// fetchSnapPage requests one page of r's snapshot, waiting at most
// timeout. It returns false when the request failed and should be
// retried, and a nil message for a bad reply (not retried).
func (n *Node) fetchSnapPage(r *server.RouteInfo, req snapRequest, timeout time.Duration) (*message, bool) {
	select {
	case <-n.done:
		return nil, false
	default:
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		select {
		case <-n.done: // Close does not wait for a slow peer
			cancel()
		case <-ctx.Done():
		}
	}()
	msg, err := n.nc.RequestWithContext(ctx, n.snapSubj(r.RemoteID), body)
	if err != nil {
		// Usually the peer's subscription has not crossed the new route
		// yet; the next check retries.
		n.stats.snapshotErrs.Add(1)
		n.log.Debug("snapshot request failed; retrying", "peer", r.RemoteName, "err", err)
		return nil, false
	}
	m, err := decodeMessage(msg.Data)
	if err != nil || m.Kind != kindSnap {
		n.stats.invalid.Add(1)
		n.log.Warn("ignoring a bad snapshot", "peer", r.RemoteName, "err", err)
		return nil, true
	}
	return m, true
}

func randomToken() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating the bus token: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
