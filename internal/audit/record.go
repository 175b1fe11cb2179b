package audit

import (
	"fmt"
	"time"
)

// Actions of a Record. Start and stop are client requests and carry a
// Result; the others are events on the member that writes the line and
// carry no Result.
const (
	// ActionStart: a client asked to start monitoring (Result says
	// whether it was accepted).
	ActionStart = "start"
	// ActionStop: a client asked to stop a session.
	ActionStop = "stop"
	// ActionEnd: a session ended; Reason is one of the Reason constants
	// below.
	ActionEnd = "end"
	// ActionCaptureBegin: this member began streaming a session's
	// packets to its supervisor.
	ActionCaptureBegin = "capture-begin"
	// ActionCaptureEnd: this member stopped streaming a session's
	// packets; Packets and Dropped count the streaming period.
	ActionCaptureEnd = "capture-end"
	// ActionSupervisorConnected: this member's connection to a
	// supervisor service (Supervisor, SupervisorSubject,
	// SupervisorFingerprint) is up.
	ActionSupervisorConnected = "supervisor-connected"
	// ActionSupervisorDisconnected: that connection is down; Reason may
	// say why.
	ActionSupervisorDisconnected = "supervisor-disconnected"
	// ActionRecordBegin: this member began recording a session to File.
	ActionRecordBegin = "record-begin"
	// ActionRecordFailed: this member cannot record a session (File, if
	// known); Reason says why.
	ActionRecordFailed = "record-failed"
	// ActionRouteRefused: a connection to the cluster port (42029) was
	// refused for its certificate (another CA, not a peer's); Source is
	// its address, ClientSubject its certificate, Reason why.
	ActionRouteRefused = "route-refused"
	// ActionAuthRefused: a connection to the 42228 port failed client
	// authentication (no certificate, another CA, expired, wrong role);
	// Source, ClientSubject when a certificate was shown, and Reason.
	ActionAuthRefused = "auth-refused"
	// ActionAgentBound: a CTI integration asked to bind an agent to
	// devices (Endpoints) and Extensions; Result says whether it was.
	ActionAgentBound = "agent-bound"
	// ActionAgentUnbound: a CTI integration asked to unbind devices and
	// Extensions of an agent (none named: all of them), or another
	// agent's bind took them (Reason says which); Result says whether
	// they were.
	ActionAgentUnbound = "agent-unbound"
)

// Results of a start or stop Record.
const (
	ResultAccepted = "accepted"
	ResultRefused  = "refused"
)

// Reasons of an ActionEnd Record.
const (
	ReasonStopped        = "stopped"         // by an accepted stop request
	ReasonLifetimeOver   = "lifetime over"   // its lifetime (Until) passed
	ReasonSupervisorGone = "supervisor gone" // its supervisor was unreachable longer than the grace
	ReasonServerShutdown = "server shutdown" // this member shut down (the session may live on elsewhere)
)

// Record is one line of the audit trail. It is a plain value: copies
// share only the Endpoints slice, which Write and the readers never
// modify.
//
// The fields from Time to ClientFingerprint are always present in the
// JSON, in this order (Endpoints is [] when empty, Result is "" on the
// events that are not requests), so a start or stop line is the same as
// before the event actions existed. The fields after them are omitted
// when empty.
type Record struct {
	// Time of the request or event; zero means the time Write is called.
	Time time.Time `json:"time"`
	// Action is one of the Action constants.
	Action string `json:"action"`
	// Result is ResultAccepted or ResultRefused on start and stop, ""
	// on every other action.
	Result string `json:"result"`
	// Reason says why a request was refused, why a session ended (one of
	// the Reason constants), why a supervisor connection was lost or a
	// recording failed; "" otherwise.
	Reason string `json:"reason"`
	// SessionID of the monitor session ("" if none was created).
	SessionID string `json:"session_id"`
	// Agent monitored.
	Agent string `json:"agent"`
	// Endpoints of the agent (phone or gateway addresses).
	Endpoints []string `json:"endpoints"`
	// Supervisor is the host:port the streams go to.
	Supervisor string `json:"supervisor"`
	// Source is the client's address (host:port).
	Source string `json:"source"`
	// ClientSubject and ClientFingerprint identify the client
	// certificate (subject in RFC 2253 form, SHA-256 fingerprint); empty
	// on an --insecure listener.
	ClientSubject     string `json:"client_subject"`
	ClientFingerprint string `json:"client_fingerprint"`

	// Member is the name of the capture server that wrote the line
	// (Options.Member fills it when empty).
	Member string `json:"member,omitempty"`
	// RequestID is the client's request id of a start or stop, so that
	// retries of one request can be told apart from new requests.
	RequestID string `json:"request_id,omitempty"`
	// Until is the end of an accepted start's lifetime (zero: none).
	Until time.Time `json:"until,omitzero"`
	// SupervisorSubject and SupervisorFingerprint identify the
	// supervisor service's certificate, as the capture server saw it
	// when it dialled.
	SupervisorSubject     string `json:"supervisor_subject,omitempty"`
	SupervisorFingerprint string `json:"supervisor_fingerprint,omitempty"`
	// Packets streamed to the supervisor, and Dropped (captured for the
	// session but not delivered), during one streaming period; on
	// capture-end, absent when zero.
	Packets uint64 `json:"packets,omitempty"`
	Dropped uint64 `json:"dropped,omitempty"`
	// File is the recording's path (record-begin, record-failed).
	File string `json:"file,omitempty"`
	// Extensions are the agent's extensions a bind or unbind named.
	Extensions []string `json:"extensions,omitempty"`
}

