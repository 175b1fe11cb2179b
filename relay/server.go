package relay

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Peer describes the other end of an accepted connection.
type Peer struct {
	Addr  net.Addr
	Hello Hello
	// TLS is the connection state after the handshake; nil in plaintext.
	TLS *tls.ConnectionState
}

// Handler serves the requests of accepted connections. Its methods may be
// called concurrently from several connections. A Handler that does not
// serve a request kind returns an *Error with CodeBadRequest.
type Handler interface {
	StartMonitor(ctx context.Context, p *Peer, req *StartMonitor) (*SessionStatus, error)
	StopMonitor(ctx context.Context, p *Peer, req *StopMonitor) (*SessionStatus, error)
	Status(ctx context.Context, p *Peer) (any, error)
	// Media is called for each media frame, on the connection's goroutine;
	// f's slices alias a buffer reused after Media returns.
	Media(p *Peer, f *MediaFrame) error
	// Closed is called once when a connection that completed its hello
	// ends.
	Closed(p *Peer, err error)
}

// SessionHandler is implemented by a Handler that takes the session
// notices capture servers send (MsgSession); a Server whose Handler
// implements it lists FeatureSessions in its hello. Session is called on
// the connection's goroutine, in order with Media: a notice sent before a
// session's first media frame is handled before it. An error closes the
// connection (an *Error is sent to the peer first). A Server whose Handler
// does not implement it ignores session notices.
type SessionHandler interface {
	Session(p *Peer, n *SessionNotice) error
}

// AuditHandler is implemented by a Handler that answers audit queries
// (MsgAuditQuery); a Server whose Handler implements it lists
// FeatureAudit in its hello, and one whose Handler does not answers the
// query with CodeBadRequest. AuditQuery is called on the connection's
// goroutine, so it should answer within the peer's heartbeat timeout.
// It decides who may ask: p.TLS carries the client's certificate (nil on
// a plaintext listener); an identity that may not is refused with an
// *Error of CodeUnauthorized. The reply's records must take at most
// MaxAuditRecordBytes encoded; a reply too large for a frame is not sent
// and the client gets CodeInternal instead.
type AuditHandler interface {
	AuditQuery(ctx context.Context, p *Peer, req *AuditQuery) (*AuditReply, error)
}

// AgentsHandler is implemented by a Handler that answers agent list
// queries (MsgAgentsQuery); a Server whose Handler implements it lists
// FeatureAgents in its hello, and one whose Handler does not answers the
// query with CodeBadRequest. The Server validates the query first
// (ValidateAgentsQuery: a bad one is refused with CodeBadRequest and the
// handler is not called) and sets a Limit of 0 to DefaultAgentsLimit.
// AgentsQuery is called on the connection's goroutine, so it should
// answer within the peer's heartbeat timeout. It returns at most
// req.Limit agents sorted by id, those after req.After, and sets More when
// others follow; it cuts pages so that the reply fits in a frame
// (DefaultMaxFrame): a reply too large is not sent and the client gets
// CodeInternal instead. It decides who may ask, as AuditHandler does.
type AgentsHandler interface {
	AgentsQuery(ctx context.Context, p *Peer, req *AgentsQuery) (*AgentsReply, error)
}

// ServerConfig configures a Server. Zero fields take the defaults given.
type ServerConfig struct {
	Handler Handler
	Logger  *slog.Logger // default slog.Default()
	Name    string       // announced in hellos
	Role    string       // RoleServer (default) or RoleSupervisor
	// HeartbeatTimeout drops a peer silent for this long (default 15 s).
	HeartbeatTimeout time.Duration
	// HelloTimeout bounds the wait for the first frame (default 10 s).
	HelloTimeout time.Duration
	// MaxFrame is the largest frame body accepted (default DefaultMaxFrame).
	MaxFrame int
	// WriteTimeout bounds each write (default 10 s).
	WriteTimeout time.Duration
}

// ServerStats are a server's counters.
type ServerStats struct {
	Accepted       uint64
	Active         int64
	ProtocolErrors uint64
	MediaFrames    uint64
	MediaPackets   uint64
}

// Server accepts connections speaking the relay protocol. It is safe for
// concurrent use. Close stops it and waits for its goroutines.
type Server struct {
	cfg    ServerConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu    sync.Mutex
	lns   map[net.Listener]struct{}
	conns map[*conn]struct{}
	wg    sync.WaitGroup

	accepted, protoErrs, mediaFrames, mediaPkts atomic.Uint64
	active                                      atomic.Int64
}

