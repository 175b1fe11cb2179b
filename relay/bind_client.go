package relay

import (
	"context"
	"slices"
)

// AgentsBind sends a bind or unbind of the CTI hook and returns the
// agent's bindings after it. A server that does not take bindings (it did
// not list FeatureBind) is not asked: the error wraps ErrNotSupported.
func (cl *Client) AgentsBind(ctx context.Context, req AgentsBind) (*AgentsBindReply, error) {
	return featureRequest[AgentsBindReply](ctx, cl, MsgAgentsBind, FeatureBind, "agent bindings", func(id uint64) any {
		req.RequestID = id
		return req
	})
}

// WatchAgents watches agents (replacing the Client's previous watch; none
// ends it) and returns their current events. Later events are passed to
// ClientConfig.OnAgentEvents, on the Client's reader goroutine, so it
// must not block. After a failover the Client watches again on the new
// server and passes the reply to OnAgentEvents too, so the caller always
// ends with the current state.
func (cl *Client) WatchAgents(ctx context.Context, agents []string) (*AgentEvents, error) {
	agents = slices.Clone(agents)
	cl.mu.Lock()
	cl.watch = agents
	cl.mu.Unlock()
	return cl.sendWatch(ctx, agents)
}

func (cl *Client) sendWatch(ctx context.Context, agents []string) (*AgentEvents, error) {
	return featureRequest[AgentEvents](ctx, cl, MsgAgentWatch, FeatureEvents, "agent events", func(id uint64) any {
		return AgentWatch{RequestID: id, Agents: agents}
	})
}

// rewatch watches again after a failover.
func (cl *Client) rewatch() {
	cl.mu.Lock()
	agents := cl.watch
	cl.mu.Unlock()
	if len(agents) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), cl.cfg.RequestTimeout)
	defer cancel()
	rep, err := cl.sendWatch(ctx, agents)
	if err != nil {
		cl.log.Warn("watching agents again failed", "err", err)
		return
	}
	if cl.cfg.OnAgentEvents != nil {
		cl.cfg.OnAgentEvents(rep)
	}
}
