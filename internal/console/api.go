package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/relay"
)

// Session is one of this supervisor's sessions as GET /api/sessions and
// the sessions event give it.
type Session struct {
	ID            string   `json:"id"`
	Agent         string   `json:"agent"`
	State         string   `json:"state"` // "listening" or "stopped"
	Started       string   `json:"started,omitempty"`
	CaptureServer string   `json:"capture_server"`
	Record        bool     `json:"record"`
	Streams       []Stream `json:"streams"`
	// Listeners is the number of browsers playing the session (the
	// Listener's count when it gives one, else 1 while it plays it).
	Listeners int `json:"listeners"`
	// PipelineMs is the server-side part of the delay from capture to
	// playout: the Listener's delay from capture to the network when it
	// gives one and plays the session, else the relay's delivery plus
	// the jitter buffer's target.
	PipelineMs float64 `json:"pipeline_ms"`
}

// Stream is one direction of a session. LossNetwork is the share of the
// stream's packets lost on the way (percent); LossCapture the share lost
// at capture (percent; 0 when the supervisor does not know it).
type Stream struct {
	Direction   string  `json:"direction"` // "from-agent" or "to-agent"
	SSRC        string  `json:"ssrc"`
	Codec       string  `json:"codec"`
	Packets     uint64  `json:"packets"`
	LossNetwork float64 `json:"loss_network"`
	LossCapture float64 `json:"loss_capture"`
	JitterMs    float64 `json:"jitter_ms"`
	MOS         float64 `json:"mos"`
	LevelDBFS   float64 `json:"level_dbfs"`
}

// maxStopped bounds the stopped sessions listed.
const maxStopped = 10

// Handler returns the console's handler, authentication included.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/agents", s.getAgents)
	mux.HandleFunc("GET /api/sessions", s.getSessions)
	mux.HandleFunc("POST /api/monitor", s.postMonitor)
	mux.HandleFunc("POST /api/stop", s.postStop)
	mux.HandleFunc("GET /api/audit", s.getAudit)
	mux.HandleFunc("GET /api/events", s.getEvents)
	mux.HandleFunc("GET /api/config", s.getConfig)
	mux.HandleFunc("POST /api/webrtc/{session}", s.postWebRTC)
	mux.HandleFunc("GET /api/delay/{session}", s.getDelay)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s %s", r.Method, r.URL.Path))
	})
	mux.HandleFunc("GET /{$}", s.getPage)
	mux.Handle("GET /app.js", s.static)
	mux.Handle("GET /style.css", s.static)
	mux.Handle("GET /favicon.svg", s.static)
	return s.guard(mux)
}

func (s *Server) getPage(w http.ResponseWriter, r *http.Request) {
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the page is missing from this build")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(b)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// readJSON decodes r's body (at most MaxBody, one JSON object) into v, or
// answers the error and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q is not application/json", ct))
			return false
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body exceeds %d bytes", MaxBody))
			return false
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the request body is not the JSON object expected: %v", err))
		return false
	}
	return true
}

// agentsJSON is the answer of GET /api/agents and the agents event.
type agentsJSON struct {
	Agents []relay.AgentStatus `json:"agents"`
	Error  string              `json:"error"`
}

func (s *Server) getAgents(w http.ResponseWriter, r *http.Request) {
	b := s.agents.fetch(r.Context())
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// captureError turns the error of a capture-server request into a status
// code and a sentence for the page.
func captureError(what string, err error) (int, string) {
	if errors.Is(err, errNoCapture) {
		return http.StatusServiceUnavailable, "no capture server configured"
	}
	if e := remoteError(err); e != nil {
		switch e.Code {
		case relay.CodeUnauthorized:
			return http.StatusForbidden, "not authorised: " + e.Message
		case relay.CodeUnknown:
			return http.StatusNotFound, "agent unknown: " + e.Message
		case relay.CodeBadRequest:
			if strings.Contains(e.Message, "unknown") || strings.Contains(e.Message, "not known") ||
				strings.HasPrefix(e.Message, "nothing is known about") {
				return http.StatusNotFound, "agent unknown: " + e.Message
			}
			return http.StatusBadRequest, what + " refused: " + e.Message
		}
		return http.StatusConflict, what + " refused: " + e.Message
	}
	if errors.Is(err, relay.ErrNotSupported) {
		return http.StatusBadGateway, err.Error()
	}
	return http.StatusBadGateway, "no capture server reachable: " + err.Error()
}

func (s *Server) getSessions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"sessions": s.sessions()})
}