// NewServer returns a Server; call Serve with a listener.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Role == "" {
		cfg.Role = RoleServer
	}
	if cfg.HeartbeatTimeout <= 0 {
		cfg.HeartbeatTimeout = 15 * time.Second
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel,
		lns: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}}
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Accepted: s.accepted.Load(), Active: s.active.Load(),
		ProtocolErrors: s.protoErrs.Load(), MediaFrames: s.mediaFrames.Load(),
		MediaPackets: s.mediaPkts.Load()}
}

// Serve accepts connections on ln until Close; it returns nil after Close
// or when ln is closed. A temporary accept error (a timeout, too many open
// files) is retried after a back-off that grows from 5 ms to 1 s; any other
// accept error is permanent and returned, wrapped. TLS, if wanted, is the
// listener's business (a tls.Listener, or one that returns handshaken
// *tls.Conn).
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.ctx.Err() != nil {
		s.mu.Unlock()
		ln.Close()
		return ErrClosed
	}
	s.lns[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			if !temporary(err) {
				return fmt.Errorf("relay: accept on %s: %w", ln.Addr(), err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("accept failed; retrying", "err", err, "in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		c := newConn(nc, s.cfg.MaxFrame)
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.accepted.Add(1)
		go s.serveConn(c)
	}
}

// Close stops accepting, closes every connection and waits.
func (s *Server) Close() error {
	s.mu.Lock()
	s.cancel()
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// temporary reports whether an accept error may go away by itself: a
// timeout, or an error that says it is temporary (EMFILE, ENFILE, EINTR).
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	var ne net.Error
	return (errors.As(err, &ne) && ne.Timeout()) || (errors.As(err, &t) && t.Temporary())
}

func (s *Server) serveConn(c *conn) {
	defer func() {
		c.close()
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		s.wg.Done()
	}()
	if tc, ok := c.nc.(*tls.Conn); ok {
		c.nc.SetDeadline(time.Now().Add(s.cfg.HelloTimeout))
		if err := tc.HandshakeContext(s.ctx); err != nil {
			s.log.Debug("TLS handshake failed", "peer", c.nc.RemoteAddr(), "err", err)
			return
		}
		c.nc.SetDeadline(time.Time{})
	}
	p := &Peer{Addr: c.nc.RemoteAddr()}
	if tc, ok := c.nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		p.TLS = &st
	}
	if err := s.hello(c, p); err != nil {
		s.protoErrs.Add(1)
		if errors.Is(err, ErrTLSOnPlaintext) {
			// A misconfiguration, not a probe: say what to change.
			s.log.Warn("connection refused: "+ErrTLSOnPlaintext.Error(), "peer", p.Addr)
			return
		}
		s.log.Info("connection refused", "peer", p.Addr, "err", err)
		return
	}
	s.active.Add(1)
	err := s.loop(c, p)
	s.active.Add(-1)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) && s.ctx.Err() == nil {
		s.log.Info("connection closed", "peer", p.Addr, "role", p.Hello.Role, "err", err)
	}
	s.cfg.Handler.Closed(p, err)
}

func (s *Server) hello(c *conn, p *Peer) error {
	c.nc.SetReadDeadline(time.Now().Add(s.cfg.HelloTimeout))
	t, body, err := c.r.Next()
	if err != nil {
		s.sendFatal(c, err)
		return err
	}
	if t != MsgHello {
		err := fmt.Errorf("%w: %v before hello", ErrUnexpected, t)
		s.sendError(c, 0, CodeProtocol, err.Error())
		return err
	}
	if err := DecodeJSON(t, body, &p.Hello); err != nil {
		s.sendError(c, 0, CodeProtocol, err.Error())
		return err
	}
	v, ok := negotiate(p.Hello.Versions)
	if !ok {
		err := fmt.Errorf("%w: peer offers %v, this server speaks %d", ErrVersion, p.Hello.Versions, Version)
		s.sendError(c, 0, CodeVersion, err.Error())
		return err
	}
	reply := Hello{Version: v, Role: s.cfg.Role, Name: s.cfg.Name}
	if _, ok := s.cfg.Handler.(SessionHandler); ok {
		reply.Features = append(reply.Features, FeatureSessions)
	}
	if _, ok := s.cfg.Handler.(AuditHandler); ok {
		reply.Features = append(reply.Features, FeatureAudit)
	}
	if _, ok := s.cfg.Handler.(AgentsHandler); ok {
		reply.Features = append(reply.Features, FeatureAgents)
	}
	if _, ok := s.cfg.Handler.(BindHandler); ok {
		reply.Features = append(reply.Features, FeatureBind)
	}
	if _, ok := s.cfg.Handler.(WatchHandler); ok {
		reply.Features = append(reply.Features, FeatureEvents)
	}
	return c.writeJSON(MsgHello, reply, s.cfg.WriteTimeout)
}

