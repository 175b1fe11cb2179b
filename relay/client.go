package relay

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	smtls "github.com/silentmon/silentmon/tls"
)

// ClientConfig configures a Client. Zero fields take the defaults given.
type ClientConfig struct {
	// Servers lists capture servers (host:port); the client connects to
	// one chosen at random and fails over to another.
	Servers []string
	Dial    DialConfig
	Name    string
	Logger  *slog.Logger // default slog.Default()
	// HeartbeatInterval is the time between heartbeats (default 5 s).
	HeartbeatInterval time.Duration
	// HeartbeatRetries is how many heartbeats may go unanswered before
	// the server is given up (default 5).
	HeartbeatRetries int
	// RequestTimeout bounds one request, its retries included (default
	// 10 s).
	RequestTimeout time.Duration
	// DialRetry is how long Dial keeps trying when every server failed
	// with an error that may pass (connection refused or reset, a socket
	// closed before the hello's answer, a timeout); 0, the default, tries
	// each server once. A server whose connection broke after the TCP
	// connect and before the hello's answer is tried at most twice by
	// Dial with TLS, and once without (Dial.TLS nil), so that retries
	// never set off a listener's lockout (3 failed handshakes in a row):
	// a plaintext client talking to a TLS listener sees exactly such a
	// closed socket, and each attempt counts as a failed handshake. Once
	// connected, a request is sent again after any break, on a new
	// connection, without that limit.
	DialRetry time.Duration
	// OnAgentEvents, if not nil, receives the agent events the server
	// pushes after WatchAgents (see there).
	OnAgentEvents func(*AgentEvents)
}

// maxHelloFailures is how many times Dial tries a server whose connection
// broke after the TCP connect and before the hello's answer (with TLS; once
// in plaintext).
const maxHelloFailures = 2

// errNoneLeft: connect had no server left to try.
var errNoneLeft = errors.New("every server failed too often")

// maxAttempts bounds how many times one request is sent.
const maxAttempts = 8

// Client is a control connection to one capture server of a list, with
// heartbeats and failover: when the socket breaks it reconnects at once to
// another server chosen at random; when HeartbeatRetries heartbeats go
// unanswered (a pulled cable) it does the same. After a failover it
// re-asserts every session it started and has not stopped. A Client is
// safe for concurrent use; Close stops its goroutines.
type Client struct {
	cfg ClientConfig
	log *slog.Logger

	mu       sync.Mutex
	c        *conn
	server   string
	hello    Hello  // the connected server's hello
	gen      uint64 // connection generation
	nextID   uint64
	pending  map[uint64]chan reply
	sessions map[string]StartMonitor
	// reasserting holds, per session being re-asserted after a failover,
	// a channel closed when that start has its answer: a StopMonitor of
	// the session waits for it, so that the stop never overtakes the
	// re-assertion on the wire.
	reasserting map[string]chan struct{}
	// afterSnapshot, if not nil, runs once a failover has listed the
	// sessions to re-assert (tests).
	afterSnapshot func()
	watch         []string // the agents watched (WatchAgents)
	failover      int
	missed        int
	lastErr       error // why the last connection attempt failed
	closed        bool
	changed       chan struct{} // closed and replaced when connected

	stop chan struct{}
	wg   sync.WaitGroup
}

type reply struct {
	t    MsgType
	body []byte
	err  error // the connection broke before the reply: send again
	// refused is an error of the reply itself, not worth sending the
	// request again for (a status beyond MaxStatusBytes).
	refused error
}

