package relay

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// bindHandler keeps bindings per agent and serves watches: the reply is
// "not-monitored" for each agent, and pushes is called, if set, with the
// watch's push before AgentWatch returns.
type bindHandler struct {
	testHandler
	bmu      sync.Mutex
	binds    []AgentsBind
	pushes   func(push func(AgentEvent) error)
	lastPush func(AgentEvent) error
}

func (h *bindHandler) setPushes(f func(push func(AgentEvent) error)) {
	h.bmu.Lock()
	h.pushes = f
	h.bmu.Unlock()
}

func (h *bindHandler) AgentsBind(ctx context.Context, p *Peer, req *AgentsBind) (*AgentsBindReply, error) {
	h.bmu.Lock()
	defer h.bmu.Unlock()
	h.binds = append(h.binds, *req)
	return &AgentsBindReply{Agent: req.Agent, Devices: req.Devices}, nil
}

func (h *bindHandler) AgentWatch(ctx context.Context, p *Peer, req *AgentWatch, push func(AgentEvent) error) (*AgentEvents, error) {
	h.bmu.Lock()
	h.lastPush = push
	f := h.pushes
	h.bmu.Unlock()
	if f != nil {
		f(push)
	}
	rep := &AgentEvents{}
	for _, a := range req.Agents {
		rep.Events = append(rep.Events, AgentEvent{Agent: a, State: AgentNotMonitored})
	}
	return rep, nil
}

// TestAgentsBindValidation: every bad request is refused with
// bad-request naming the bad value, and the handler never sees it; good
// ones reach it, and nil lists in the reply arrive as [].
func TestAgentsBindValidation(t *testing.T) {
	h := &bindHandler{}
	_, addr := startServer(t, h, ServerConfig{Name: "sm1"})
	cl := dialAgents(t, addr, "cti")
	ctx := context.Background()
	for _, c := range []struct {
		name string
		req  AgentsBind
		want string // in the error; "" for accepted
	}{
		{"bind", AgentsBind{Action: "bind", Agent: "1001", Devices: []string{"10.10.0.1", "vlan85/00:1b:54:aa:bb:cc"}, Extensions: []string{"5001"}}, ""},
		{"unbind all", AgentsBind{Action: "unbind", Agent: "1001"}, ""},
		{"bad action", AgentsBind{Action: "steal", Agent: "1001", Devices: []string{"10.0.0.1"}}, `action "steal"`},
		{"empty agent", AgentsBind{Action: "bind", Devices: []string{"10.0.0.1"}}, `agent ""`},
		{"path agent", AgentsBind{Action: "bind", Agent: "../etc", Devices: []string{"10.0.0.1"}}, `agent "../etc"`},
		{"port range", AgentsBind{Action: "bind", Agent: "1001", Devices: []string{"10.0.0.1:20000-20999"}}, `device "10.0.0.1:20000-20999" has a port range`},
		{"not an address", AgentsBind{Action: "bind", Agent: "1001", Devices: []string{"phone-7"}}, `device "phone-7"`},
		{"bad extension", AgentsBind{Action: "bind", Agent: "1001", Extensions: []string{"50 01"}}, `extension "50 01"`},
		{"too many devices", AgentsBind{Action: "bind", Agent: "1001", Devices: slices.Repeat([]string{"10.0.0.1"}, MaxBindDevices+1)}, "17 devices exceed the limit of 16"},
		{"bind nothing", AgentsBind{Action: "bind", Agent: "1001"}, `names no device and no extension`},
	} {
		t.Run(c.name, func(t *testing.T) {
			h.bmu.Lock()
			before := len(h.binds)
			h.bmu.Unlock()
			rep, err := cl.AgentsBind(ctx, c.req)
			h.bmu.Lock()
			seen := len(h.binds) - before
			h.bmu.Unlock()
			if c.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if seen != 1 || rep.Agent != c.req.Agent || rep.Devices == nil || rep.Extensions == nil {
					t.Fatalf("handler saw %d, reply %+v", seen, rep)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != CodeBadRequest || !strings.Contains(e.Message, c.want) {
				t.Fatalf("err = %v, want bad-request containing %q", err, c.want)
			}
			if seen != 0 {
				t.Fatal("the handler saw a request the server should have refused")
			}
		})
	}
}

// TestBindAndWatchNotOffered: a server whose handler serves neither does
// not list the features; the client does not ask and says why.
func TestBindAndWatchNotOffered(t *testing.T) {
	_, addr := startServer(t, &testHandler{}, ServerConfig{Name: "sm1"})
	cl := dialAgents(t, addr, "cti")
	ctx := context.Background()
	if _, err := cl.AgentsBind(ctx, AgentsBind{Action: "bind", Agent: "1001", Extensions: []string{"5001"}}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("AgentsBind err = %v, want ErrNotSupported", err)
	}
	if _, err := cl.WatchAgents(ctx, []string{"1001"}); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("WatchAgents err = %v, want ErrNotSupported", err)
	}
}