func (s *Server) sendFatal(c *conn, err error) {
	var e *Error
	switch {
	case errors.As(err, &e):
		s.sendError(c, 0, e.Code, e.Message)
	case errors.Is(err, ErrFrameTooLarge):
		s.sendError(c, 0, CodeTooLarge, err.Error())
	case errors.Is(err, ErrBadFrame), errors.Is(err, ErrBadMedia):
		s.sendError(c, 0, CodeProtocol, err.Error())
	}
}

func (s *Server) sendError(c *conn, id uint64, code, msg string) {
	c.writeJSON(MsgError, Error{RequestID: id, Code: code, Message: msg}, time.Second)
}

func (s *Server) loop(c *conn, p *Peer) error {
	ctx := s.ctx
	var ev *eventQueue // the agent events of this connection, once watched
	defer func() {
		if ev != nil {
			ev.close()
		}
	}()
	for {
		c.nc.SetReadDeadline(time.Now().Add(s.cfg.HeartbeatTimeout))
		t, body, err := c.r.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("%w: peer silent for %v", ErrHeartbeatLost, s.cfg.HeartbeatTimeout)
			} else {
				s.sendFatal(c, err)
			}
			if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrBadFrame) {
				s.protoErrs.Add(1)
			}
			return err
		}
		switch t {
		case MsgMedia:
			f, err := ParseMedia(body)
			if err == nil {
				s.mediaFrames.Add(1)
				s.mediaPkts.Add(uint64(f.Len()))
				err = s.cfg.Handler.Media(p, &f)
			}
			if err != nil {
				s.protoErrs.Add(1)
				s.sendFatal(c, err)
				return err
			}
		case MsgSession:
			var n SessionNotice
			if err := DecodeJSON(t, body, &n); err != nil {
				return s.protocolError(c, err)
			}
			if h, ok := s.cfg.Handler.(SessionHandler); ok {
				if err := h.Session(p, &n); err != nil {
					s.protoErrs.Add(1)
					s.sendFatal(c, err)
					return err
				}
			}
		case MsgHeartbeat:
			var hb Heartbeat
			if err := DecodeJSON(t, body, &hb); err != nil {
				return s.protocolError(c, err)
			}
			if !hb.Reply {
				if err := c.writeJSON(MsgHeartbeat, Heartbeat{Seq: hb.Seq, Reply: true}, s.cfg.WriteTimeout); err != nil {
					return err
				}
			}
		case MsgStartMonitor:
			var req StartMonitor
			if err := DecodeJSON(t, body, &req); err != nil {
				return s.protocolError(c, err)
			}
			st, err := s.cfg.Handler.StartMonitor(ctx, p, &req)
			if err := s.reply(c, req.RequestID, MsgSessionStatus, st, err); err != nil {
				return err
			}
		case MsgStopMonitor:
			var req StopMonitor
			if err := DecodeJSON(t, body, &req); err != nil {
				return s.protocolError(c, err)
			}
			st, err := s.cfg.Handler.StopMonitor(ctx, p, &req)
			if err := s.reply(c, req.RequestID, MsgSessionStatus, st, err); err != nil {
				return err
			}
		case MsgStatus:
			var req StatusRequest
			if err := DecodeJSON(t, body, &req); err != nil {
				return s.protocolError(c, err)
			}
			if err := s.status(ctx, c, p, &req); err != nil {
				return err
			}
		case MsgAuditQuery:
			var req AuditQuery
			if err := DecodeJSON(t, body, &req); err != nil {
				return s.protocolError(c, err)
			}
			if err := s.auditQuery(ctx, c, p, &req); err != nil {
				return err
			}
		case MsgAgentsQuery:
			var req AgentsQuery
			if err := DecodeJSON(t, body, &req); err != nil {
				return s.protocolError(c, err)
			}
			if err := s.agentsQuery(ctx, c, p, &req); err != nil {
				return err
			}
		case MsgAgentsBind:
			var req AgentsBind
			if err := DecodeJSON(t, body, &req); err != nil {
				return s.protocolError(c, err)
			}
			if err := s.agentsBind(ctx, c, p, &req); err != nil {
				return err
			}
		case MsgAgentWatch:
			var req AgentWatch
			if err := DecodeJSON(t, body, &req); err != nil {
				return s.protocolError(c, err)
			}
			if err := s.agentWatch(ctx, c, p, &req, &ev); err != nil {
				return err
			}
		case MsgError:
			var e Error
			DecodeJSON(t, body, &e)
			return fmt.Errorf("%w: %s", ErrRemote, e.Message)
		case MsgHello:
			return s.protocolError(c, fmt.Errorf("%w: second hello", ErrUnexpected))
		default:
			// Unknown types are refused: the version was negotiated, so a
			// peer sending one is broken.
			return s.protocolError(c, fmt.Errorf("%w: type 0x%02x", ErrUnexpected, uint8(t)))
		}
	}
}