// Dial connects to one of cfg.Servers and starts the heartbeat.
func Dial(ctx context.Context, cfg ClientConfig) (*Client, error) {
	if len(cfg.Servers) == 0 {
		return nil, fmt.Errorf("%w: no server configured", ErrNoServer)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HeartbeatInterval <= 0 {
		cfg.HeartbeatInterval = 5 * time.Second
	}
	if cfg.HeartbeatRetries <= 0 {
		cfg.HeartbeatRetries = 5
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 10 * time.Second
	}
	cl := &Client{cfg: cfg, log: cfg.Logger, pending: map[uint64]chan reply{},
		sessions: map[string]StartMonitor{}, reasserting: map[string]chan struct{}{}, stop: make(chan struct{}), changed: make(chan struct{})}
	if err := cl.dialRetry(ctx); err != nil {
		return nil, err
	}
	cl.wg.Add(1)
	go cl.heartbeats()
	return cl, nil
}

// dialRetry connects, trying again for cfg.DialRetry while the failures
// are ones that may pass.
func (cl *Client) dialRetry(ctx context.Context) error {
	if cl.cfg.DialRetry > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cl.cfg.DialRetry)
		defer cancel()
	}
	helloFails := map[string]int{}
	maxFails := maxHelloFailures
	if cl.cfg.Dial.TLS == nil {
		maxFails = 1
	}
	backoff := 50 * time.Millisecond
	var prev error
	for {
		err := cl.connect(ctx, "", func(addr string) bool { return helloFails[addr] < maxFails },
			func(addr string, err error, afterConnect bool) {
				if afterConnect {
					helloFails[addr]++
				}
			})
		if errors.Is(err, errNoneLeft) && prev != nil {
			return prev // every server failed too often
		}
		if err == nil || cl.cfg.DialRetry <= 0 || !Retryable(err) {
			return err
		}
		prev = err
		select {
		case <-ctx.Done():
			return err
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

// Retryable reports whether err, from Dial or a request, may pass when the
// request is sent again (to the same server or another): a connection
// refused, reset or closed, a timeout, heartbeats lost. An answer from the
// server (ErrRemote), a TLS alert or certificate error, a protocol error,
// Close and the caller's context ending are not.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case errors.Is(err, ErrRemote), errors.Is(err, ErrVersion), errors.Is(err, ErrUnexpected),
		errors.Is(err, ErrBadFrame), errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrClosed),
		errors.Is(err, context.Canceled):
		return false
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return false // a TLS alert: the server refused the certificate
	}
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	var rh tls.RecordHeaderError
	if errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) || errors.As(err, &rh) {
		return false
	}
	return true
}

// Server returns the address of the server the client is connected to.
func (cl *Client) Server() string {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.server
}

// Failovers returns how many times the client has moved to another server.
func (cl *Client) Failovers() int {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.failover
}

// connect dials the servers in random order, avoiding the one named in
// avoid when another exists. try, if not nil, says which servers to try;
// failed, if not nil, hears of each failure and whether it came after the
// TCP connect (in the TLS handshake or the hello).
func (cl *Client) connect(ctx context.Context, avoid string, try func(string) bool, failed func(addr string, err error, afterConnect bool)) error {
	// Random order, the server just lost last.
	order := make([]string, 0, len(cl.cfg.Servers))
	for _, i := range rand.Perm(len(cl.cfg.Servers)) {
		if addr := cl.cfg.Servers[i]; addr != avoid {
			order = append(order, addr)
		}
	}
	if len(order) < len(cl.cfg.Servers) {
		order = append(order, avoid)
	}
	var tried []string
	var lastErr error
	fail := func(addr string, err error, after bool) {
		lastErr = err
		tried = append(tried, addr)
		if failed != nil {
			failed(addr, err, after)
		}
	}
	for _, addr := range order {
		if try != nil && !try(addr) {
			continue
		}
		nc, err := dial(ctx, addr, cl.cfg.Dial)
		if err != nil {
			var oe *net.OpError
			fail(addr, err, !(errors.As(err, &oe) && oe.Op == "dial"))
			continue
		}
		c := newConn(nc, 0)
		h, err := helloWith(c, Hello{Versions: []int{Version}, Role: RoleClient, Name: cl.cfg.Name,
			Features: []string{FeatureStatusParts}}, cl.cfg.RequestTimeout)
		if err != nil {
			nc.Close()
			if cl.cfg.Dial.TLS == nil {
				err = smtls.ExplainPlaintext(err, addr)
			}
			fail(addr, err, true)
			continue
		}
		cl.mu.Lock()
		if cl.closed {
			cl.mu.Unlock()
			nc.Close()
			return ErrClosed
		}
		cl.c, cl.server, cl.hello = c, addr, h
		cl.gen++
		gen := cl.gen
		close(cl.changed)
		cl.changed = make(chan struct{})
		cl.mu.Unlock()
		cl.wg.Add(1)
		go cl.readLoop(c, gen)
		return nil
	}
	if lastErr == nil {
		lastErr = errNoneLeft
	}
	err := fmt.Errorf("%w: tried %v: %w", ErrNoServer, tried, lastErr)
	cl.mu.Lock()
	cl.lastErr = err
	cl.mu.Unlock()
	return err
}

