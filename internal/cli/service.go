package cli

import (
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"
)

// Service holds the configuration smserver and smsupervisor share. A
// program's config struct embeds it.
type Service struct {
	Listen        string
	SecurityDir   string
	Insecure      bool
	StrictKeys    bool
	Name          string
	MetricsListen string
	DebugListen   string // profiles (/debug/pprof/); empty: off
	LogLevel      string
	LogFormat     string
	HeartbeatTmo  time.Duration
	LockThreshold int
	LockDuration  time.Duration
	// LockMaxSources bounds the lockout's table of sources
	// (lockout.max_sources, 65536).
	LockMaxSources int
	// HandshakeTimeout, MaxHandshakes and MaxHandshakesPerSource bound
	// the unauthenticated connections of the 42228 listener
	// (tls.handshake_timeout_ms 5000, limits.handshakes 256,
	// limits.handshakes_per_source 8).
	HandshakeTimeout       time.Duration
	MaxHandshakes          int
	MaxHandshakesPerSource int
}

// AddServiceFlags defines the flags both services have, binds them to
// their keys and sets the defaults of the keys that have no flag.
// metrics is the default metrics address (127.0.0.1:9228 or :9229).
func AddServiceFlags(f *pflag.FlagSet, cfg *Config, listenHelp, metrics string) {
	f.String("config", "", "YAML configuration file")
	f.String("listen", ":42228", listenHelp)
	f.String("security-dir", "/etc/silentmon/security", "directory with CtiosRootCert.pem, CtiosServer.pem, CtiosClient.pem")
	f.Bool("insecure", false, "plaintext without certificates (anyone reaching the port can monitor calls)")
	f.String("name", "", "this service's name in status and logs (default: host name and port)")
	f.String("metrics-listen", metrics, "address of /metrics and /healthz")
	f.String("debug-listen", "", "address of the Go profiles (/debug/pprof/), off when empty; an address that is not loopback is logged as a warning")
	f.String("log-level", "info", "debug, info, warn or error")
	f.String("log-format", "text", "text or json")
	for key, flag := range map[string]string{
		"config": "config", "listen": "listen", "security_dir": "security-dir", "insecure": "insecure",
		"name": "name", "metrics.listen": "metrics-listen", "debug.listen": "debug-listen", "log.level": "log-level", "log.format": "log-format",
	} {
		cfg.Bind(key, f, flag)
	}
	v := cfg.V
	v.SetDefault("listen_port", 0)
	v.SetDefault("heartbeat.timeout_ms", 15000)
	v.SetDefault("lockout.threshold", 3)
	v.SetDefault("lockout.duration", "15m")
	v.SetDefault("tls.strict", false)
	v.SetDefault("lockout.max_sources", 65536)
	v.SetDefault("tls.handshake_timeout_ms", 5000)
	v.SetDefault("limits.handshakes", 256)
	v.SetDefault("limits.handshakes_per_source", 8)
}

// ReadService validates the shared keys.
func ReadService(cfg *Config) (Service, error) {
	s := Service{SecurityDir: cfg.String("security_dir"), Name: cfg.String("name"),
		LogLevel: cfg.String("log.level"), LogFormat: cfg.String("log.format")}
	var err error
	if s.Listen, err = cfg.Addr("listen"); err != nil {
		return s, err
	}
	port, err := cfg.IntRange("listen_port", 0, 65535)
	if err != nil {
		return s, err
	}
	if port != 0 {
		s.Listen = replacePort(s.Listen, port)
	}
	if s.MetricsListen, err = cfg.Addr("metrics.listen"); err != nil {
		return s, err
	}
	if s.DebugListen = cfg.String("debug.listen"); s.DebugListen != "" {
		if s.DebugListen, err = cfg.Addr("debug.listen"); err != nil {
			return s, err
		}
	}
	if s.Insecure, err = cfg.Bool("insecure"); err != nil {
		return s, err
	}
	if s.StrictKeys, err = cfg.Bool("tls.strict"); err != nil {
		return s, err
	}
	if s.HeartbeatTmo, err = cfg.Millis("heartbeat.timeout_ms", 500, 3600_000); err != nil {
		return s, err
	}
	if s.LockThreshold, err = cfg.IntRange("lockout.threshold", 1, 1000); err != nil {
		return s, err
	}
	if s.LockDuration, err = cfg.Duration("lockout.duration"); err != nil {
		return s, err
	}
	if s.LockMaxSources, err = cfg.IntRange("lockout.max_sources", 16, 16<<20); err != nil {
		return s, err
	}
	if s.HandshakeTimeout, err = cfg.Millis("tls.handshake_timeout_ms", 100, 120_000); err != nil {
		return s, err
	}
	if s.MaxHandshakes, err = cfg.IntRange("limits.handshakes", 1, 1<<20); err != nil {
		return s, err
	}
	if s.MaxHandshakesPerSource, err = cfg.IntRange("limits.handshakes_per_source", 1, 1<<20); err != nil {
		return s, err
	}
	if _, err := NewLogger(io.Discard, s.LogFormat, s.LogLevel); err != nil {
		return s, err
	}
	if s.Name == "" {
		// The host name with the port: two services on one host (a lab
		// cluster) must not share a name.
		h, _ := os.Hostname()
		s.Name = replacePort(h+":0", portOf(s.Listen))
	}
	return s, nil
}
