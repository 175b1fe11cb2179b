package relay

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silentmon/silentmon/filter"
)

// ForwarderConfig configures a Forwarder. Zero fields take the defaults.
type ForwarderConfig struct {
	// Dial says how to reach supervisor services; Dial.TOS is the media
	// ToS byte (0xB8, DSCP EF, is what smserver passes).
	Dial DialConfig
	Name string
	// QueueLen bounds the packets queued per supervisor connection
	// (default 4096); when full the oldest is dropped and counted.
	QueueLen int
	// BatchMax bounds the packets per media frame (default 64).
	BatchMax int
	// HeartbeatInterval (default 5 s) and HeartbeatRetries (default 5)
	// detect a supervisor that stopped answering without closing.
	HeartbeatInterval time.Duration
	HeartbeatRetries  int
	// RetryMin (default 250 ms) is the wait after the first failed
	// attempt to reach a supervisor; each failure in a row doubles it, up
	// to RetryMax (default 30 s), less a random part of up to half (jitter).
	// A failed attempt is a dial, a TLS handshake (the supervisor's
	// certificate refused, or ours) or a hello that failed, or a link that
	// ended within StableLink of coming up; a link that stayed up longer
	// starts the back-off again. The back-off belongs to the supervisor
	// address: one attempt at a time, however many sessions use it, and a
	// connection closed by Retain and opened again keeps it.
	RetryMin time.Duration
	RetryMax time.Duration
	Logger   *slog.Logger
	// OnConnect, if not nil, is called when a connection to a supervisor
	// service is up (after its hello), with the TLS state of the
	// connection (nil on a plaintext one); OnDisconnect when that
	// connection is down again, with why (nil when the forwarder closed
	// it: Retain, Sync or Close). Both run on the connection's own
	// goroutine, never on the packet path (Forward) and never under a
	// lock of the Forwarder; media to that supervisor waits while they
	// run, so they must return soon (an audit line is fine). Calls for one
	// supervisor never overlap and alternate, connect first.
	OnConnect    func(addr string, state *tls.ConnectionState)
	OnDisconnect func(addr string, err error)
	// Now is the clock of SenderStats.UnreachableSince; default
	// Clock.Now.
	Now func() time.Time
	// Clock paces the reconnection back-off; default SystemClock.
	Clock Clock
}

// maxMediaData bounds one queued packet; larger UDP payloads are cut.
const maxMediaData = 9000

// SenderStats describes one supervisor connection.
type SenderStats struct {
	Supervisor string `json:"supervisor"`
	State      string `json:"state"` // "connected", "connecting", "closed"
	Queued     int    `json:"queued"`
	Sent       uint64 `json:"sent"`
	Dropped    uint64 `json:"dropped"`
	Lost       uint64 `json:"lost_in_write"`
	Reconnects uint64 `json:"reconnects"`
	LastError  string `json:"last_error,omitempty"`
	// UnreachableSince is when the supervisor became unreachable from
	// this forwarder: the first dial attempt, or the loss of the last
	// connection, if no connection has been up since; zero while a
	// connection is up. smserver ends a session whose supervisor stays
	// unreachable longer than its grace.
	UnreachableSince time.Time `json:"unreachable_since,omitzero"`
}

// Forwarder pushes captured media to supervisor services, one connection
// per supervisor address, each with a bounded queue: a slow or dead
// supervisor never blocks the caller or other supervisors. Forward is safe
// for concurrent use and does not allocate once warm. Close stops every
// sender and waits.
//
// To a supervisor that lists FeatureSessions in its hello, each connection
// announces a session (SessionNotice, state started, with its agent)
// before the session's first media frame on that connection, so the
// supervisor knows the agent by the time it opens the session's output.
// A session is announced stopped after its queued media once Sync no
// longer lists it, or when Retain or Sync closes the connection because no
// session uses that supervisor any more. The payload types of a session
// (SetPayloadTypes) go with its started notice, and again in a codecs
// notice before its next media frame whenever they change.
type Forwarder struct {
	cfg      ForwarderConfig
	log      *slog.Logger
	clock    Clock
	rand     func() float64 // the back-off's jitter, in [0, 1)
	dial     func(ctx context.Context, addr string) (net.Conn, error)
	mu       sync.Mutex // serialises changes to senders and backoffs
	senders  atomic.Pointer[map[string]*sender]
	backoffs map[string]*backoff // by supervisor address
	closed   bool
	retiring sync.WaitGroup // senders closed by Retain, still draining

	// totals are the Forwarder's figures over its whole life: every
	// link adds to them as it counts, so they survive links coming and
	// going (Totals).
	totals struct{ sent, dropped, lost, bytes, reconnects atomic.Uint64 }

	ptmu  sync.Mutex                            // serialises SetPayloadTypes
	pts   atomic.Pointer[map[string]payloadSet] // by session id, published whole
	ptGen uint64                                // guarded by ptmu
}