// helloWith sends our hello h and reads the peer's (clientHello, with
// features).
func helloWith(c *conn, h Hello, timeout time.Duration) (Hello, error) {
	if err := c.writeJSON(MsgHello, h, timeout); err != nil {
		return Hello{}, err
	}
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	defer c.nc.SetReadDeadline(time.Time{})
	t, body, err := c.r.Next()
	if err != nil {
		return Hello{}, err
	}
	switch t {
	case MsgHello:
	case MsgError:
		var e Error
		DecodeJSON(t, body, &e)
		return Hello{}, fmt.Errorf("%w: %s", ErrRemote, e.Message)
	default:
		return Hello{}, fmt.Errorf("%w: %v before hello", ErrUnexpected, t)
	}
	var peer Hello
	if err := DecodeJSON(t, body, &peer); err != nil {
		return Hello{}, err
	}
	if peer.Version != Version {
		return Hello{}, fmt.Errorf("%w: peer chose version %d", ErrVersion, peer.Version)
	}
	return peer, nil
}

// statusParts gathers the parts of status replies on one connection, by
// request id, up to max bytes each. It is used by the connection's reader
// alone.
type statusParts struct {
	max int
	m   map[uint64][]byte
}

// add takes one part; it returns the whole status once the last part
// arrived (done), or an error when the status grows beyond max (done
// too: later parts of that request are dropped, as the request is no
// longer pending).
func (sp *statusParts) add(p StatusPart) (whole []byte, done bool, err error) {
	buf := sp.m[p.RequestID]
	if len(buf)+len(p.Data) > sp.max {
		delete(sp.m, p.RequestID)
		return nil, true, fmt.Errorf("%w: the status exceeds %d bytes", ErrFrameTooLarge, sp.max)
	}
	buf = append(buf, p.Data...)
	if !p.Last {
		sp.m[p.RequestID] = buf
		return nil, false, nil
	}
	delete(sp.m, p.RequestID)
	return buf, true, nil
}

func (cl *Client) readLoop(c *conn, gen uint64) {
	defer cl.wg.Done()
	parts := &statusParts{max: MaxStatusBytes, m: map[uint64][]byte{}}
	for {
		t, body, err := c.r.Next()
		if err != nil {
			cl.lost(c, gen, err)
			return
		}
		if t == MsgStatusPart {
			p, err := ParseStatusPart(body)
			if err != nil {
				cl.lost(c, gen, err)
				return
			}
			cl.mu.Lock()
			if cl.gen == gen {
				cl.missed = 0
			}
			ch := cl.pending[p.RequestID]
			cl.mu.Unlock()
			if ch == nil {
				delete(parts.m, p.RequestID) // gave up on, or never asked
				continue
			}
			whole, done, err := parts.add(p)
			if !done {
				continue
			}
			cl.mu.Lock()
			delete(cl.pending, p.RequestID)
			cl.mu.Unlock()
			ch <- reply{t: MsgStatusPart, body: whole, refused: err}
			continue
		}
		var id struct {
			RequestID uint64 `json:"request_id"`
		}
		switch t {
		case MsgHeartbeat:
			var hb Heartbeat
			if DecodeJSON(t, body, &hb) == nil && !hb.Reply {
				c.writeJSON(MsgHeartbeat, Heartbeat{Seq: hb.Seq, Reply: true}, cl.cfg.RequestTimeout)
			}
			cl.mu.Lock()
			if cl.gen == gen {
				cl.missed = 0
			}
			cl.mu.Unlock()
			continue
		case MsgAgentEvents:
			var ev AgentEvents
			if DecodeJSON(t, body, &ev) != nil {
				continue
			}
			if ev.RequestID == 0 {
				cl.mu.Lock()
				if cl.gen == gen {
					cl.missed = 0
				}
				cl.mu.Unlock()
				if cl.cfg.OnAgentEvents != nil {
					cl.cfg.OnAgentEvents(&ev)
				}
				continue
			}
			id.RequestID = ev.RequestID
		case MsgSessionStatus, MsgStatusReply, MsgAuditReply, MsgAgentsReply, MsgAgentsBindReply, MsgError:
			json.Unmarshal(body, &id)
		}
		cl.mu.Lock()
		if cl.gen == gen {
			cl.missed = 0
		}
		ch := cl.pending[id.RequestID]
		delete(cl.pending, id.RequestID)
		cl.mu.Unlock()
		if ch != nil {
			ch <- reply{t: t, body: append([]byte(nil), body...)}
		} else if t == MsgError {
			var e Error
			DecodeJSON(t, body, &e)
			cl.log.Warn("error from server", "server", cl.Server(), "code", e.Code, "message", e.Message)
		}
	}
}

