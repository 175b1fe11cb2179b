package console

import (
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/status"
	smtls "github.com/silentmon/silentmon/tls"
)

//go:embed web
var webFS embed.FS

// Defaults of Config.
const (
	DefaultAddr            = "127.0.0.1:9230"
	DefaultMaxEventStreams = 32
	// MaxBody bounds a request body (JSON requests, SDP offers).
	MaxBody = 64 << 10
)

// Sessions gives the supervisor's sessions; *supervisor.Supervisor
// implements it.
type Sessions interface {
	Snapshot() service.SupervisorStatus
}

// Digits gives the telephone events (RFC 4733 digits) of the
// supervisor's sessions; *supervisor.Supervisor implements it. When
// Config.Sessions implements it too, the event stream sends a "digit"
// event per digit (status.Digit: session, agent, direction, digit,
// time).
type Digits interface {
	// DigitsSince returns the digits numbered after seq, oldest first.
	DigitsSince(seq uint64) []status.Digit
}

// Config configures a Server. Zero fields take the defaults given.
type Config struct {
	// Addr is the listen address (default DefaultAddr).
	Addr string
	// TLS, when not nil, makes the console HTTPS (see ServerTLS). It is
	// required on an address that is not loopback.
	TLS *tls.Config
	// Token opens the console (NewToken); required.
	Token string
	// Name is the supervisor's name shown in the page's header.
	Name string
	// Sessions gives this supervisor's sessions; required.
	Sessions Sessions
	// Capture asks the capture servers; nil: the page says that no
	// capture server is configured. The Server owns it: Close closes it.
	Capture Capture
	// Listener answers the browsers' WebRTC offers; nil: listening in
	// the browser is not available.
	Listener Listener
	// Supervisor is this supervisor's address as capture servers reach
	// it (HOST:PORT), sent in the starts the console makes; required
	// when Capture is set.
	Supervisor string
	// MaxEventStreams bounds the open event streams (default 32); more
	// are refused with 503.
	MaxEventStreams int
	// Logger receives the console's logs (default: discarded).
	Logger *slog.Logger
	// Clock drives the event streams' tickers (default: the wall clock).
	Clock Clock
}

// Server is a running console. It is safe for concurrent use.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ln     net.Listener
	http   *http.Server
	static http.Handler
	agents *agentsPoller
	events *eventLimit

	// started remembers what the console knows of the sessions it
	// started (the capture server that took each, record).
	mu      sync.Mutex
	started map[string]startedSession

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type startedSession struct {
	agent, server string
	record        bool
}

// NeedsTLS reports whether the console must be HTTPS on addr: every
// address but a loopback IP or "localhost" (an empty host listens on
// every interface).
func NeedsTLS(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.IsLoopback()
}

// New checks cfg and opens the listener; Start serves it.
func New(cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.MaxEventStreams <= 0 {
		cfg.MaxEventStreams = DefaultMaxEventStreams
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if !ValidToken(cfg.Token) {
		return nil, fmt.Errorf("%w: the token is not %d hex digits", ErrConfig, 2*TokenBytes)
	}
	if cfg.Sessions == nil {
		return nil, fmt.Errorf("%w: no source of sessions", ErrConfig)
	}
	if cfg.Capture != nil {
		if _, _, err := net.SplitHostPort(cfg.Supervisor); err != nil {
			return nil, fmt.Errorf("%w: supervisor address %q is not HOST:PORT", ErrConfig, cfg.Supervisor)
		}
	}
	if cfg.TLS == nil && NeedsTLS(cfg.Addr) {
		return nil, fmt.Errorf("%w: %q is not a loopback address (give it a certificate for HTTPS)", ErrPlainOffLoopback, cfg.Addr)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("console listen address %q: %w", cfg.Addr, err)
	}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS)
	}
	sub, _ := fs.Sub(webFS, "web")
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger, ln: ln, static: http.FileServerFS(sub),
		events: &eventLimit{max: int64(cfg.MaxEventStreams)}, started: map[string]startedSession{},
		ctx: ctx, cancel: cancel}
	s.agents = newAgentsPoller(cfg.Capture, cfg.Clock)
	s.http = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
		ErrorLog:    slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return ctx }}
	return s, nil
}

// Start serves in the background until Close. It is called once.
func (s *Server) Start() {
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("the console stopped serving", "addr", s.ln.Addr().String(), "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.agents.run(s.ctx)
	}()
}

// Addr returns the address listened on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// URL returns the console's address with its token, as printed at start:
// http://HOST:PORT/?token=T, https on HTTPS.
func (s *Server) URL() string {
	scheme := "http"
	if s.cfg.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s/?token=%s", scheme, s.ln.Addr().String(), s.cfg.Token)
}

// Close stops the server: the event streams end, requests in progress
// get a few seconds, and Close waits for its goroutines.
func (s *Server) Close() error {
	s.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	if err != nil {
		err = s.http.Close()
	}
	s.ln.Close() // for a Server that was never started
	s.wg.Wait()
	if s.cfg.Capture != nil {
		s.cfg.Capture.Close()
	}
	return err
}

// ServerTLS returns the console's HTTPS configuration: it presents the
// supervisor's certificate (CtiosServer.pem in dir, role supervisor) and
// asks for a client certificate, which, when given, must be signed by the
// site CA and carry the client or admin role (the handshake fails
// otherwise); a browser without one authenticates with the token.
func ServerTLS(dir string, strict bool, log *slog.Logger) (*tls.Config, error) {
	st, err := smtls.NewStore(dir, smtls.Options{Strict: strict, Logger: log})
	if err != nil {
		return nil, err
	}
	return ServerTLSFrom(st)
}

// ServerTLSFrom is ServerTLS with the certificates of st: new handshakes
// use those of its last Reload.
func ServerTLSFrom(st *smtls.Store) (*tls.Config, error) {
	c, err := st.ServerConfig([]smtls.Role{smtls.RoleSupervisor}, []smtls.Role{smtls.RoleClient, smtls.RoleAdmin})
	if err != nil {
		return nil, err
	}
	c.ClientAuth = tls.VerifyClientCertIfGiven
	verify := c.VerifyConnection
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return nil
		}
		return verify(cs)
	}
	c.NextProtos = []string{"http/1.1"}
	return c, nil
}
