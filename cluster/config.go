package cluster

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Defaults of Config.
const (
	DefaultListen        = ":42029"
	DefaultSessionTTL    = 15 * time.Second
	DefaultRefresh       = 5 * time.Second
	DefaultTombstoneTTL  = 7 * 24 * time.Hour
	DefaultMaxTombstones = 100_000
	DefaultClusterName   = "silentmon"
	DefaultPingInterval  = 2 * time.Second
)

// Config configures a Node. The zero value of every field but TLS (or
// Insecure) selects the documented default.
type Config struct {
	// Name is this member's name, unique in the cluster. Default: the host
	// name and the listen port, "HOST:42029".
	Name string
	// ClusterName names the cluster; members with another name refuse
	// each other's routes. Default "silentmon".
	ClusterName string
	// Listen is the route listen address. Default ":42029". Port 0 picks a
	// free port (tests); Node.RouteAddr reports it.
	Listen string
	// Advertise, if set, is the host:port other members should dial to
	// reach this one, when that is not the address they see (NAT).
	Advertise string
	// Peers are seed routes, host:port. One reachable seed is enough.
	// A peer that is this member itself is ignored.
	Peers []string

	// TLS is the server-side TLS configuration of this capture server: its
	// certificate (CtiosServer.pem) and the site CA in ClientCAs or RootCAs.
	// It secures incoming routes, which must present a client certificate
	// signed by the CA.
	TLS *tls.Config
	// ClientTLS is the client-side configuration (CtiosClient.pem, CA in
	// RootCAs). Its certificate is presented on the routes this member
	// dials. Nil: the certificate of TLS is presented instead.
	ClientTLS *tls.Config
	// OnRouteRefused, if set, is called when a route is refused for its
	// certificate (another CA, no peer role, wrong usage), with the
	// remote address (empty for a route this member dialed), the
	// certificate's subject and the reason; the capture server audits
	// it. It must not block.
	OnRouteRefused func(remote, subject string, err error)
	// Insecure runs routes in plaintext. Only when the operator asked for
	// it (--insecure); Start logs a warning.
	Insecure bool

	// SessionTTL is how long a session's owner may stay silent before
	// another member adopts the session (the live member with the
	// smallest name; any other live member after twice SessionTTL). A
	// session never ends for want of refreshes. It is also how long a
	// silent member is still shown "up". Default 15 s.
	SessionTTL time.Duration
	// Refresh is the owner's refresh interval. Default 5 s; must be below
	// SessionTTL.
	Refresh time.Duration
	// TombstoneTTL is how long an ended session's ID is remembered: while
	// it is, no announce or refresh of that ID is accepted, whatever its
	// version, so a stop made during a partition wins when it heals.
	// Default 7 days.
	TombstoneTTL time.Duration
	// MaxTombstones bounds the tombstones kept; above it the oldest are
	// forgotten first (counted in Stats.TombstonesForgotten). Default
	// 100,000; negative: unbounded.
	MaxTombstones int
	// PingInterval is the route keep-alive interval; a route misses two
	// pings before it is declared dead. Default 2 s.
	PingInterval time.Duration

	// Logger receives the node's and the embedded NATS server's log lines.
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("%w: cluster listen address %q is not host:port", ErrConfig, c.Listen)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%w: cluster listen address %q has a bad port", ErrConfig, c.Listen)
	}
	if c.Name == "" {
		hn, _ := os.Hostname()
		if hn == "" {
			hn = "silentmon"
		}
		c.Name = net.JoinHostPort(hn, port)
	}
	if strings.ContainsAny(c.Name, " \t\r\n") {
		return fmt.Errorf("%w: member name %q contains white space", ErrConfig, c.Name)
	}
	if c.ClusterName == "" {
		c.ClusterName = DefaultClusterName
	}
	if strings.ContainsAny(c.ClusterName, " \t\r\n.*>") {
		return fmt.Errorf("%w: cluster name %q contains white space or one of . * >", ErrConfig, c.ClusterName)
	}
	for _, p := range c.Peers {
		if err := checkPeer(p); err != nil {
			return err
		}
	}
	if c.Advertise != "" {
		if err := checkPeer(c.Advertise); err != nil {
			return fmt.Errorf("%w: advertise address %q is not host:port", ErrConfig, c.Advertise)
		}
	}
	if c.TLS == nil && !c.Insecure {
		return fmt.Errorf("%w: routes need a TLS configuration, or --insecure for plaintext", ErrConfig)
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.Refresh == 0 {
		c.Refresh = DefaultRefresh
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = DefaultTombstoneTTL
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.MaxTombstones == 0 {
		c.MaxTombstones = DefaultMaxTombstones
	}
	if c.SessionTTL < 0 || c.Refresh < 0 || c.TombstoneTTL < 0 || c.PingInterval < 0 {
		return fmt.Errorf("%w: negative duration (session TTL %v, refresh %v)", ErrConfig, c.SessionTTL, c.Refresh)
	}
	if c.Refresh >= c.SessionTTL {
		return fmt.Errorf("%w: refresh interval %v must be shorter than the session TTL %v", ErrConfig, c.Refresh, c.SessionTTL)
	}
	if c.TombstoneTTL < c.SessionTTL {
		c.TombstoneTTL = c.SessionTTL
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// checkPeer checks a seed address "host:port".
func checkPeer(p string) error {
	host, port, err := net.SplitHostPort(p)
	if err != nil || host == "" {
		return fmt.Errorf("%w: peer %q is not host:port", ErrConfig, p)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return fmt.Errorf("%w: peer %q has a bad port", ErrConfig, p)
	}
	return nil
}