// lost handles the end of connection c: fail over at once.
func (cl *Client) lost(c *conn, gen uint64, err error) {
	c.close()
	cl.mu.Lock()
	if cl.closed || cl.gen != gen {
		cl.mu.Unlock()
		return
	}
	for id, ch := range cl.pending {
		ch <- reply{err: fmt.Errorf("connection to %s lost: %w", cl.server, err)}
		delete(cl.pending, id)
	}
	old := cl.server
	cl.c = nil
	cl.gen++ // later reports about this connection are ignored
	cl.mu.Unlock()
	cl.log.Warn("lost server, failing over", "server", old, "err", err)
	cl.wg.Add(1)
	go cl.reconnect(old)
}

func (cl *Client) reconnect(old string) {
	defer cl.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-cl.stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		err := cl.connect(ctx, old, nil, nil)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, ErrClosed) {
			return
		}
		select {
		case <-cl.stop:
			return
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
	}
	cl.mu.Lock()
	cl.failover++
	server := cl.server
	reqs := make([]StartMonitor, 0, len(cl.sessions))
	for _, r := range cl.sessions {
		reqs = append(reqs, r)
	}
	hook := cl.afterSnapshot
	cl.mu.Unlock()
	cl.log.Info("failed over", "server", server, "sessions", len(reqs))
	if hook != nil {
		hook()
	}
	for _, r := range reqs {
		// A session stopped since the snapshot is not re-asserted; one
		// still here is marked, and its stop waits for this start.
		cl.mu.Lock()
		if _, ok := cl.sessions[r.Session]; !ok {
			cl.mu.Unlock()
			continue
		}
		done := make(chan struct{})
		cl.reasserting[r.Session] = done
		cl.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), cl.cfg.RequestTimeout)
		_, err := cl.start(ctx, r, false)
		cl.mu.Lock()
		delete(cl.reasserting, r.Session)
		cl.mu.Unlock()
		close(done)
		if err != nil {
			cl.log.Warn("re-asserting session failed", "session", r.Session, "err", err)
			var e *Error
			if errors.As(err, &e) && (e.Code == CodeUnknown || e.Code == CodeUnauthorized) {
				// Stopped meanwhile, or not ours: nothing to keep alive.
				cl.mu.Lock()
				delete(cl.sessions, r.Session)
				cl.mu.Unlock()
			}
		}
		cancel()
	}
	cl.rewatch()
}

func (cl *Client) heartbeats() {
	defer cl.wg.Done()
	t := time.NewTicker(cl.cfg.HeartbeatInterval)
	defer t.Stop()
	var seq uint64
	for {
		select {
		case <-cl.stop:
			return
		case <-t.C:
		}
		cl.mu.Lock()
		c, gen := cl.c, cl.gen
		if c == nil {
			cl.mu.Unlock()
			continue
		}
		cl.missed++
		missed := cl.missed
		cl.mu.Unlock()
		if missed > cl.cfg.HeartbeatRetries {
			cl.lost(c, gen, fmt.Errorf("%w: %d heartbeats unanswered", ErrHeartbeatLost, missed-1))
			continue
		}
		seq++
		c.writeJSON(MsgHeartbeat, Heartbeat{Seq: seq}, cl.cfg.HeartbeatInterval)
	}
}

