package relay

import (
	"context"
	"encoding/json"
	"net"
	"sync"
)

// agentsBind answers one bind request through the BindHandler, if any.
func (s *Server) agentsBind(ctx context.Context, c *conn, p *Peer, req *AgentsBind) error {
	h, ok := s.cfg.Handler.(BindHandler)
	if !ok {
		return s.reply(c, req.RequestID, MsgAgentsBindReply, nil,
			&Error{Code: CodeBadRequest, Message: "this server does not take agent bindings"})
	}
	if err := ValidateAgentsBind(req); err != nil {
		return s.reply(c, req.RequestID, MsgAgentsBindReply, nil, err)
	}
	rep, err := h.AgentsBind(ctx, p, req)
	if err == nil {
		rep.RequestID = req.RequestID
		if rep.Devices == nil {
			rep.Devices = []string{}
		}
		if rep.Extensions == nil {
			rep.Extensions = []string{}
		}
	}
	return s.reply(c, req.RequestID, MsgAgentsBindReply, rep, err)
}

// agentWatch answers one watch through the WatchHandler, if any, and
// starts the connection's event queue (*q) on the first.
func (s *Server) agentWatch(ctx context.Context, c *conn, p *Peer, req *AgentWatch, q **eventQueue) error {
	h, ok := s.cfg.Handler.(WatchHandler)
	if !ok {
		return s.reply(c, req.RequestID, MsgAgentEvents, nil,
			&Error{Code: CodeBadRequest, Message: "this server does not send agent events"})
	}
	if err := ValidateAgentWatch(req); err != nil {
		return s.reply(c, req.RequestID, MsgAgentEvents, nil, err)
	}
	if *q == nil {
		*q = newEventQueue(c, s)
	}
	push := (*q).watch() // holds the queue until the reply is written
	rep, err := h.AgentWatch(ctx, p, req, push)
	if err == nil {
		rep.RequestID = req.RequestID
		if rep.Events == nil {
			rep.Events = []AgentEvent{}
		}
	}
	werr := s.reply(c, req.RequestID, MsgAgentEvents, rep, err)
	(*q).release()
	return werr
}

// eventQueue writes the agent events pushed for one connection, in
// order, from its own goroutine, so that a handler pushing never waits
// for the network. Pushes of a replaced watch fail with net.ErrClosed.
type eventQueue struct {
	c *conn
	s *Server

	mu      sync.Mutex
	cond    *sync.Cond
	events  []AgentEvent
	gen     uint64 // the current watch
	held    bool   // a watch's reply is not written yet
	closed  bool
	stopped chan struct{}
}

func newEventQueue(c *conn, s *Server) *eventQueue {
	q := &eventQueue{c: c, s: s, stopped: make(chan struct{})}
	q.cond = sync.NewCond(&q.mu)
	go q.run()
	return q
}

// watch starts a new watch: earlier pushes are dropped and their push
// functions fail from now on; the queue holds its events until release.
func (q *eventQueue) watch() func(AgentEvent) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.gen++
	q.events = q.events[:0]
	q.held = true
	gen := q.gen
	return func(e AgentEvent) error {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.closed || q.gen != gen {
			return net.ErrClosed
		}
		if len(q.events) >= MaxEventsQueue {
			// The client does not read: end the connection; it gets the
			// current state when it watches again.
			q.closed = true
			q.cond.Broadcast()
			q.c.close()
			return net.ErrClosed
		}
		q.events = append(q.events, e)
		q.cond.Broadcast()
		return nil
	}
}

// release lets the queue write the events pushed since the last watch.
func (q *eventQueue) release() {
	q.mu.Lock()
	q.held = false
	q.cond.Broadcast()
	q.mu.Unlock()
}

// close stops the queue and waits for its goroutine.
func (q *eventQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	<-q.stopped
}

func (q *eventQueue) run() {
	defer close(q.stopped)
	var wb []byte
	for {
		q.mu.Lock()
		for !q.closed && (q.held || len(q.events) == 0) {
			q.cond.Wait()
		}
		if q.closed {
			q.mu.Unlock()
			return
		}
		batch := AgentEvents{Events: append([]AgentEvent(nil), q.events...)}
		q.events = q.events[:0]
		q.mu.Unlock()
		b, err := json.Marshal(batch)
		if err != nil {
			continue
		}
		wb = AppendFrame(wb[:0], MsgAgentEvents, b)
		if err := q.c.writeRaw(wb, q.s.cfg.WriteTimeout); err != nil {
			q.mu.Lock()
			q.closed = true
			q.mu.Unlock()
			q.c.close()
			return
		}
	}
}