// sessions returns this supervisor's sessions: the open ones, those the
// console started that have no media yet, then the most recently stopped.
func (s *Server) sessions() []Session {
	st := s.cfg.Sessions.Snapshot()
	var levels map[string]Levels
	if s.cfg.Listener != nil {
		levels = s.cfg.Listener.Levels()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Session{}
	seen := map[string]bool{}
	stopped := 0
	for _, x := range st.Sessions {
		if seen[x.ID] {
			continue
		}
		mine, isMine := s.started[x.ID]
		open := x.State == "open" || (isMine && x.Closed == "idle")
		if !open {
			if isMine && x.Closed == "stopped" {
				delete(s.started, x.ID)
			}
			if stopped == maxStopped {
				continue
			}
			stopped++
		}
		seen[x.ID] = true
		out = append(out, s.toSession(x, open, mine, levels))
	}
	var waiting []Session
	for id, m := range s.started {
		if !seen[id] {
			waiting = append(waiting, Session{ID: id, Agent: m.agent, State: "listening", CaptureServer: m.server,
				Record: m.record, Streams: []Stream{}})
		}
	}
	sort.Slice(waiting, func(i, j int) bool { return waiting[i].ID < waiting[j].ID })
	// Open sessions first, as the snapshot orders them; then the ones
	// waiting for media; then the stopped ones.
	n := 0
	for n < len(out) && out[n].State == "listening" {
		n++
	}
	return append(out[:n], append(waiting, out[n:]...)...)
}

// listenerCounter and pipelineDelayer are what a Listener may also tell:
// the browsers listening to a session, and the delay from capture to the
// network at this end (webrtcout.Server tells both).
type listenerCounter interface{ Listeners(session string) int }
type pipelineDelayer interface {
	PipelineDelay(session string) time.Duration
}

func (s *Server) toSession(x service.SupervisorSession, open bool, mine startedSession, levels map[string]Levels) Session {
	v := Session{ID: x.ID, Agent: x.Agent, State: "stopped", Started: x.Started, Record: mine.record,
		CaptureServer: mine.server, Streams: []Stream{}}
	if len(x.Servers) > 0 {
		v.CaptureServer = x.Servers[0]
	}
	lv, playing := levels[x.ID]
	if open {
		v.State = "listening"
		v.PipelineMs = x.DeliveryMs + x.TargetMs
		if playing {
			v.Listeners = 1
		}
		if c, ok := s.cfg.Listener.(listenerCounter); ok {
			v.Listeners = c.Listeners(x.ID)
		}
		if d, ok := s.cfg.Listener.(pipelineDelayer); ok && playing {
			if ms := float64(d.PipelineDelay(x.ID)) / float64(time.Millisecond); ms > 0 {
				v.PipelineMs = ms
			}
		}
	}
	for _, p := range x.Streams {
		st := Stream{Direction: p.Direction, SSRC: p.SSRC, Codec: p.Codec, Packets: p.Packets,
			JitterMs: p.JitterMs, MOS: p.MOS, LevelDBFS: Silence}
		if p.Packets+p.Lost > 0 {
			st.LossNetwork = 100 * float64(p.Lost) / float64(p.Packets+p.Lost)
		}
		if playing && open {
			if p.Direction == "from-agent" {
				st.LevelDBFS = lv.Agent
			} else {
				st.LevelDBFS = lv.Customer
			}
		}
		v.Streams = append(v.Streams, st)
	}
	return v
}

// monitorRequest is the body of POST /api/monitor.
type monitorRequest struct {
	Agent  string `json:"agent"`
	Record bool   `json:"record"`
}

func (s *Server) postMonitor(w http.ResponseWriter, r *http.Request) {
	var req monitorRequest
	if !readJSON(w, r, &req) {
		return
	}
	if err := relay.CheckAgentID(req.Agent); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.cfg.Capture == nil {
		writeError(w, http.StatusServiceUnavailable, "no capture server configured")
		return
	}
	// No wait: Listen is for an agent the capture servers know (the
	// page lists them); one nothing is known about is "agent unknown".
	// A session that waits for an agent's first call is smctl's --wait.
	st, err := s.cfg.Capture.Start(r.Context(), relay.StartMonitor{Agent: req.Agent,
		Supervisor: s.cfg.Supervisor, Record: req.Record, Endpoints: []string{}})
	if err != nil {
		code, msg := captureError("monitor start", err)
		s.log.Info("console: monitor start failed", "agent", req.Agent, "err", err)
		writeError(w, code, msg)
		return
	}
	if !filter.ValidID(st.Session) {
		writeError(w, http.StatusBadGateway, fmt.Sprintf("the capture server answered with session id %q, which is not 1 to %d of A-Z a-z 0-9 . _ -", truncate(st.Session), filter.MaxIDLen))
		return
	}
	s.mu.Lock()
	s.started[st.Session] = startedSession{agent: req.Agent, server: st.Server, record: req.Record}
	s.mu.Unlock()
	s.log.Info("console: monitor started", "agent", req.Agent, "session", st.Session, "capture_server", st.Server)
	writeJSON(w, http.StatusOK, map[string]string{"session": st.Session})
}

// stopRequest is the body of POST /api/stop.
type stopRequest struct {
	Session string `json:"session"`
}

func (s *Server) postStop(w http.ResponseWriter, r *http.Request) {
	var req stopRequest
	if !readJSON(w, r, &req) {
		return
	}
	if !filter.ValidID(req.Session) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("session id %q is not 1 to %d of A-Z a-z 0-9 . _ -", truncate(req.Session), filter.MaxIDLen))
		return
	}
	if s.cfg.Capture == nil {
		writeError(w, http.StatusServiceUnavailable, "no capture server configured")
		return
	}
	if _, err := s.cfg.Capture.Stop(r.Context(), req.Session); err != nil {
		code, msg := captureError("monitor stop", err)
		if e := remoteError(err); e != nil && e.Code == relay.CodeUnknown {
			code, msg = http.StatusNotFound, "session unknown: "+e.Message
		}
		writeError(w, code, msg)
		return
	}
	s.mu.Lock()
	delete(s.started, req.Session)
	s.mu.Unlock()
	s.log.Info("console: monitor stopped", "session", req.Session)
	writeJSON(w, http.StatusOK, map[string]bool{"stopped": true})
}

