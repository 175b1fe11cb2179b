package console

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/relay"
)

// captureHandler is a capture server for tests: a fixed agent list,
// starts and stops recorded, audit refused unless admin is set.
type captureHandler struct {
	mu     sync.Mutex
	agents []relay.AgentStatus
	starts []relay.StartMonitor
	stops  []string
	admin  bool
}

func (h *captureHandler) StartMonitor(_ context.Context, _ *relay.Peer, req *relay.StartMonitor) (*relay.SessionStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.Session != "" { // a re-assertion after a failover
		return &relay.SessionStatus{RequestID: req.RequestID, Session: req.Session, State: relay.SessionStarted}, nil
	}
	if req.Agent == "9999" {
		return nil, &relay.Error{Code: relay.CodeBadRequest, Message: "agent 9999 is not known to the directory or SIP tracking"}
	}
	h.starts = append(h.starts, *req)
	return &relay.SessionStatus{RequestID: req.RequestID, Session: "sess-" + req.Agent, State: relay.SessionStarted,
		Agent: req.Agent, Server: "cap-a"}, nil
}

func (h *captureHandler) StopMonitor(_ context.Context, _ *relay.Peer, req *relay.StopMonitor) (*relay.SessionStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !strings.HasPrefix(req.Session, "sess-") {
		return nil, &relay.Error{Code: relay.CodeUnknown, Message: "no session " + req.Session}
	}
	h.stops = append(h.stops, req.Session)
	return &relay.SessionStatus{RequestID: req.RequestID, Session: req.Session, State: relay.SessionStopped}, nil
}

func (h *captureHandler) Status(context.Context, *relay.Peer) (any, error) {
	return map[string]string{}, nil
}
func (h *captureHandler) Media(*relay.Peer, *relay.MediaFrame) error { return nil }
func (h *captureHandler) Closed(*relay.Peer, error)                  {}

func (h *captureHandler) AgentsQuery(_ context.Context, _ *relay.Peer, req *relay.AgentsQuery) (*relay.AgentsReply, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rep := &relay.AgentsReply{Agents: []relay.AgentStatus{}}
	for _, a := range h.agents {
		if a.ID <= req.After {
			continue
		}
		if len(rep.Agents) == req.Limit {
			rep.More = true
			break
		}
		rep.Agents = append(rep.Agents, a)
	}
	return rep, nil
}