// status answers one status request: in one status-reply frame when it
// fits, else in parts (MsgStatusPart) to a client that takes them, else
// with an error naming the size; the connection stays up either way.
func (s *Server) status(ctx context.Context, c *conn, p *Peer, req *StatusRequest) error {
	v, err := s.cfg.Handler.Status(ctx, p)
	if err != nil {
		return s.reply(c, req.RequestID, MsgStatusReply, nil, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return s.reply(c, req.RequestID, MsgStatusReply, nil, err)
	}
	b, err := json.Marshal(&StatusReply{RequestID: req.RequestID, Status: raw})
	if err != nil {
		return s.reply(c, req.RequestID, MsgStatusReply, nil, err)
	}
	if len(b) <= DefaultMaxFrame {
		return c.writeRaw(AppendFrame(nil, MsgStatusReply, b), s.cfg.WriteTimeout)
	}
	if !p.Hello.HasFeature(FeatureStatusParts) {
		return s.reply(c, req.RequestID, MsgStatusReply, nil, &Error{Code: CodeTooLarge,
			Message: fmt.Sprintf("the status of %d bytes exceeds the frame limit of %d bytes, and this client does not take it in parts (feature %q): use a newer smctl",
				len(raw), DefaultMaxFrame, FeatureStatusParts)})
	}
	var wb []byte
	for off := 0; off < len(raw); off += StatusPartSize {
		end := min(off+StatusPartSize, len(raw))
		wb = AppendStatusPart(wb[:0], &StatusPart{RequestID: req.RequestID, Last: end == len(raw), Data: raw[off:end]})
		if err := c.writeRaw(wb, s.cfg.WriteTimeout); err != nil {
			return err
		}
	}
	return nil
}

// auditQuery answers one audit query through the AuditHandler, if any.
func (s *Server) auditQuery(ctx context.Context, c *conn, p *Peer, req *AuditQuery) error {
	h, ok := s.cfg.Handler.(AuditHandler)
	if !ok {
		return s.reply(c, req.RequestID, MsgAuditReply, nil,
			&Error{Code: CodeBadRequest, Message: "this server does not answer audit queries"})
	}
	rep, err := h.AuditQuery(ctx, p, req)
	if err == nil && rep == nil {
		err = errors.New("the audit query handler returned no reply")
	}
	if err != nil {
		return s.reply(c, req.RequestID, MsgAuditReply, nil, err)
	}
	rep.RequestID = req.RequestID
	if rep.Records == nil {
		rep.Records = []json.RawMessage{}
	}
	if rep.Members == nil {
		rep.Members = []AuditMember{}
	}
	b, err := json.Marshal(rep)
	if err == nil && len(b) > DefaultMaxFrame {
		err = fmt.Errorf("the audit reply of %d bytes exceeds the frame limit of %d bytes", len(b), DefaultMaxFrame)
	}
	if err != nil {
		s.log.Warn("audit query failed", "peer", p.Addr, "err", err)
		return s.reply(c, req.RequestID, MsgAuditReply, nil, err)
	}
	return c.writeRaw(AppendFrame(nil, MsgAuditReply, b), s.cfg.WriteTimeout)
}

// agentsQuery answers one agents query through the AgentsHandler, if any.
func (s *Server) agentsQuery(ctx context.Context, c *conn, p *Peer, req *AgentsQuery) error {
	h, ok := s.cfg.Handler.(AgentsHandler)
	if !ok {
		return s.reply(c, req.RequestID, MsgAgentsReply, nil,
			&Error{Code: CodeBadRequest, Message: "this server does not answer agent list queries"})
	}
	if err := ValidateAgentsQuery(req); err != nil {
		return s.reply(c, req.RequestID, MsgAgentsReply, nil, err)
	}
	if req.Limit == 0 {
		req.Limit = DefaultAgentsLimit
	}
	rep, err := h.AgentsQuery(ctx, p, req)
	if err == nil && rep == nil {
		err = errors.New("the agents query handler returned no reply")
	}
	if err != nil {
		return s.reply(c, req.RequestID, MsgAgentsReply, nil, err)
	}
	rep.RequestID = req.RequestID
	fillAgents(rep)
	b, err := json.Marshal(rep)
	if err == nil && len(b) > DefaultMaxFrame {
		err = fmt.Errorf("the agents reply of %d agents and %d bytes exceeds the frame limit of %d bytes", len(rep.Agents), len(b), DefaultMaxFrame)
	}
	if err != nil {
		s.log.Warn("agents query failed", "peer", p.Addr, "err", err)
		return s.reply(c, req.RequestID, MsgAgentsReply, nil, err)
	}
	return c.writeRaw(AppendFrame(nil, MsgAgentsReply, b), s.cfg.WriteTimeout)
}

// fillAgents replaces the nil lists the wire form never holds as null
// (agents, devices, local and remote media addresses) with empty ones. It
// copies what it changes: the handler's slices may be shared.
func fillAgents(rep *AgentsReply) {
	agents := rep.Agents
	if agents == nil {
		agents = []AgentStatus{}
	}
	copied := false
	for i := range agents {
		a := agents[i]
		changed := false
		if a.Devices == nil {
			a.Devices = []AgentDevice{}
			changed = true
		}
		callsCopied := false
		for j := range a.Calls {
			if a.Calls[j].Local != nil && a.Calls[j].Remote != nil {
				continue
			}
			if !callsCopied {
				a.Calls = slices.Clone(a.Calls)
				callsCopied, changed = true, true
			}
			if a.Calls[j].Local == nil {
				a.Calls[j].Local = []string{}
			}
			if a.Calls[j].Remote == nil {
				a.Calls[j].Remote = []string{}
			}
		}
		if !changed {
			continue
		}
		if !copied {
			agents = slices.Clone(agents)
			copied = true
		}
		agents[i] = a
	}
	rep.Agents = agents
}

func (s *Server) protocolError(c *conn, err error) error {
	s.protoErrs.Add(1)
	s.sendError(c, 0, CodeProtocol, err.Error())
	return err
}

func (s *Server) reply(c *conn, id uint64, t MsgType, v any, err error) error {
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{Code: CodeInternal, Message: err.Error()}
		}
		e2 := *e
		e2.RequestID = id
		return c.writeJSON(MsgError, e2, s.cfg.WriteTimeout)
	}
	if st, ok := v.(*SessionStatus); ok && st != nil {
		st.RequestID = id
		if st.Server == "" {
			st.Server = s.cfg.Name
		}
	}
	return c.writeJSON(t, v, s.cfg.WriteTimeout)
}

// MediaOnly, embedded in a Handler, refuses the control requests a
// supervisor service does not serve: sessions are started and stopped on
// capture servers. It also makes the Handler a SessionHandler that
// ignores session notices; a Handler that wants them defines its own
// Session method.
type MediaOnly struct{}

// Session ignores the notice.
func (MediaOnly) Session(*Peer, *SessionNotice) error { return nil }

// StartMonitor refuses the request.
func (MediaOnly) StartMonitor(context.Context, *Peer, *StartMonitor) (*SessionStatus, error) {
	return nil, &Error{Code: CodeBadRequest, Message: "a supervisor service does not start sessions; send the request to a capture server"}
}

// StopMonitor refuses the request.
func (MediaOnly) StopMonitor(context.Context, *Peer, *StopMonitor) (*SessionStatus, error) {
	return nil, &Error{Code: CodeBadRequest, Message: "a supervisor service does not stop sessions; send the request to a capture server"}
}