// request sends the request build makes and waits for its reply. When the
// connection breaks before the reply arrives (at the write or while
// waiting), it waits for the client to fail over (to another server, or
// the same one) and sends the request again, built with retry true, until
// ctx or RequestTimeout ends or maxAttempts were sent. It reports whether
// an earlier attempt was written whole: that one may have been carried
// out.
func (cl *Client) request(ctx context.Context, t MsgType, build func(id uint64, retry bool) any) (r reply, sentBefore bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, cl.cfg.RequestTimeout)
	defer cancel()
	var lastErr error
	for attempt := 0; ; {
		cl.mu.Lock()
		if cl.closed {
			cl.mu.Unlock()
			return reply{}, sentBefore, ErrClosed
		}
		c, gen := cl.c, cl.gen
		changed := cl.changed
		if c == nil {
			why := cl.lastErr
			cl.mu.Unlock()
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				if lastErr == nil {
					lastErr = why
				}
				if lastErr != nil {
					return reply{}, sentBefore, fmt.Errorf("no server connection (%w): %w", ctx.Err(), lastErr)
				}
				return reply{}, sentBefore, fmt.Errorf("no server connection: %w", ctx.Err())
			}
		}
		if attempt == maxAttempts {
			cl.mu.Unlock()
			return reply{}, sentBefore, fmt.Errorf("gave up after %d attempts: %w", attempt, lastErr)
		}
		attempt++
		cl.nextID++
		id := cl.nextID
		ch := make(chan reply, 1)
		cl.pending[id] = ch
		server := cl.server
		cl.mu.Unlock()
		msg := build(id, attempt > 1)
		if e, ok := msg.(errNotAsked); ok {
			cl.mu.Lock()
			delete(cl.pending, id)
			cl.mu.Unlock()
			return reply{}, sentBefore, e
		}
		if err := c.writeJSON(t, msg, cl.cfg.RequestTimeout); err != nil {
			cl.mu.Lock()
			delete(cl.pending, id)
			cl.mu.Unlock()
			// A frame not written whole is not read by the server.
			lastErr = fmt.Errorf("writing to %s: %w", server, err)
			cl.lost(c, gen, err)
			continue
		}
		select {
		case r := <-ch:
			if r.refused != nil {
				return r, sentBefore, fmt.Errorf("reply from %s: %w", server, r.refused)
			}
			if r.err != nil {
				// The connection broke before the reply: send again.
				sentBefore = true
				lastErr = r.err
				continue
			}
			if r.t == MsgError {
				var e Error
				DecodeJSON(r.t, r.body, &e)
				return r, sentBefore, fmt.Errorf("%w: %w", ErrRemote, &e)
			}
			return r, sentBefore, nil
		case <-ctx.Done():
			cl.mu.Lock()
			delete(cl.pending, id)
			cl.mu.Unlock()
			return reply{}, true, fmt.Errorf("request to %s: %w", server, ctx.Err())
		}
	}
}

// StartMonitor starts a session (or re-asserts one when req.Session is
// set). The client remembers it and re-asserts it after a failover. An
// empty req.IdempotencyKey is given a new one, so that the request is
// sent again safely when the connection breaks before the reply: the
// server answers a repeated key with the session the first attempt made.
func (cl *Client) StartMonitor(ctx context.Context, req StartMonitor) (*SessionStatus, error) {
	if req.IdempotencyKey == "" && req.Session == "" {
		req.IdempotencyKey = NewIdempotencyKey()
	}
	return cl.start(ctx, req, true)
}

func (cl *Client) start(ctx context.Context, req StartMonitor, remember bool) (*SessionStatus, error) {
	r, _, err := cl.request(ctx, MsgStartMonitor, func(id uint64, retry bool) any {
		req.RequestID, req.Retry = id, retry
		return req
	})
	if err != nil {
		return nil, err
	}
	var st SessionStatus
	if err := DecodeJSON(r.t, r.body, &st); err != nil {
		return nil, err
	}
	if remember {
		req.Session, req.RequestID, req.Retry = st.Session, 0, false
		cl.mu.Lock()
		cl.sessions[st.Session] = req
		cl.mu.Unlock()
	}
	return &st, nil
}

