package captureserver

import (
	"net"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/cli"
)

// Config is the capture server's validated configuration: what
// cmd/smserver makes of its flags, environment and configuration file.
// Run takes it as given; it is not modified.
type Config struct {
	Interfaces      []string
	Pcap            string
	PcapSpeed       float64
	PcapWaitSession bool
	ExitAfterReplay bool
	cli.Service
	ClusterListen   string
	Peers           []string
	HeartbeatIntv   time.Duration
	HeartbeatRetry  int
	MediaTOS        int
	QueueLen        int
	AuditFile       string
	RecordDir       string
	Admins          []string // SHA-256 fingerprints of administrator certificates
	TrackAllStreams bool
	Cluster         bool
	Live            capture.LiveConfig
	// SupervisorGrace is how long a session's supervisor service may be
	// unreachable before the session's owner ends it
	// (session.supervisor_grace_ms, --supervisor-grace).
	SupervisorGrace time.Duration
	// MaxSessions bounds the monitor sessions of the cluster as this
	// member sees them (limits.max_sessions): a start beyond it is
	// refused (relay.CodeLimit). 0 means DefaultMaxSessions, 2000.
	MaxSessions int
	// MaxEndpoints bounds the endpoints of one session
	// (limits.max_endpoints): a start naming more is refused
	// (relay.CodeLimit). 0 means DefaultMaxEndpoints, 64.
	MaxEndpoints int
	// SIP follows SIP on the capture (sip.enabled, default on) on
	// SIPPorts (sip.ports, default 5060), UDP and TCP, to find the media
	// of monitored agents' calls from their SDP.
	SIP      bool
	SIPPorts []uint16
	// DirectoryFile is the agent directory (directory.file, YAML or CSV):
	// agents' phones and extensions, reloaded when the file changes and
	// on SIGHUP. Empty: no directory.
	DirectoryFile string
	// Rules are the authorization rules (authorization.rules; see Rule):
	// who may monitor which agents. With none, every client may monitor
	// every agent (a warning is logged at start); with any, a start is
	// accepted only when a rule matching the client allows every agent
	// the session monitors. Administrators may monitor everyone. A
	// reload (SIGHUP) replaces them.
	Rules []Rule
	// ConfigFile is the configuration file the configuration was read
	// from, named in the messages of a reload; empty: none.
	ConfigFile string
	// Reload, if not nil, reads and validates the configuration anew
	// (the file, the environment and the flags, as at start) when the
	// process receives SIGHUP: the keys in ReloadableKeys are applied, a
	// change to any other is logged as needing a restart, and an error
	// keeps the whole configuration in use. Nil: SIGHUP reloads the
	// certificates, the agent directory and the audit file only.
	Reload func() (*Config, error)
	// Clock is the session keeper's clock (tests inject one); nil means
	// time.Now.
	Clock func() time.Time
	// ReadyFrames is how recently frames must have been read for
	// /readyz's capture check to pass without looking at the interfaces'
	// carrier (DefaultReadyFrames, 10 s, when 0).
	ReadyFrames time.Duration
	// listening, if not nil, is called with the relay and metrics
	// addresses as soon as both listen (tests hit them at once).
	listening func(relay, metrics net.Addr)
}
