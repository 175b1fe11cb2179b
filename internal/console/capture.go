package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/silentmon/silentmon/relay"
)

// Capture is what the console asks the capture servers. RelayCapture
// implements it; its methods are safe for concurrent use.
type Capture interface {
	// Agents returns the agents the capture servers know, sorted by id.
	Agents(ctx context.Context) ([]relay.AgentStatus, error)
	// Start starts a session and returns its status.
	Start(ctx context.Context, req relay.StartMonitor) (*relay.SessionStatus, error)
	// Stop stops a session.
	Stop(ctx context.Context, session string) (*relay.SessionStatus, error)
	// Audit returns one page of the audit trail.
	Audit(ctx context.Context, req relay.AuditQuery) (*relay.AuditReply, error)
	Close() error
}

// RelayConfig configures a RelayCapture.
type RelayConfig struct {
	// Servers are the capture servers (HOST:PORT); the client connects to
	// one and fails over to the others.
	Servers []string
	// Dial holds the TLS configuration (the security directory's client
	// certificate; nil: plaintext) and the dial timeout.
	Dial relay.DialConfig
	// Name is the client's name in the servers' logs (default
	// "smsupervisor-console").
	Name string
	// Timeout bounds a connection attempt and a request (default 10 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// maxAgentPages bounds the pages of agents the console follows.
const maxAgentPages = 20

// RelayCapture asks capture servers over the relay protocol through one
// relay.Client, dialed at the first request and again after the
// connection is lost for good. It is safe for concurrent use.
type RelayCapture struct {
	cfg RelayConfig

	mu     sync.Mutex
	cl     *relay.Client
	closed bool
}

// NewRelayCapture returns a RelayCapture; it dials nothing yet.
func NewRelayCapture(cfg RelayConfig) *RelayCapture {
	if cfg.Name == "" {
		cfg.Name = "smsupervisor-console"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial.Timeout <= 0 {
		cfg.Dial.Timeout = cfg.Timeout
	}
	return &RelayCapture{cfg: cfg}
}

func (c *RelayCapture) client(ctx context.Context) (*relay.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, relay.ErrClosed
	}
	if c.cl != nil {
		return c.cl, nil
	}
	if len(c.cfg.Servers) == 0 {
		return nil, errNoCapture
	}
	cl, err := relay.Dial(ctx, relay.ClientConfig{Servers: c.cfg.Servers, Dial: c.cfg.Dial, Name: c.cfg.Name,
		Logger: c.cfg.Logger, RequestTimeout: c.cfg.Timeout})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", relay.ErrNoServer, strings.Join(c.cfg.Servers, ", "), err)
	}
	c.cl = cl
	return cl, nil
}

// drop forgets cl after a failure that was not the server's answer, so
// that the next request dials again.
func (c *RelayCapture) drop(cl *relay.Client, err error) {
	if err == nil || errors.Is(err, relay.ErrRemote) || errors.Is(err, relay.ErrNotSupported) {
		return
	}
	c.mu.Lock()
	if c.cl == cl {
		c.cl = nil
	}
	c.mu.Unlock()
	cl.Close()
}

func call[R any](ctx context.Context, c *RelayCapture, f func(*relay.Client) (R, error)) (R, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	cl, err := c.client(ctx)
	if err != nil {
		var zero R
		return zero, err
	}
	r, err := f(cl)
	c.drop(cl, err)
	return r, err
}

// Agents returns every agent, following the pages (at most 20).
func (c *RelayCapture) Agents(ctx context.Context) ([]relay.AgentStatus, error) {
	return call(ctx, c, func(cl *relay.Client) ([]relay.AgentStatus, error) {
		var out []relay.AgentStatus
		q := relay.AgentsQuery{}
		for range maxAgentPages {
			rep, err := cl.AgentsQuery(ctx, q)
			if err != nil {
				return nil, err
			}
			out = append(out, rep.Agents...)
			if !rep.More || len(rep.Agents) == 0 {
				break
			}
			q.After = rep.Agents[len(rep.Agents)-1].ID
		}
		return out, nil
	})
}

// Start starts a session.
func (c *RelayCapture) Start(ctx context.Context, req relay.StartMonitor) (*relay.SessionStatus, error) {
	return call(ctx, c, func(cl *relay.Client) (*relay.SessionStatus, error) {
		st, err := cl.StartMonitor(ctx, req)
		if err == nil && st.Server == "" {
			st.Server = cl.Server()
		}
		return st, err
	})
}

// Stop stops a session.
func (c *RelayCapture) Stop(ctx context.Context, session string) (*relay.SessionStatus, error) {
	return call(ctx, c, func(cl *relay.Client) (*relay.SessionStatus, error) { return cl.StopMonitor(ctx, session) })
}

// Audit returns one page of the audit trail.
func (c *RelayCapture) Audit(ctx context.Context, req relay.AuditQuery) (*relay.AuditReply, error) {
	return call(ctx, c, func(cl *relay.Client) (*relay.AuditReply, error) { return cl.AuditQuery(ctx, req) })
}

// Close closes the connection; later calls return relay.ErrClosed.
func (c *RelayCapture) Close() error {
	c.mu.Lock()
	cl := c.cl
	c.cl, c.closed = nil, true
	c.mu.Unlock()
	if cl != nil {
		return cl.Close()
	}
	return nil
}

// remoteError returns the *relay.Error a capture server answered, if any.
func remoteError(err error) *relay.Error {
	var e *relay.Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