// defaultAuditLimit is the records GET /api/audit returns without limit.
const defaultAuditLimit = 200

func (s *Server) getAudit(w http.ResponseWriter, r *http.Request) {
	q := relay.AuditQuery{Agent: r.URL.Query().Get("agent"), Limit: defaultAuditLimit}
	if q.Agent != "" {
		if err := relay.CheckAgentID(q.Agent); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > relay.MaxAuditLimit {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit %q is not 1 to %d", truncate(l), relay.MaxAuditLimit))
			return
		}
		q.Limit = n
	}
	if s.cfg.Capture == nil {
		writeError(w, http.StatusServiceUnavailable, "no capture server configured")
		return
	}
	rep, err := s.cfg.Capture.Audit(r.Context(), q)
	if err != nil {
		if e := remoteError(err); e != nil && e.Code == relay.CodeUnauthorized {
			writeError(w, http.StatusForbidden, "not authorised to read the audit trail")
			return
		}
		code, msg := captureError("audit query", err)
		writeError(w, code, msg)
		return
	}
	recs := rep.Records
	if recs == nil {
		recs = []json.RawMessage{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"records": recs, "complete": rep.Complete, "truncated": rep.Truncated})
}

// getConfig gives the page what it shows in its header and states.
func (s *Server) getConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"name": s.cfg.Name, "capture": s.cfg.Capture != nil,
		"listen": s.cfg.Listener != nil})
}

// webrtcTimeout bounds the answer to an offer.
const webrtcTimeout = 15 * time.Second

func (s *Server) postWebRTC(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session")
	if !filter.ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("session id %q is not 1 to %d of A-Z a-z 0-9 . _ -", truncate(id), filter.MaxIDLen))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/sdp" {
		writeError(w, http.StatusUnsupportedMediaType, fmt.Sprintf("content type %q is not application/sdp", r.Header.Get("Content-Type")))
		return
	}
	offer, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the offer exceeds %d bytes", MaxBody))
		return
	}
	if s.cfg.Listener == nil {
		writeError(w, http.StatusNotImplemented, "listening in the browser is not available")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), webrtcTimeout)
	defer cancel()
	answer, err := s.cfg.Listener.Answer(ctx, id, string(offer))
	if err != nil {
		s.log.Info("console: WebRTC offer refused", "session", id, "err", err)
		writeError(w, http.StatusBadRequest, fmt.Sprintf("listening to session %s failed: %v", id, err))
		return
	}
	w.Header().Set("Content-Type", "application/sdp")
	io.WriteString(w, answer)
}

func (s *Server) getDelay(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("session")
	if !filter.ValidID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("session id %q is not 1 to %d of A-Z a-z 0-9 . _ -", truncate(id), filter.MaxIDLen))
		return
	}
	for _, x := range s.sessions() {
		if x.ID == id {
			writeJSON(w, http.StatusOK, map[string]any{"session": id, "pipeline_ms": x.PipelineMs})
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("session %s is not one of this supervisor's", id))
}

// truncate shortens a value quoted in an error.
func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
