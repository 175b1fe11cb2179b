package relay

import (
	"context"
	"fmt"

	"github.com/silentmon/silentmon/filter"
)

// The CTI hook and agent events: a CTI integration binds an agent to its
// devices and extensions when the agent logs in, and unbinds it at logout
// (MsgAgentsBind, answered by MsgAgentsBindReply); a desktop integration
// watches agents (MsgAgentWatch) and is told when a session marked "agent
// informed" starts or stops monitoring one of them (MsgAgentEvents).

// Message types of the CTI hook and agent events.
const (
	MsgAgentsBind      MsgType = 0x0f
	MsgAgentsBindReply MsgType = 0x11
	MsgAgentWatch      MsgType = 0x12
	MsgAgentEvents     MsgType = 0x13
)

// Features of the CTI hook and agent events, listed in a capture server's
// hello when its Handler implements BindHandler or WatchHandler.
const (
	FeatureBind   = "agents-bind"
	FeatureEvents = "agent-events"
)

// Bind actions.
const (
	BindActionBind   = "bind"
	BindActionUnbind = "unbind"
)

// Limits of a bind request and of a watch.
const (
	// MaxBindDevices bounds the devices of one bind request.
	MaxBindDevices = 16
	// MaxWatchAgents bounds the agents one connection watches.
	MaxWatchAgents = 256
	// MaxEventsQueue bounds the events queued for one connection: a
	// client that does not read them is disconnected (it re-watches on
	// reconnection and gets the current state).
	MaxEventsQueue = 256
)

// AgentsBind binds an agent to devices (a phone's IP address or MAC
// address, optionally restricted to a VLAN as vlanN/ADDR) and extensions,
// or unbinds them. A bind adds to what the agent has; an unbind removes
// the devices and extensions it names, or all of the agent's bindings
// when it names none (logout). The server refuses a request breaking
// these rules with CodeBadRequest before its handler sees it
// (ValidateAgentsBind).
type AgentsBind struct {
	RequestID  uint64   `json:"request_id"`
	Action     string   `json:"action"`
	Agent      string   `json:"agent"`
	Devices    []string `json:"devices,omitempty"`
	Extensions []string `json:"extensions,omitempty"`
}

// AgentsBindReply answers an AgentsBind with the agent's bindings after
// it (Devices and Extensions never null on the wire).
type AgentsBindReply struct {
	RequestID  uint64   `json:"request_id"`
	Agent      string   `json:"agent"`
	Devices    []string `json:"devices"`
	Extensions []string `json:"extensions"`
}

// ValidateAgentsBind reports the first problem with b as an *Error of
// CodeBadRequest naming the bad value, or nil.
func ValidateAgentsBind(b *AgentsBind) error {
	bad := func(format string, a ...any) error {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf(format, a...)}
	}
	if b.Action != BindActionBind && b.Action != BindActionUnbind {
		return bad("action %q is neither %q nor %q", b.Action, BindActionBind, BindActionUnbind)
	}
	if err := CheckAgentID(b.Agent); err != nil {
		return bad("%v", err)
	}
	if len(b.Devices) > MaxBindDevices {
		return bad("%d devices exceed the limit of %d", len(b.Devices), MaxBindDevices)
	}
	for _, d := range b.Devices {
		if _, err := ParseDevice(d); err != nil {
			return bad("%v", err)
		}
	}
	if len(b.Extensions) > filter.MaxExtensions {
		return bad("%d extensions exceed the limit of %d", len(b.Extensions), filter.MaxExtensions)
	}
	for _, x := range b.Extensions {
		if !filter.ValidExtension(x) {
			return bad("extension %q is not 1 to %d of A-Z a-z 0-9 + * # . _ -", x, filter.MaxExtensionLen)
		}
	}
	if b.Action == BindActionBind && len(b.Devices) == 0 && len(b.Extensions) == 0 {
		return bad("a bind of agent %q names no device and no extension", b.Agent)
	}
	return nil
}

// ParseDevice parses a device an agent is bound to, written as an IP
// address or a MAC address, optionally after vlanN/ or vlanS.N/ (the
// forms of filter.ParseEndpoint without ports). An error names the bad
// value.
func ParseDevice(s string) (filter.Endpoint, error) {
	ep, err := filter.ParseEndpoint(s)
	if err != nil {
		return filter.Endpoint{}, fmt.Errorf("device %q: %w", s, err)
	}
	if ep.PortLo != 0 || ep.PortHi != 0 {
		return filter.Endpoint{}, fmt.Errorf("device %q has a port range: a device is an IP or MAC address", s)
	}
	if !ep.IP.IsValid() && !ep.HasMAC {
		return filter.Endpoint{}, fmt.Errorf("device %q names no address", s)
	}
	return ep, nil
}