func (h *captureHandler) AuditQuery(_ context.Context, _ *relay.Peer, req *relay.AuditQuery) (*relay.AuditReply, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.admin {
		return nil, &relay.Error{Code: relay.CodeUnauthorized, Message: "only an administrator may read the audit trail"}
	}
	return &relay.AuditReply{Records: []json.RawMessage{json.RawMessage(`{"action":"monitor-start","agent":"1001","limit":` + itoa(req.Limit) + `}`)},
		Complete: true}, nil
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// startCapture serves h on a free loopback port in plaintext.
func startCapture(t *testing.T, h relay.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := relay.NewServer(relay.ServerConfig{Handler: h, Name: "cap-a", Logger: slog.New(slog.DiscardHandler)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

func decode(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
}

// TestCaptureServer drives the console's agents, monitor, stop and audit
// against a capture server speaking the relay protocol: the start goes
// by agent alone with wait and this supervisor's address, the session
// then shows as listening, the stop reaches the server, refusals come
// back as the page's sentences.
func TestCaptureServer(t *testing.T) {
	h := &captureHandler{}
	for _, id := range []string{"1001", "1002", "1003"} {
		h.agents = append(h.agents, relay.AgentStatus{ID: id, Name: "Agent " + id, Team: "Sales", State: relay.AgentTalking})
	}
	addr := startCapture(t, h)
	capture := NewRelayCapture(RelayConfig{Servers: []string{addr}, Logger: slog.New(slog.DiscardHandler)})
	_, base := startTest(t, Config{Capture: capture, Supervisor: "sup.example:42328"})
	bearer := "Authorization: Bearer " + testToken
	post := func(path, body string) (*http.Response, string) {
		return do(t, nil, "POST", base+path, strings.NewReader(body), bearer, "Content-Type: application/json")
	}

	res, body := do(t, nil, "GET", base+"/api/agents", nil, bearer)
	var agents agentsJSON
	decode(t, body, &agents)
	if res.StatusCode != 200 || agents.Error != "" || len(agents.Agents) != 3 || agents.Agents[0].ID != "1001" || agents.Agents[2].Team != "Sales" {
		t.Fatalf("agents: %d %s", res.StatusCode, body)
	}

	res, body = post("/api/monitor", `{"agent":"1001","record":true}`)
	var started struct{ Session string }
	decode(t, body, &started)
	if res.StatusCode != 200 || started.Session != "sess-1001" {
		t.Fatalf("monitor: %d %s", res.StatusCode, body)
	}
	h.mu.Lock()
	got := h.starts[0]
	h.mu.Unlock()
	if got.Agent != "1001" || got.Wait || got.Supervisor != "sup.example:42328" || !got.Record || len(got.Endpoints) != 0 {
		t.Fatalf("start sent %+v", got)
	}
	// No media yet: the session is listed, waiting, with its server.
	_, body = do(t, nil, "GET", base+"/api/sessions", nil, bearer)
	var list struct{ Sessions []Session }
	decode(t, body, &list)
	if len(list.Sessions) != 1 || list.Sessions[0].ID != "sess-1001" || list.Sessions[0].State != "listening" ||
		list.Sessions[0].CaptureServer != "cap-a" || !list.Sessions[0].Record {
		t.Fatalf("sessions after start: %s", body)
	}

	res, body = post("/api/monitor", `{"agent":"9999"}`)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(body, "agent unknown") {
		t.Fatalf("unknown agent: %d %s", res.StatusCode, body)
	}

	res, body = post("/api/stop", `{"session":"sess-1001"}`)
	if res.StatusCode != 200 || strings.TrimSpace(body) != `{"stopped":true}` {
		t.Fatalf("stop: %d %s", res.StatusCode, body)
	}
	h.mu.Lock()
	stops := append([]string(nil), h.stops...)
	h.mu.Unlock()
	if len(stops) != 1 || stops[0] != "sess-1001" {
		t.Fatalf("stops %v", stops)
	}
	_, body = do(t, nil, "GET", base+"/api/sessions", nil, bearer)
	if strings.Contains(body, "sess-1001") {
		t.Fatalf("a stopped session without media is still listed: %s", body)
	}
	if res, body := post("/api/stop", `{"session":"other"}`); res.StatusCode != http.StatusNotFound {
		t.Fatalf("stop of an unknown session: %d %s", res.StatusCode, body)
	}

	res, body = do(t, nil, "GET", base+"/api/audit?limit=5", nil, bearer)
	if res.StatusCode != http.StatusForbidden || !strings.Contains(body, `"not authorised to read the audit trail"`) {
		t.Fatalf("audit without admin: %d %s", res.StatusCode, body)
	}
	h.mu.Lock()
	h.admin = true
	h.mu.Unlock()
	res, body = do(t, nil, "GET", base+"/api/audit?limit=5&agent=1001", nil, bearer)
	if res.StatusCode != 200 || !strings.Contains(body, `"limit":5`) {
		t.Fatalf("audit: %d %s", res.StatusCode, body)
	}
}

// TestNoCaptureServer checks the states the page shows when no capture
// server is configured or none answers.
func TestNoCaptureServer(t *testing.T) {
	_, base := startTest(t, Config{})
	bearer := "Authorization: Bearer " + testToken
	_, body := do(t, nil, "GET", base+"/api/agents", nil, bearer)
	var a agentsJSON
	decode(t, body, &a)
	if a.Error != "no capture server configured" || a.Agents == nil || len(a.Agents) != 0 {
		t.Fatalf("no capture server: %s", body)
	}
	capture := NewRelayCapture(RelayConfig{Servers: []string{freeLoopback(t)}, Logger: slog.New(slog.DiscardHandler)})
	_, base = startTest(t, Config{Capture: capture, Supervisor: "127.0.0.1:1"})
	_, body = do(t, nil, "GET", base+"/api/agents", nil, bearer)
	decode(t, body, &a)
	if !strings.HasPrefix(a.Error, "no capture server reachable: ") {
		t.Fatalf("unreachable: %s", body)
	}
	res, body := do(t, nil, "POST", base+"/api/monitor", strings.NewReader(`{"agent":"1001"}`), bearer)
	if res.StatusCode != http.StatusBadGateway || !strings.Contains(body, "no capture server reachable") {
		t.Fatalf("monitor, unreachable: %d %s", res.StatusCode, body)
	}
}

// TestEvents checks the event stream: agents, sessions and levels at
// once, levels again at the next 100 ms tick, a session's level per
// direction, and the limit on open streams.
func TestEvents(t *testing.T) {
	h := &captureHandler{agents: []relay.AgentStatus{{ID: "1001", Name: "Ann", Team: "Sales", State: relay.AgentTalking}}}
	addr := startCapture(t, h)
	st := &fakeSessions{}
	st.set(service.SupervisorSession{ID: "s1", Agent: "1001", State: "open", Streams: []service.PlayoutStream{
		{Direction: "from-agent", Packets: 50}, {Direction: "to-agent", Packets: 50}}})
	l := &fakeListener{levels: map[string]Levels{"s1": {Agent: -20.5, Customer: -90}}}
	clock := newFakeClock()
	capture := NewRelayCapture(RelayConfig{Servers: []string{addr}, Logger: slog.New(slog.DiscardHandler)})
	_, base := startTest(t, Config{Capture: capture, Supervisor: "127.0.0.1:1", Sessions: st, Listener: l, Clock: clock, MaxEventStreams: 1})

	req, _ := http.NewRequest("GET", base+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	evs := readEvents(t, res.Body)

	first := collect(t, evs, "agents", "sessions", "levels")
	var a agentsJSON
	decode(t, first["agents"].data, &a)
	if len(a.Agents) != 1 || a.Agents[0].ID != "1001" || a.Agents[0].State != "talking" {
		t.Fatalf("agents event %+v", a)
	}
	var s struct{ Sessions []Session }
	decode(t, first["sessions"].data, &s)
	if len(s.Sessions) != 1 || s.Sessions[0].ID != "s1" || s.Sessions[0].Listeners != 1 ||
		s.Sessions[0].Streams[0].LevelDBFS != -20.5 || s.Sessions[0].Streams[1].LevelDBFS != -90 {
		t.Fatalf("sessions event %+v", s)
	}
	var lv map[string]map[string]float64
	decode(t, first["levels"].data, &lv)
	if lv["s1"]["agent"] != -20.5 || lv["s1"]["customer"] != -90 {
		t.Fatalf("levels event %v", lv)
	}

	// A second stream is over the limit of one.
	if res, body := do(t, nil, "GET", base+"/api/events", nil, "Authorization: Bearer "+testToken); res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("second stream: %d %s", res.StatusCode, body)
	}

	l.mu.Lock()
	l.levels["s1"] = Levels{Agent: -6, Customer: -40}
	l.mu.Unlock()
	clock.waitTicker(t, levelsPeriod)
	clock.tick(levelsPeriod)
	decode(t, next(t, evs, "levels").data, &lv)
	if lv["s1"]["agent"] != -6 || lv["s1"]["customer"] != -40 {
		t.Fatalf("levels after a tick %v", lv)
	}

	// The agent starts ringing: the next poll sends agents again.
	h.mu.Lock()
	h.agents[0].State = relay.AgentRinging
	h.mu.Unlock()
	clock.waitTicker(t, agentsPeriod)
	clock.tick(agentsPeriod)
	decode(t, next(t, evs, "agents").data, &a)
	if a.Agents[0].State != "ringing" {
		t.Fatalf("agents after a change %+v", a)
	}
	cancel()
	io.Copy(io.Discard, res.Body)
}