// Validate reports whether r is a record this package writes, with an
// error wrapping ErrBadRecord when not:
//   - Action is one of the Action constants;
//   - start, stop, agent-bound and agent-unbound have Result
//     ResultAccepted or ResultRefused (and agent-bound and agent-unbound
//     an Agent); every other action has Result "";
//   - end has SessionID and a Reason among the Reason constants;
//   - capture-begin, capture-end, record-begin and record-failed have
//     SessionID;
//   - supervisor-connected and supervisor-disconnected have Supervisor;
//   - record-failed, route-refused and auth-refused have a Reason.
//
// Other fields are free: a refused start may have no session, a stop no
// agent.
func (r *Record) Validate() error {
	switch r.Action {
	case ActionStart, ActionStop, ActionAgentBound, ActionAgentUnbound:
		if r.Result != ResultAccepted && r.Result != ResultRefused {
			return fmt.Errorf("audit record %s has result %q, neither accepted nor refused: %w", r.Action, r.Result, ErrBadRecord)
		}
		if (r.Action == ActionAgentBound || r.Action == ActionAgentUnbound) && r.Agent == "" {
			return fmt.Errorf("audit record %s names no agent: %w", r.Action, ErrBadRecord)
		}
		return nil
	case ActionEnd, ActionCaptureBegin, ActionCaptureEnd, ActionSupervisorConnected,
		ActionSupervisorDisconnected, ActionRecordBegin, ActionRecordFailed:
	case ActionRouteRefused, ActionAuthRefused:
		if r.Result != "" || r.Reason == "" {
			return fmt.Errorf("audit record %s needs a reason and no result: %w", r.Action, ErrBadRecord)
		}
		return nil
	default:
		return fmt.Errorf("audit record action %q is unknown: %w", r.Action, ErrBadRecord)
	}
	if r.Result != "" {
		return fmt.Errorf("audit record %s has result %q, but only start and stop have one: %w", r.Action, r.Result, ErrBadRecord)
	}
	switch r.Action {
	case ActionSupervisorConnected, ActionSupervisorDisconnected:
		if r.Supervisor == "" {
			return fmt.Errorf("audit record %s names no supervisor: %w", r.Action, ErrBadRecord)
		}
		return nil
	}
	if r.SessionID == "" {
		return fmt.Errorf("audit record %s names no session: %w", r.Action, ErrBadRecord)
	}
	switch r.Action {
	case ActionEnd:
		switch r.Reason {
		case ReasonStopped, ReasonLifetimeOver, ReasonSupervisorGone, ReasonServerShutdown:
		default:
			return fmt.Errorf("audit record end has reason %q, not one of %q, %q, %q, %q: %w", r.Reason,
				ReasonStopped, ReasonLifetimeOver, ReasonSupervisorGone, ReasonServerShutdown, ErrBadRecord)
		}
	case ActionRecordFailed:
		if r.Reason == "" {
			return fmt.Errorf("audit record record-failed has no reason: %w", ErrBadRecord)
		}
	}
	return nil
}