// StopMonitor ends a session. When the connection broke after the request
// was written and the retry finds the session gone (CodeUnknown), the
// first attempt stopped it: StopMonitor reports it stopped, with
// AlreadyStopped true.
func (cl *Client) StopMonitor(ctx context.Context, session string) (*SessionStatus, error) {
	cl.mu.Lock()
	delete(cl.sessions, session)
	busy := cl.reasserting[session]
	cl.mu.Unlock()
	if busy != nil {
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	r, sentBefore, err := cl.request(ctx, MsgStopMonitor, func(id uint64, retry bool) any {
		return StopMonitor{RequestID: id, Session: session, Retry: retry}
	})
	var e *Error
	if err != nil && sentBefore && errors.As(err, &e) && e.Code == CodeUnknown {
		return &SessionStatus{Session: session, State: SessionStopped, Server: cl.Server(), AlreadyStopped: true}, nil
	}
	if err != nil {
		return nil, err
	}
	var st SessionStatus
	if err := DecodeJSON(r.t, r.body, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// Status returns the server's status object. A status too large for one
// frame arrives in parts (the client lists FeatureStatusParts in its
// hello), up to MaxStatusBytes.
func (cl *Client) Status(ctx context.Context) (json.RawMessage, error) {
	r, _, err := cl.request(ctx, MsgStatus, func(id uint64, _ bool) any { return StatusRequest{RequestID: id} })
	if err != nil {
		return nil, err
	}
	if r.t == MsgStatusPart {
		if !json.Valid(r.body) {
			return nil, fmt.Errorf("%w: the status sent in parts is not JSON", ErrBadFrame)
		}
		return r.body, nil
	}
	var sr StatusReply
	if err := DecodeJSON(r.t, r.body, &sr); err != nil {
		return nil, err
	}
	return sr.Status, nil
}

// AuditQuery sends one audit query and returns the reply: one page, which
// says whether more follow (AuditReply.Truncated; see AuditQuery for how
// to ask for the next). req.RequestID is set by the client. A server that
// does not answer audit queries (it did not list FeatureAudit) returns an
// error wrapping ErrNotSupported without sending anything; a refusal
// (an identity that is not an administrator: CodeUnauthorized) wraps
// ErrRemote and an *Error.
func (cl *Client) AuditQuery(ctx context.Context, req AuditQuery) (*AuditReply, error) {
	return featureRequest[AuditReply](ctx, cl, MsgAuditQuery, FeatureAudit, "audit queries", func(id uint64) any {
		req.RequestID = id
		return req
	})
}

// AgentsQuery sends one agents query and returns the reply: one page of
// agents sorted by id, which says whether more follow (AgentsReply.More:
// ask again with After set to the last agent's id). req.RequestID is set
// by the client. A server that does not answer agent list queries (it did
// not list FeatureAgents) returns an error wrapping ErrNotSupported
// without sending anything; a refusal (a bad query: CodeBadRequest)
// wraps ErrRemote and an *Error.
func (cl *Client) AgentsQuery(ctx context.Context, req AgentsQuery) (*AgentsReply, error) {
	return featureRequest[AgentsReply](ctx, cl, MsgAgentsQuery, FeatureAgents, "agent list queries", func(id uint64) any {
		req.RequestID = id
		return req
	})
}

// featureRequest sends the request build makes (given its request id) to
// a server that listed feature, and decodes the reply into an R. A server
// that did not list it is not asked: the error (errNotAsked) names what,
// the kind of request in the plural, and wraps ErrNotSupported.
func featureRequest[R any](ctx context.Context, cl *Client, t MsgType, feature, what string, build func(id uint64) any) (*R, error) {
	r, _, err := cl.request(ctx, t, func(id uint64, _ bool) any {
		cl.mu.Lock()
		h, server := cl.hello, cl.server
		cl.mu.Unlock()
		if !h.HasFeature(feature) {
			return errNotAsked{server: server, what: what}
		}
		return build(id)
	})
	if err != nil {
		return nil, err
	}
	var rep R
	if err := DecodeJSON(r.t, r.body, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// errNotAsked, returned by a request's build function, makes request
// return an error without sending anything: the server did not list the
// feature of what (the kind of request, plural).
type errNotAsked struct{ server, what string }

func (e errNotAsked) Error() string {
	return fmt.Sprintf("server %s does not answer %s (an older smserver, or not a capture server): %v", e.server, e.what, ErrNotSupported)
}

func (e errNotAsked) Unwrap() error { return ErrNotSupported }

// Close closes the connection and stops the client's goroutines.
func (cl *Client) Close() error {
	cl.mu.Lock()
	if cl.closed {
		cl.mu.Unlock()
		return nil
	}
	cl.closed = true
	close(cl.stop)
	if cl.c != nil {
		cl.c.close()
	}
	cl.mu.Unlock()
	cl.wg.Wait()
	return nil
}
