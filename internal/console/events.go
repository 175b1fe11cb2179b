package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silentmon/silentmon/relay"
)

// Event stream periods.
const (
	agentsPeriod    = time.Second
	sessionsPeriod  = 500 * time.Millisecond
	levelsPeriod    = 100 * time.Millisecond
	heartbeatPeriod = 15 * time.Second
	writeTimeout    = 10 * time.Second
)

// eventLimit counts the open event streams.
type eventLimit struct {
	max int64
	n   atomic.Int64
}

func (l *eventLimit) take() bool {
	if l.n.Add(1) > l.max {
		l.n.Add(-1)
		return false
	}
	return true
}

func (l *eventLimit) give() { l.n.Add(-1) }

// agentsPoller asks the capture servers for their agents every second
// while event streams are open, and keeps the last answer (JSON) with a
// channel closed when it changes. It is safe for concurrent use.
type agentsPoller struct {
	capture Capture
	clock   Clock
	wake    chan struct{}

	mu      sync.Mutex
	cur     []byte
	changed chan struct{}
	subs    int
}

func newAgentsPoller(c Capture, clock Clock) *agentsPoller {
	return &agentsPoller{capture: c, clock: clock, wake: make(chan struct{}, 1), changed: make(chan struct{})}
}

// subscribe counts an event stream and asks for an answer now; the
// returned function ends the subscription.
func (p *agentsPoller) subscribe() func() {
	p.mu.Lock()
	p.subs++
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return func() {
		p.mu.Lock()
		p.subs--
		p.mu.Unlock()
	}
}

// latest returns the last answer (nil before the first) and a channel
// closed when it changes.
func (p *agentsPoller) latest() ([]byte, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur, p.changed
}

// fetch asks the capture servers now, keeps the answer and returns it.
func (p *agentsPoller) fetch(ctx context.Context) []byte {
	a := agentsJSON{Agents: []relay.AgentStatus{}}
	if p.capture == nil {
		a.Error = "no capture server configured"
	} else if agents, err := p.capture.Agents(ctx); err != nil {
		if e := remoteError(err); e != nil && e.Code == relay.CodeUnauthorized {
			a.Error = "not authorised to list the agents: " + e.Message
		} else {
			_, a.Error = captureError("agents query", err)
		}
	} else if agents != nil {
		a.Agents = agents
	}
	b, _ := json.Marshal(a)
	p.mu.Lock()
	if !bytes.Equal(b, p.cur) {
		p.cur = b
		close(p.changed)
		p.changed = make(chan struct{})
	}
	p.mu.Unlock()
	return b
}

// run polls while streams are open, and at once when one opens, until ctx
// ends.
func (p *agentsPoller) run(ctx context.Context) {
	t := p.clock.NewTicker(agentsPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-t.C():
			p.mu.Lock()
			n := p.subs
			p.mu.Unlock()
			if n == 0 {
				continue
			}
		}
		p.fetch(ctx)
	}
}

// sse writes server-sent events to one stream.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (e *sse) send(event string, data []byte) error {
	e.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := fmt.Fprintf(e.w, "event: %s\ndata: %s\n\n", event, data); err != nil {
		return err
	}
	return e.rc.Flush()
}

func (e *sse) comment(text string) error {
	e.rc.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := fmt.Fprintf(e.w, ": %s\n\n", text); err != nil {
		return err
	}
	return e.rc.Flush()
}

// getEvents serves the event stream: agents (on change, polled every
// second), sessions (every 500 ms while there are sessions), levels
// (every 100 ms while a session is played), a digit per telephone event
// of a session's calls received after the stream opened (checked with
// the sessions; Digits), a comment every 15 s. Each of agents, sessions
// and levels is sent at once when the stream opens, and once more when
// it becomes empty.
func (s *Server) getEvents(w http.ResponseWriter, r *http.Request) {
	if !s.events.take() {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("too many event streams are open (at most %d)", s.cfg.MaxEventStreams))
		return
	}
	defer s.events.give()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	e := &sse{w: w, rc: http.NewResponseController(w)}
	if e.comment("silentmon console events") != nil {
		return
	}
	defer s.agents.subscribe()()
	var lastAgents []byte
	var agentsChanged <-chan struct{}
	sendAgents := func() error {
		// The answer and the channel come together, so that no change
		// between them is missed.
		var cur []byte
		cur, agentsChanged = s.agents.latest()
		if cur == nil || bytes.Equal(cur, lastAgents) {
			return nil
		}
		lastAgents = cur
		return e.send("agents", cur)
	}
	hadSessions := true // send the first, even empty
	sendSessions := func() error {
		list := s.sessions()
		if len(list) == 0 && !hadSessions {
			return nil
		}
		hadSessions = len(list) > 0
		b, _ := json.Marshal(map[string]any{"sessions": list})
		return e.send("sessions", b)
	}
	hadLevels := true
	sendLevels := func() error {
		if s.cfg.Listener == nil {
			return nil
		}
		lv := s.cfg.Listener.Levels()
		if len(lv) == 0 && !hadLevels {
			return nil
		}
		hadLevels = len(lv) > 0
		out := make(map[string]map[string]float64, len(lv))
		for id, l := range lv {
			out[id] = map[string]float64{"agent": l.Agent, "customer": l.Customer}
		}
		b, _ := json.Marshal(out)
		return e.send("levels", b)
	}
	digits, _ := s.cfg.Sessions.(Digits)
	var digitSeq uint64
	if digits != nil {
		for _, d := range digits.DigitsSince(0) {
			digitSeq = max(digitSeq, d.Seq)
		}
	}
	sendDigits := func() error {
		if digits == nil {
			return nil
		}
		for _, d := range digits.DigitsSince(digitSeq) {
			digitSeq = d.Seq
			b, _ := json.Marshal(d)
			if err := e.send("digit", b); err != nil {
				return err
			}
		}
		return nil
	}
	if sendAgents() != nil || sendSessions() != nil || sendLevels() != nil {
		return
	}
	st, lt, ht := s.cfg.Clock.NewTicker(sessionsPeriod), s.cfg.Clock.NewTicker(levelsPeriod), s.cfg.Clock.NewTicker(heartbeatPeriod)
	defer st.Stop()
	defer lt.Stop()
	defer ht.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-agentsChanged:
			err = sendAgents()
		case <-st.C():
			if err = sendDigits(); err == nil {
				err = sendSessions()
			}
		case <-lt.C():
			err = sendLevels()
		case <-ht.C():
			err = e.comment("heartbeat")
		}
		if err != nil {
			return
		}
	}
}