// TestWatchEventsFollowTheReply: an event the handler pushes while it is
// still making the reply reaches the client after the reply, and later
// ones follow in order; pushes of a replaced watch fail.
func TestWatchEventsFollowTheReply(t *testing.T) {
	h := &bindHandler{}
	h.pushes = func(push func(AgentEvent) error) {
		if err := push(AgentEvent{Agent: "1001", State: AgentMonitored, Sessions: []string{"s1"}}); err != nil {
			t.Errorf("push during the watch: %v", err)
		}
	}
	_, addr := startServer(t, h, ServerConfig{Name: "sm1"})
	events := make(chan AgentEvent, 16)
	cl, err := Dial(context.Background(), ClientConfig{Servers: []string{addr}, Logger: quiet(), Name: "desk",
		OnAgentEvents: func(ev *AgentEvents) {
			for _, e := range ev.Events {
				events <- e
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	rep, err := cl.WatchAgents(context.Background(), []string{"1001", "1002"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Events) != 2 || rep.Events[0].State != AgentNotMonitored {
		t.Fatalf("reply %+v", rep)
	}
	h.bmu.Lock()
	push := h.lastPush
	h.bmu.Unlock()
	if err := push(AgentEvent{Agent: "1001", State: AgentNotMonitored}); err != nil {
		t.Fatal(err)
	}
	want := []string{AgentMonitored, AgentNotMonitored}
	for i, w := range want {
		select {
		case e := <-events:
			if e.Agent != "1001" || e.State != w {
				t.Fatalf("event %d = %+v, want 1001 %s", i, e, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d (%s) not received", i, w)
		}
	}
	h.setPushes(nil)
	if _, err := cl.WatchAgents(context.Background(), []string{"1002"}); err != nil {
		t.Fatal(err)
	}
	if err := push(AgentEvent{Agent: "1001", State: AgentMonitored}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("push of a replaced watch = %v, want net.ErrClosed", err)
	}
}

// TestWatchSlowClientDisconnected: a connection whose events pile up
// beyond MaxEventsQueue is closed, and the push that found the queue full
// says so; the server keeps serving others.
func TestWatchSlowClientDisconnected(t *testing.T) {
	h := &bindHandler{}
	lastc := make(chan error, 1)
	h.pushes = func(push func(AgentEvent) error) {
		// The queue is held until the reply is written: these pile up.
		var last error
		for i := 0; i <= MaxEventsQueue; i++ {
			last = push(AgentEvent{Agent: "1001", State: AgentMonitored})
		}
		select {
		case lastc <- last:
		default: // the client watching again after it was disconnected
		}
	}
	_, addr := startServer(t, h, ServerConfig{Name: "sm1"})
	cl := dialAgents(t, addr, "desk")
	cl.WatchAgents(context.Background(), []string{"1001"})
	if last := <-lastc; !errors.Is(last, net.ErrClosed) {
		t.Fatalf("push %d = %v, want net.ErrClosed", MaxEventsQueue+1, last)
	}
	deadline := time.Now().Add(5 * time.Second)
	for h.closed.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the connection of a client that fell behind was not closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.setPushes(nil)
	cl2 := dialAgents(t, addr, "desk2")
	if _, err := cl2.WatchAgents(context.Background(), []string{"1001"}); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

// TestWatchAgainAfterFailover: when the server goes away, the client
// watches the same agents on the other server and hands its reply to
// OnAgentEvents.
func TestWatchAgainAfterFailover(t *testing.T) {
	h1, h2 := &bindHandler{}, &bindHandler{}
	s1, a1 := startServer(t, h1, ServerConfig{Name: "sm1"})
	s2, a2 := startServer(t, h2, ServerConfig{Name: "sm2"})
	got := make(chan *AgentEvents, 4)
	cl, err := Dial(context.Background(), ClientConfig{Servers: []string{a1, a2}, Logger: quiet(), Name: "desk",
		OnAgentEvents: func(ev *AgentEvents) { got <- ev }})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := cl.WatchAgents(context.Background(), []string{"1001"}); err != nil {
		t.Fatal(err)
	}
	victim := s1
	if cl.Server() == a2 {
		victim = s2
	}
	victim.Close()
	select {
	case ev := <-got:
		if len(ev.Events) != 1 || ev.Events[0].Agent != "1001" || ev.Events[0].State != AgentNotMonitored {
			t.Fatalf("after failover: %+v", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no watch on the other server after failover")
	}
}

// FuzzBindMessages: agents-bind and agent-watch bodies are decoded and
// validated without a panic; an accepted bind names a valid agent and
// only devices ParseDevice takes, within the bounds.
func FuzzBindMessages(f *testing.F) {
	f.Add([]byte(`{"request_id":7,"action":"bind","agent":"1001","devices":["10.10.0.1","vlan85/00:1b:54:aa:bb:cc"],"extensions":["5001"]}`))
	f.Add([]byte(`{"request_id":8,"action":"unbind","agent":"1001"}`))
	f.Add([]byte(`{"request_id":9,"agents":["1001","1002"]}`))
	f.Add([]byte(`{"action":"bind","agent":"../etc","devices":["10.0.0.1:1-2"]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var b AgentsBind
		if DecodeJSON(MsgAgentsBind, body, &b) == nil && ValidateAgentsBind(&b) == nil {
			if !ValidAgentID(b.Agent) || len(b.Devices) > MaxBindDevices {
				t.Fatalf("accepted bind %+v", b)
			}
			for _, d := range b.Devices {
				if _, err := ParseDevice(d); err != nil {
					t.Fatalf("accepted bind with device %q: %v", d, err)
				}
			}
		}
		var w AgentWatch
		if DecodeJSON(MsgAgentWatch, body, &w) == nil && ValidateAgentWatch(&w) == nil {
			if len(w.Agents) > MaxWatchAgents {
				t.Fatalf("accepted watch of %d agents", len(w.Agents))
			}
			for _, a := range w.Agents {
				if !ValidAgentID(a) {
					t.Fatalf("accepted watch of agent %q", a)
				}
			}
		}
	})
}