// ValidAgentID reports whether id can be an agent's id: 1 to
// filter.MaxAgentLen of A-Z a-z 0-9 . _ - @ +.
func ValidAgentID(id string) bool {
	if id == "" || len(id) > filter.MaxAgentLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '_' || c == '-' || c == '@' || c == '+') {
			return false
		}
	}
	return true
}

// CheckAgentID returns nil when id can be an agent's id (ValidAgentID),
// else an error naming it (cut to 80 bytes).
func CheckAgentID(id string) error {
	if ValidAgentID(id) {
		return nil
	}
	if len(id) > 80 {
		id = id[:80] + "..."
	}
	return fmt.Errorf("agent %q is not 1 to %d of A-Z a-z 0-9 . _ - @ +", id, filter.MaxAgentLen)
}

// AgentWatch asks for the events of Agents (1 to MaxWatchAgents agent
// ids); it replaces the connection's previous watch, and an empty list
// ends it. The reply is an AgentEvents with the same RequestID carrying
// the current state of each watched agent; later events come in
// AgentEvents with RequestID 0 until the connection ends.
type AgentWatch struct {
	RequestID uint64   `json:"request_id"`
	Agents    []string `json:"agents"`
}

// ValidateAgentWatch reports the first problem with w as an *Error of
// CodeBadRequest naming the bad value, or nil.
func ValidateAgentWatch(w *AgentWatch) error {
	if len(w.Agents) > MaxWatchAgents {
		return &Error{Code: CodeBadRequest, Message: fmt.Sprintf("%d agents exceed the watch limit of %d", len(w.Agents), MaxWatchAgents)}
	}
	for _, a := range w.Agents {
		if err := CheckAgentID(a); err != nil {
			return &Error{Code: CodeBadRequest, Message: err.Error()}
		}
	}
	return nil
}

// Agent event states.
const (
	// AgentMonitored: a session marked "agent informed" monitors the
	// agent.
	AgentMonitored = "monitored"
	// AgentNotMonitored: no session marked "agent informed" monitors the
	// agent (any more).
	AgentNotMonitored = "not-monitored"
)

// AgentEvents carries agent events: the reply to an AgentWatch (with its
// RequestID, one event per watched agent) or events pushed later
// (RequestID 0).
type AgentEvents struct {
	RequestID uint64       `json:"request_id"`
	Events    []AgentEvent `json:"events"`
}

// AgentEvent says whether a session marked "agent informed" monitors an
// agent. Sessions not so marked are never disclosed: a silent session
// leaves the agent "not-monitored". Sessions lists the informed
// sessions' ids.
type AgentEvent struct {
	Agent    string   `json:"agent"`
	State    string   `json:"state"`
	Sessions []string `json:"sessions,omitempty"`
}

// BindHandler is implemented by a Handler that serves the CTI hook
// (MsgAgentsBind); a Server whose Handler implements it lists FeatureBind
// in its hello, and one whose Handler does not answers with
// CodeBadRequest. The Server validates the request first
// (ValidateAgentsBind). The handler decides who may bind (p.TLS carries
// the client's certificate) and refuses others with CodeUnauthorized.
type BindHandler interface {
	AgentsBind(ctx context.Context, p *Peer, req *AgentsBind) (*AgentsBindReply, error)
}

// WatchHandler is implemented by a Handler that sends agent events
// (MsgAgentWatch); a Server whose Handler implements it lists
// FeatureEvents in its hello. The Server validates the watch first
// (ValidateAgentWatch). AgentWatch returns the current events of
// req.Agents; after it returns, the handler calls push with later events
// of those agents until the watch is replaced or the connection closes
// (Closed); push never blocks (it queues at most MaxEventsQueue events,
// and a connection that falls further behind is closed) and returns
// net.ErrClosed once the connection is gone. A later AgentWatch on the
// same connection replaces the earlier one with a new push.
type WatchHandler interface {
	AgentWatch(ctx context.Context, p *Peer, req *AgentWatch, push func(AgentEvent) error) (*AgentEvents, error)
}