// payloadSet is a session's payload types and the generation that last
// changed them (generations are unique across sessions). Immutable.
type payloadSet struct {
	gen   uint64
	types map[uint8]string
}

// NewForwarder returns a Forwarder.
func NewForwarder(cfg ForwarderConfig) *Forwarder {
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 4096
	}
	if cfg.BatchMax <= 0 {
		cfg.BatchMax = 64
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.HeartbeatRetries <= 0 {
		cfg.HeartbeatRetries = 5
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = DefaultRetryMax
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = cfg.RetryMin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Now == nil {
		cfg.Now = cfg.Clock.Now
	}
	f := &Forwarder{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, rand: defaultRand, backoffs: map[string]*backoff{}}
	f.dial = func(ctx context.Context, addr string) (net.Conn, error) { return dial(ctx, addr, cfg.Dial) }
	m := map[string]*sender{}
	f.senders.Store(&m)
	pts := map[string]payloadSet{}
	f.pts.Store(&pts)
	return f
}

// SetPayloadTypes replaces the payload types of every session: bySession
// maps a session id to the RTP payload types of its current calls and
// their encodings, as the calls' SDP gave them ("G729/8000"; see
// PayloadTypeMap, whose bounds apply when they are sent). A session whose
// map changed has it sent, in a codecs notice, before its next media
// frame on each connection that announced it; a session announced later
// gets it in its started notice. A session left out of bySession, or given
// an empty map, sends nothing more: its supervisor keeps the types it
// has. The maps must not be modified after the call. Safe for concurrent
// use; it is not meant for the packet path (it copies the table).
func (f *Forwarder) SetPayloadTypes(bySession map[string]map[uint8]string) {
	f.ptmu.Lock()
	defer f.ptmu.Unlock()
	old := *f.pts.Load()
	next := make(map[string]payloadSet, len(bySession))
	changed := false
	for id, types := range bySession {
		if len(types) == 0 {
			changed = changed || old[id].types != nil
			continue
		}
		if prev, ok := old[id]; ok && maps.Equal(prev.types, types) {
			next[id] = prev
			continue
		}
		f.ptGen++
		next[id] = payloadSet{gen: f.ptGen, types: types}
		changed = true
	}
	if !changed && len(next) == len(old) {
		return
	}
	f.pts.Store(&next)
}

// Forward queues p for the supervisor of sess. p.Data is copied.
func (f *Forwarder) Forward(sess *filter.Session, p *MediaPacket) {
	s := (*f.senders.Load())[sess.Supervisor]
	if s == nil {
		s = f.add(sess.Supervisor)
		if s == nil {
			return
		}
	}
	s.enqueue(sess, p)
}

// Reach opens a connection to the supervisor service at addr, if there is
// none, and keeps it up (reconnecting) without media, so that its
// reachability is known (SenderStats.UnreachableSince) before any packet
// of its sessions is captured here. Like a connection opened by Forward,
// it is closed by Retain or Sync once no session uses addr. Safe for
// concurrent use.
func (f *Forwarder) Reach(addr string) {
	if (*f.senders.Load())[addr] == nil {
		f.add(addr)
	}
}

func (f *Forwarder) add(addr string) *sender {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	old := *f.senders.Load()
	if s := old[addr]; s != nil {
		return s
	}
	s := newSender(f, addr, f.backoffLocked(addr))
	next := make(map[string]*sender, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[addr] = s
	f.senders.Store(&next)
	return s
}

// backoffLocked returns the back-off of addr, made if there is none, and
// forgets those that no sender uses and that hold nothing worth keeping.
// Called with mu held.
func (f *Forwarder) backoffLocked(addr string) *backoff {
	now := f.clock.Now()
	for k, b := range f.backoffs {
		if k != addr && b.users == 0 && b.idle(now, f.cfg.RetryMax) {
			delete(f.backoffs, k)
		}
	}
	b := f.backoffs[addr]
	if b == nil {
		b = newBackoff()
		f.backoffs[addr] = b
	}
	b.users++
	return b
}

// releaseBackoff is called by a sender that ends.
func (f *Forwarder) releaseBackoff(b *backoff) {
	f.mu.Lock()
	b.users--
	f.mu.Unlock()
}

// Sync is Retain for the supervisors of sessions, the sessions this
// capture server now pushes: it also announces stopped, on each
// connection, the sessions announced there that sessions no longer lists
// (stopped, or captured by another server now), once the media queued
// before the call has been sent. Call it after every change of sessions.
func (f *Forwarder) Sync(sessions []*filter.Session) {
	senders := *f.senders.Load()
	// Only connections that announced sessions need the list of ids; a
	// session id names one supervisor, so one set serves them all.
	var ids map[string]bool
	for _, s := range senders {
		if s.hasAnnounced() {
			ids = make(map[string]bool, len(sessions))
			for _, x := range sessions {
				ids[x.ID] = true
			}
			break
		}
	}
	keep := make(map[string]bool, len(senders))
	for _, x := range sessions {
		keep[x.Supervisor] = true
	}
	if ids != nil {
		for addr, s := range senders {
			if keep[addr] {
				s.endSessions(func(id string) bool { return !ids[id] })
			}
		}
	}
	f.retain(keep)
}

// Retain closes the connections to supervisors not in keep (no session
// uses them any more), after flushing what they have queued and announcing
// stopped the sessions announced on them.
func (f *Forwarder) Retain(keep []string) {
	want := make(map[string]bool, len(keep))
	for _, k := range keep {
		want[k] = true
	}
	f.retain(want)
}

func (f *Forwarder) retain(want map[string]bool) {
	f.mu.Lock()
	old := *f.senders.Load()
	var gone []*sender
	for k, v := range old {
		if !want[k] {
			gone = append(gone, v)
		}
	}
	if len(gone) == 0 {
		f.mu.Unlock()
		return
	}
	next := make(map[string]*sender, len(old)-len(gone))
	for k, v := range old {
		if want[k] {
			next[k] = v
		}
	}
	f.senders.Store(&next)
	f.retiring.Add(len(gone))
	f.mu.Unlock()
	for _, s := range gone {
		s.endSessions(func(string) bool { return true })
		go func() {
			defer f.retiring.Done()
			s.close(true)
		}()
	}
}

// ForwarderTotals are a Forwarder's figures over its whole life, links
// closed since included: they only go up.
type ForwarderTotals struct {
	// Sent and Bytes count the media packets written to supervisor
	// connections and the bytes of the frames that carried them.
	Sent, Bytes uint64
	// Dropped counts the packets dropped because a queue was full or its
	// link closed; Lost those whose write failed.
	Dropped, Lost uint64
	// Reconnects counts the reconnections to supervisor services.
	Reconnects uint64
}

// Totals returns the Forwarder's cumulative figures. Safe for concurrent
// use.
func (f *Forwarder) Totals() ForwarderTotals {
	return ForwarderTotals{Sent: f.totals.sent.Load(), Bytes: f.totals.bytes.Load(),
		Dropped: f.totals.dropped.Load(), Lost: f.totals.lost.Load(), Reconnects: f.totals.reconnects.Load()}
}

// Stuck returns an error naming each connected link whose loop has not
// turned for longer than bound at now, one line each, or nil. The loop
// turns at every batch and every heartbeat interval; links not connected
// (dialling, backing off) are not stuck. Safe for concurrent use.
func (f *Forwarder) Stuck(now time.Time, bound time.Duration) error {
	var errs []error
	for _, s := range *f.senders.Load() {
		if t := s.turn.Load(); t != 0 && now.Sub(time.Unix(0, t)) > bound {
			errs = append(errs, fmt.Errorf("loop forwarder to supervisor %s has not turned for %s (bound %s)",
				s.addr, now.Sub(time.Unix(0, t)).Round(time.Second), bound))
		}
	}
	return errors.Join(errs...)
}

// Stats returns one entry per supervisor connection, sorted by address.
func (f *Forwarder) Stats() []SenderStats {
	m := *f.senders.Load()
	out := make([]SenderStats, 0, len(m))
	for _, s := range m {
		out = append(out, s.stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Supervisor < out[j].Supervisor })
	return out
}

// Flush waits until every queue is empty or ctx ends.
func (f *Forwarder) Flush(ctx context.Context) error {
	for {
		empty := true
		for _, s := range *f.senders.Load() {
			s.mu.Lock()
			if s.pendingLocked() || s.inflight {
				empty = false
			}
			s.mu.Unlock()
		}
		if empty {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close stops every sender, dropping what is still queued, and waits.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	f.closed = true
	old := *f.senders.Load()
	empty := map[string]*sender{}
	f.senders.Store(&empty)
	f.mu.Unlock()
	for _, s := range old {
		s.close(false)
	}
	f.retiring.Wait()
	return nil
}

type queued struct {
	sess *filter.Session
	p    MediaPacket
	buf  []byte
}

type sender struct {
	f    *Forwarder
	addr string
	b    *backoff

	mu        sync.Mutex
	q         []queued // ring, grown on demand up to QueueLen
	head, n   int
	inflight  bool
	stopped   bool              // no more packets are taken
	lastBatch int               // packets in the last fill, owned by run
	sess      []*filter.Session // fill's scratch: sessions in the batch
	ord       []int32           // fill's scratch: session ordinal per packet
	// notices says the connection's supervisor takes session notices;
	// announced holds the sessions announced started on it; stops the
	// sessions to announce stopped once the queue is empty.
	notices   bool
	announced map[string]*filter.Session
	ptSent    map[string]uint64 // payload types' generation sent, by session
	stops     []string
	state     string
	lastErr   string
	downSince time.Time // see SenderStats.UnreachableSince
	// failures counts the failed attempts of the current outage, warned
	// is when it was last logged (zero: not yet); both owned by run.
	failures int
	warned   time.Time
	wake     chan struct{}

	sent, dropped, lost, reconnects atomic.Uint64
	// turn is the clock time (ForwarderConfig.Now) of the last turn of
	// the connected loop, Unix ns; 0 while not connected (Stuck).
	turn atomic.Int64

	stop    chan struct{}
	drain   atomic.Bool
	done    chan struct{}
	closeMu sync.Once
}

func newSender(f *Forwarder, addr string, b *backoff) *sender {
	s := &sender{f: f, addr: addr, b: b, state: "connecting",
		downSince: f.cfg.Now(), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *sender) enqueue(sess *filter.Session, p *MediaPacket) {
	s.mu.Lock()
	if s.stopped {
		// Raced with Retain or Close: the sender is gone.
		s.mu.Unlock()
		s.dropped.Add(1)
		s.f.totals.dropped.Add(1)
		return
	}
	if s.n == len(s.q) && len(s.q) < s.f.cfg.QueueLen {
		s.grow()
	}
	if s.n == len(s.q) {
		// Full: drop the oldest.
		s.head = (s.head + 1) % len(s.q)
		s.n--
		s.dropped.Add(1)
		s.f.totals.dropped.Add(1)
	}
	e := &s.q[(s.head+s.n)%len(s.q)]
	s.n++
	data := p.Data
	if len(data) > maxMediaData {
		data = data[:maxMediaData]
	}
	e.buf = append(e.buf[:0], data...)
	e.sess = sess
	e.p = *p
	e.p.Data = e.buf
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// grow doubles the ring (from 64 entries, up to QueueLen), so that a
// sender that queues little holds little. Called with mu held.
func (s *sender) grow() {
	n := min(max(2*len(s.q), 64), s.f.cfg.QueueLen)
	q := make([]queued, n)
	for i := 0; i < s.n; i++ {
		q[i] = s.q[(s.head+i)%len(s.q)]
	}
	s.q, s.head = q, 0
}

// hasAnnounced reports whether sessions were announced started on the
// sender's connection.
func (s *sender) hasAnnounced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.announced) > 0
}

// pendingLocked reports whether media or stop notices wait to be sent.
func (s *sender) pendingLocked() bool { return s.n > 0 || len(s.stops) > 0 }

// endSessions queues a stop notice for every announced session for which
// gone is true (and not already queued), and wakes the sender.
func (s *sender) endSessions(gone func(id string) bool) {
	s.mu.Lock()
	added := false
	for id := range s.announced {
		if !gone(id) || slices.Contains(s.stops, id) {
			continue
		}
		s.stops = append(s.stops, id)
		added = true
	}
	s.mu.Unlock()
	if added {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// connected records what the supervisor of a new connection takes; no
// session is announced on it yet.
func (s *sender) connected(h Hello) {
	s.mu.Lock()
	s.notices = h.HasFeature(FeatureSessions)
	s.announced = map[string]*filter.Session{}
	s.ptSent = map[string]uint64{}
	s.mu.Unlock()
}

func (s *sender) stats() SenderStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SenderStats{Supervisor: s.addr, State: s.state, Queued: s.n, Sent: s.sent.Load(),
		Dropped: s.dropped.Load(), Lost: s.lost.Load(), Reconnects: s.reconnects.Load(), LastError: s.lastErr,
		UnreachableSince: s.downSince}
}

func (s *sender) setState(st string, err error) {
	s.mu.Lock()
	switch {
	case st == "connected":
		s.downSince = time.Time{}
	case s.downSince.IsZero():
		s.downSince = s.f.cfg.Now()
	}
	s.state = st
	if err != nil {
		s.lastErr = err.Error()
	}
	s.mu.Unlock()
}

// discard drops what is still queued when the sender ends, counting it.
func (s *sender) discard() {
	s.mu.Lock()
	s.stopped = true
	s.dropped.Add(uint64(s.n))
	s.f.totals.dropped.Add(uint64(s.n))
	s.n = 0
	s.stops = nil
	s.mu.Unlock()
}

func (s *sender) close(drain bool) {
	s.closeMu.Do(func() {
		s.drain.Store(drain)
		close(s.stop)
	})
	<-s.done
}

func (s *sender) run() {
	defer close(s.done)
	defer s.f.releaseBackoff(s.b)
	defer s.setState("closed", nil)
	defer s.discard()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-s.stop
		if !s.drain.Load() {
			cancel()
		}
	}()
	first := true
	for {
		select {
		case <-s.stop:
			if !s.drain.Load() {
				return
			}
			s.mu.Lock()
			empty := !s.pendingLocked()
			s.mu.Unlock()
			if empty {
				return
			}
		default:
		}
		// Stopping: draining is worth one connection attempt, not a
		// wait for a supervisor that is gone.
		if !s.b.acquire(s.f.clock, s.stop) {
			return
		}
		if !first {
			s.reconnects.Add(1)
			s.f.totals.reconnects.Add(1)
		}
		first = false
		s.setState("connecting", nil)
		c, h, err := s.connect(ctx)
		if err != nil {
			s.b.failed(s.f)
			if ctx.Err() != nil {
				return
			}
			err = s.explain(err)
			s.setState("connecting", err)
			s.unreachable(err)
			continue
		}
		s.b.connected()
		s.connected(h)
		s.reached()
		s.setState("connected", nil)
		if fn := s.f.cfg.OnConnect; fn != nil {
			var cs *tls.ConnectionState
			if tc, ok := c.nc.(*tls.Conn); ok {
				st := tc.ConnectionState()
				cs = &st
			}
			fn(s.addr, cs)
		}
		up := s.f.clock.Now()
		err = s.stream(c)
		s.turn.Store(0)
		c.close()
		s.b.ended(s.f, s.f.clock.Now().Sub(up))
		s.setState("connecting", err)
		if fn := s.f.cfg.OnDisconnect; fn != nil {
			fn(s.addr, err)
		}
		if err == nil {
			return
		}
		s.lostLink(err)
	}
}

// connect dials the supervisor and exchanges hellos.
func (s *sender) connect(ctx context.Context) (*conn, Hello, error) {
	nc, err := s.f.dial(ctx, s.addr)
	if err != nil {
		return nil, Hello{}, err
	}
	c := newConn(nc, 0)
	h, err := clientHello(c, RoleCapture, s.f.cfg.Name, 5*time.Second)
	if err != nil {
		nc.Close()
		return nil, Hello{}, err
	}
	return c, h, nil
}

// stream writes queued media to c until an error or stop. It returns nil
// when stopped.
func (s *sender) stream(c *conn) error {
	var missed atomic.Int32
	readErr := make(chan error, 1)
	go func() {
		for {
			t, body, err := c.r.Next()
			if err != nil {
				readErr <- err
				return
			}
			missed.Store(0)
			switch t {
			case MsgHeartbeat:
				var hb Heartbeat
				if DecodeJSON(t, body, &hb) == nil && !hb.Reply {
					c.writeJSON(MsgHeartbeat, Heartbeat{Seq: hb.Seq, Reply: true}, time.Second)
				}
			case MsgError:
				var e Error
				DecodeJSON(t, body, &e)
				readErr <- fmt.Errorf("%w: %s", ErrRemote, e.Message)
				return
			}
		}
	}()
	defer func() {
		c.close()
	}()
	hb := time.NewTicker(s.f.cfg.HeartbeatInterval)
	defer hb.Stop()
	var seq uint64
	var wb []byte
	for {
		s.turn.Store(s.f.cfg.Now().UnixNano())
		wb = s.fill(wb[:0])
		if len(wb) > 0 {
			err := c.writeRaw(wb, 10*time.Second)
			// The counters are updated before the batch stops being in
			// flight, so that Flush returns only once they count it.
			if err != nil {
				s.lost.Add(uint64(s.lastBatch))
				s.f.totals.lost.Add(uint64(s.lastBatch))
			} else {
				s.sent.Add(uint64(s.lastBatch))
				s.f.totals.sent.Add(uint64(s.lastBatch))
				if s.lastBatch > 0 {
					// Bytes count frames that carried media: a write of
					// session stops alone (a link closing) carries none.
					s.f.totals.bytes.Add(uint64(len(wb)))
				}
			}
			s.mu.Lock()
			s.inflight = false
			s.mu.Unlock()
			if err != nil {
				return err
			}
			continue
		}
		select {
		case <-s.wake:
		case <-hb.C:
			if int(missed.Add(1)) > s.f.cfg.HeartbeatRetries {
				return fmt.Errorf("%w: supervisor %s silent", ErrHeartbeatLost, s.addr)
			}
			seq++
			if err := c.writeJSON(MsgHeartbeat, Heartbeat{Seq: seq}, s.f.cfg.HeartbeatInterval); err != nil {
				return err
			}
		case err := <-readErr:
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			return fmt.Errorf("reading from supervisor: %w", err)
		case <-s.stop:
			if s.drain.Load() {
				s.mu.Lock()
				empty := !s.pendingLocked()
				s.mu.Unlock()
				if !empty {
					continue
				}
			}
			return nil
		}
	}
}

// fill moves up to 16 media frames' worth of queued packets into wb. The
// packets are grouped by session (one media frame per session, or more
// when a session has more than BatchMax), keeping each session's order.
// A session not yet announced on the connection is announced before its
// first frame; once the queue is empty, the queued stop notices follow.
func (s *sender) fill(wb []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastBatch = 0
	if s.n == 0 {
		return s.appendStops(wb)
	}
	k := s.n
	if limit := 16 * s.f.cfg.BatchMax; k > limit {
		k = limit
	}
	// Number the sessions in order of first appearance; entries of one
	// session share the string's data, so comparisons are cheap.
	s.sess = s.sess[:0]
	s.ord = s.ord[:0]
	last := -1
	for i := 0; i < k; i++ {
		sess := s.q[(s.head+i)%len(s.q)].sess
		if last < 0 || s.sess[last].ID != sess.ID {
			last = -1
			for j, x := range s.sess {
				if x.ID == sess.ID {
					last = j
					break
				}
			}
			if last < 0 {
				s.sess = append(s.sess, sess)
				last = len(s.sess) - 1
			}
		}
		s.ord = append(s.ord, int32(last))
	}
	for o := range s.sess {
		wb = s.announce(wb, s.sess[o])
		start := -1 // index in wb of the current frame's header
		count := 0
		size := 0
		for i := 0; i < k; i++ {
			if int(s.ord[i]) != o {
				continue
			}
			e := &s.q[(s.head+i)%len(s.q)]
			sz := MediaPacketLen(&e.p)
			if start >= 0 && (count == s.f.cfg.BatchMax || size+sz > DefaultMaxFrame-300) {
				wb = finishMediaFrame(wb, start, count)
				start = -1
			}
			if start < 0 {
				start = len(wb)
				wb = append(wb, 0, 0, 0, 0, byte(MsgMedia))
				wb = AppendMediaHeader(wb, s.sess[o].ID, 0)
				count, size = 0, 0
			}
			wb = AppendMediaPacket(wb, &e.p)
			count++
			size += sz
		}
		if start >= 0 {
			wb = finishMediaFrame(wb, start, count)
		}
	}
	s.head = (s.head + k) % len(s.q)
	s.n -= k
	s.lastBatch = k
	s.inflight = true
	if s.n == 0 {
		wb = s.appendStops(wb)
	}
	return wb
}

// announce appends a started notice for sess, with its payload types,
// unless the connection does not take notices or sess was announced on
// it; for a session announced, a codecs notice when its payload types
// changed since they were last sent. Called with mu held.
func (s *sender) announce(wb []byte, sess *filter.Session) []byte {
	if !s.notices {
		return wb
	}
	pt, hasPT := (*s.f.pts.Load())[sess.ID]
	n := SessionNotice{Session: sess.ID, Agent: sess.Agent, State: SessionStarted,
		Record: sess.Record, Server: s.f.cfg.Name, PayloadTypes: PayloadTypeMap{Types: pt.types}}
	if s.announced[sess.ID] != nil {
		if !hasPT || s.ptSent[sess.ID] == pt.gen {
			return wb
		}
		n.State = SessionCodecs
	}
	s.announced[sess.ID] = sess
	if hasPT {
		s.ptSent[sess.ID] = pt.gen
	}
	out, err := AppendJSON(wb, MsgSession, n)
	if err != nil {
		return wb
	}
	return out
}

// appendStops appends the queued stop notices (when the connection takes
// them) and forgets them. Called with mu held.
func (s *sender) appendStops(wb []byte) []byte {
	if len(s.stops) == 0 {
		return wb
	}
	for _, id := range s.stops {
		if !s.notices {
			break
		}
		n := SessionNotice{Session: id, State: SessionStopped, Server: s.f.cfg.Name}
		if sess := s.announced[id]; sess != nil {
			n.Agent, n.Record = sess.Agent, sess.Record
		}
		delete(s.announced, id)
		delete(s.ptSent, id)
		if out, err := AppendJSON(wb, MsgSession, n); err == nil {
			wb = out
		}
	}
	s.stops = s.stops[:0]
	if len(wb) > 0 {
		s.inflight = true
	}
	return wb
}

// finishMediaFrame writes the length and packet count of the media frame
// that starts at wb[start].
func finishMediaFrame(wb []byte, start, count int) []byte {
	n := len(wb) - start - 4
	binary.BigEndian.PutUint32(wb[start:], uint32(n))
	idLen := int(wb[start+5])
	binary.BigEndian.PutUint16(wb[start+6+idLen:], uint16(count))
	return wb
}
