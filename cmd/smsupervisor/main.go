// Command smsupervisor is silentmon's supervisor-side service: it accepts
// the media that capture servers push over mutual TLS and plays each
// monitored session through its own jitter buffers, decoder and mixer, on
// the sound card (the most recently started session) or into one WAV file
// per session. It only turns flags and configuration into a
// supervisor.Config; internal/supervisor is the engine.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/console"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/supervisor"
	"github.com/silentmon/silentmon/internal/version"
	"github.com/silentmon/silentmon/internal/webrtcout"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

func main() { cli.Main(newRootCmd()) }

func newRootCmd() *cobra.Command { return newRootCmdWith(run) }

type config struct {
	cli.Service
	Supervisor supervisor.Config
	Console    consoleConfig
	// file is the configuration file; reload reads and validates the
	// configuration anew on SIGHUP (reload.go). Either may be empty.
	file   string
	reload func() (*config, error)
}

// consoleConfig is the web console's part of the configuration.
type consoleConfig struct {
	// Listen is the console's address; empty: off.
	Listen string
	// Default is set when Listen is the default address: a failure to
	// listen there is a warning, not a reason to stop.
	Default bool
	// Servers are the capture servers the console asks.
	Servers []string
	// TokenFile receives the token at each start.
	TokenFile string
	// SupervisorAddr is this supervisor's address as capture servers
	// reach it; empty: derived from the --listen address.
	SupervisorAddr string
}

// newRootCmdWith builds the command with run as its action (tests
// capture the configuration instead of running the service).
func newRootCmdWith(run func(context.Context, *config, io.Writer, io.Writer) error) *cobra.Command {
	c, _ := newCommand(run)
	return c
}

// newCommand is newRootCmdWith that also returns the configuration, whose
// Keys are the keys smsupervisor knows.
func newCommand(run func(context.Context, *config, io.Writer, io.Writer) error) (*cobra.Command, *cli.Config) {
	c := &cobra.Command{
		Use:     "smsupervisor",
		Version: version.Get().String(playout.Features()...),
		Short:   "silentmon supervisor service: receives monitored calls and plays them, one player per session",
		Args:    cobra.NoArgs,
	}
	f := c.Flags()
	cfg := cli.NewConfig()
	cli.AddServiceFlags(f, cfg, "address where capture servers push media", "127.0.0.1:9229")
	f.String("output", "portaudio", "portaudio[:DEVICE] (plays the most recently started session, at its own rate on a card opened at 48 kHz), wav:PATH (one file per session at its rate; PATH may hold {session} and {agent}) or null")
	f.Bool("narrowband", false, "play every session at 8 kHz, as before wideband output (default: 16 kHz for G.722, 48 kHz for Opus, else 8 kHz)")
	f.Int("min-delay-ms", 40, "jitter buffer: smallest target delay")
	f.Int("max-delay-ms", 200, "jitter buffer: largest target delay")
	f.StringArray("codec", nil, "map a dynamic payload type to a codec, as 96=G729; repeatable")
	f.Int("max-sessions", supervisor.DefaultMaxSessions, "sessions played at once; media of further sessions is dropped and counted")
	f.Int("idle-timeout-ms", int(supervisor.DefaultIdleTimeout.Milliseconds()), "close a session (finalise its file) after this long without media")
	f.String("console-listen", console.DefaultAddr, "address of the web console (token or client certificate; HTTPS off loopback), or off")
	f.StringArray("console-server", nil, "capture server HOST:PORT the console asks for agents, starts and stops (repeatable)")
	f.String("console-token-file", "", "file that receives the console's access token at each start (default: console.token in the security directory, or in the working directory with --insecure)")
	f.String("console-supervisor-address", "", "this supervisor's HOST:PORT as capture servers reach it, for the sessions the console starts (default: the --listen address)")
	for key, flag := range map[string]string{
		"console.listen": "console-listen", "console.servers": "console-server", "console.token_file": "console-token-file",
		"console.supervisor_address": "console-supervisor-address",
		"output":                     "output", "playout.min_delay_ms": "min-delay-ms", "playout.max_delay_ms": "max-delay-ms",
		"playout.payload_types": "codec", "supervisor.max_sessions": "max-sessions",
		"supervisor.idle_timeout_ms": "idle-timeout-ms", "supervisor.narrowband": "narrowband",
	} {
		cfg.Bind(key, f, flag)
	}
	cfg.V.SetDefault("playout.initial_delay_ms", 40) // kept within min and max: a clean network starts at the minimum
	c.RunE = cli.LoadAndRun(cfg, withReload(cfg), run)
	return c, cfg
}

func validate(cfg *cli.Config) (*config, error) {
	c := &config{Supervisor: supervisor.Config{Output: cfg.String("output")}}
	p := &c.Supervisor.Playout
	var err error
	if c.Service, err = cli.ReadService(cfg); err != nil {
		return nil, err
	}
	if p.MinDelay, err = cfg.Millis("playout.min_delay_ms", 10, 2000); err != nil {
		return nil, err
	}
	if p.MaxDelay, err = cfg.Millis("playout.max_delay_ms", 10, 2000); err != nil {
		return nil, err
	}
	if p.InitialDelay, err = cfg.Millis("playout.initial_delay_ms", 10, 2000); err != nil {
		return nil, err
	}
	if p.MaxDelay < p.MinDelay {
		return nil, cli.Usagef("configuration key playout.max_delay_ms has value %d, below playout.min_delay_ms (%d)",
			p.MaxDelay.Milliseconds(), p.MinDelay.Milliseconds())
	}
	if p.PayloadTypes, err = playout.ParsePayloadTypes(cfg.Strings("playout.payload_types")); err != nil {
		return nil, cli.Usagef("configuration key playout.payload_types: %v", err)
	}
	if c.Supervisor.MaxSessions, err = cfg.IntRange("supervisor.max_sessions", 1, 10000); err != nil {
		return nil, err
	}
	if c.Supervisor.IdleTimeout, err = cfg.Millis("supervisor.idle_timeout_ms", 100, math.MaxInt32); err != nil {
		return nil, err
	}
	if c.Supervisor.Narrowband, err = cfg.Bool("supervisor.narrowband"); err != nil {
		return nil, err
	}
	if c.Console, err = validateConsole(cfg, c.Service); err != nil {
		return nil, err
	}
	return c, nil
}

func validateConsole(cfg *cli.Config, svc cli.Service) (consoleConfig, error) {
	var cc consoleConfig
	if l := cfg.String("console.listen"); l != "off" {
		var err error
		if cc.Listen, err = cfg.Addr("console.listen"); err != nil {
			return cc, err
		}
		cc.Default = cc.Listen == console.DefaultAddr
		if svc.Insecure && console.NeedsTLS(cc.Listen) {
			return cc, cli.Usagef("configuration key console.listen has value %q, which is not a loopback address: the console is HTTPS there, and --insecure gives it no certificate", cc.Listen)
		}
	}
	for _, srv := range cfg.Strings("console.servers") {
		if _, _, err := net.SplitHostPort(srv); err != nil {
			return cc, cli.Usagef("configuration key console.servers has value %q, which is not HOST:PORT", srv)
		}
		cc.Servers = append(cc.Servers, srv)
	}
	if a := cfg.String("console.supervisor_address"); a != "" {
		var err error
		if cc.SupervisorAddr, err = cfg.Addr("console.supervisor_address"); err != nil {
			return cc, err
		}
	}
	cc.TokenFile = cfg.String("console.token_file")
	if cc.TokenFile == "" {
		cc.TokenFile = consoleTokenName
		if !svc.Insecure {
			cc.TokenFile = filepath.Join(svc.SecurityDir, consoleTokenName)
		}
	}
	return cc, nil
}

// webrtcListener is the webrtcout.Server as the console's Listener: its
// levels in the console's type; Listeners and PipelineDelay as they are.
type webrtcListener struct{ *webrtcout.Server }

func (l webrtcListener) Levels() map[string]console.Levels {
	in := l.Server.Levels()
	out := make(map[string]console.Levels, len(in))
	for id, v := range in {
		out[id] = console.Levels{Agent: v.Agent, Customer: v.Customer}
	}
	return out
}

// consoleTokenName is the default name of the console's token file.
const consoleTokenName = "console.token"

// supervisorAddr is the address capture servers are told to send the
// console's sessions to: cc.SupervisorAddr, else the host of --listen
// (the host name when it listens on every address) with the port bound.
func supervisorAddr(cc consoleConfig, listen string, bound net.Addr) string {
	if cc.SupervisorAddr != "" {
		return cc.SupervisorAddr
	}
	host, _, _ := net.SplitHostPort(listen)
	_, port, _ := net.SplitHostPort(bound.String())
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host, _ = os.Hostname()
	}
	return net.JoinHostPort(host, port)
}

// startConsole starts the web console (nil when it is off, or when the
// default address is taken: a warning then) and prints its address with
// the token on stderr.
func startConsole(cfg *config, sup *supervisor.Supervisor, lis console.Listener, bound net.Addr, store *smtls.Store, log *slog.Logger, stderr io.Writer) (*console.Server, error) {
	cc := cfg.Console
	if cc.Listen == "" {
		log.Info("the web console is off (console.listen off)")
		return nil, nil
	}
	var tcfg *tls.Config
	if console.NeedsTLS(cc.Listen) {
		var err error
		if store != nil {
			tcfg, err = console.ServerTLSFrom(store)
		} else {
			tcfg, err = console.ServerTLS(cfg.SecurityDir, cfg.StrictKeys, log)
		}
		if err != nil {
			return nil, cli.Usagef("configuration key console.listen has value %q: HTTPS needs the supervisor's certificate: %v", cc.Listen, err)
		}
	}
	token, err := console.NewToken()
	if err != nil {
		return nil, cli.Failf("%v", err)
	}
	ccfg := console.Config{Addr: cc.Listen, TLS: tcfg, Token: token, Name: cfg.Name, Sessions: sup,
		Supervisor: supervisorAddr(cc, cfg.Listen, bound), Logger: log, Listener: lis}
	var capture *console.RelayCapture
	if len(cc.Servers) > 0 {
		dtls, err := service.DialTLSFrom(store, cfg.Insecure)
		if err != nil {
			return nil, cli.Usagef("configuration key console.servers: the console's client certificate: %v", err)
		}
		capture = console.NewRelayCapture(console.RelayConfig{Servers: cc.Servers, Dial: relay.DialConfig{TLS: dtls},
			Name: cfg.Name + " console", Logger: log})
		ccfg.Capture = capture
	}
	con, err := console.New(ccfg)
	if err != nil {
		if capture != nil {
			capture.Close()
		}
		if cc.Default && errors.Is(err, syscall.EADDRINUSE) {
			log.Warn("the web console is off: its default address is taken (set console.listen to another address, or off)", "addr", cc.Listen)
			return nil, nil
		}
		return nil, cli.Usagef("configuration key console.listen has value %q: %v", cc.Listen, err)
	}
	if err := console.WriteTokenFile(cc.TokenFile, token); err != nil {
		con.Close() // closes capture
		return nil, cli.Usagef("configuration key console.token_file has value %q: %v", cc.TokenFile, err)
	}
	con.Start()
	log.Info("web console started", "addr", con.Addr().String(), "https", tcfg != nil, "token_file", cc.TokenFile,
		"capture_servers", len(cc.Servers), "supervisor_address", ccfg.Supervisor)
	fmt.Fprintf(stderr, "console: %s\n", con.URL())
	return con, nil
}

func run(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	level := new(slog.LevelVar) // a reload sets log.level
	log, _ := cli.NewLevelLogger(stderr, cfg.LogFormat, cfg.LogLevel, level)
	sc := cfg.Supervisor
	sc.Logger = log
	sup, err := supervisor.New(sc)
	if err != nil {
		for _, line := range playout.SoundLibraryMessages(err) {
			log.Debug("sound library", "line", line)
		}
		if errors.Is(err, playout.ErrNoSoundDevice) {
			return cli.Usagef("%v: play into files with --output wav:PATH, or --output null", err)
		}
		// A bad spec, a missing directory, a device that does not open:
		// all are the configuration's to fix.
		return cli.Usagef("configuration key output has value %q: %v", sc.Output, err)
	}
	dbg, err := service.StartDebug(cfg.DebugListen, log)
	if err != nil {
		sup.Close()
		return cli.Usage(err)
	}
	defer dbg.Close()
	// The listener, the console's HTTPS and its links take their
	// certificates from one store, which SIGHUP reloads.
	var store *smtls.Store
	if !cfg.Insecure {
		if store, err = smtls.NewStore(cfg.SecurityDir, smtls.Options{Strict: cfg.StrictKeys, Logger: log}); err != nil {
			sup.Close()
			return cli.Usage(err)
		}
	}
	ln, err := service.Listen(service.ListenConfig{Addr: cfg.Listen, SecurityDir: cfg.SecurityDir, Store: store,
		Insecure: cfg.Insecure, Strict: cfg.StrictKeys, Logger: log,
		// Media from capture servers; status from clients and administrators.
		Roles: []smtls.Role{smtls.RoleSupervisor}, PeerRoles: []smtls.Role{smtls.RoleCapture, smtls.RoleClient, smtls.RoleAdmin},
		Lockout: smtls.LockoutConfig{Threshold: cfg.LockThreshold, Duration: cfg.LockDuration, MaxSources: cfg.LockMaxSources, Logger: log},
		Listen: smtls.ListenOptions{HandshakeTimeout: cfg.HandshakeTimeout, MaxHandshakes: cfg.MaxHandshakes,
			MaxHandshakesPerSource: cfg.MaxHandshakesPerSource},
	})
	if err != nil {
		sup.Close()
		return cli.Usage(err)
	}
	reg := prometheus.NewRegistry()
	if err := sup.Register(reg); err != nil {
		ln.Close()
		sup.Close()
		return cli.Failf("metrics: %v", err)
	}
	if ln.TLS != nil {
		reg.MustRegister(smtls.NewCollector(ln.Lockout, ln.TLS), smtls.NewStoreCollector(store))
	}
	// Listens now, serves once /healthz and /readyz have their checks.
	ms, err := service.ListenMetrics(cfg.MetricsListen, reg, log, nil)
	if err != nil {
		ln.Close()
		sup.Close()
		return cli.Usage(err)
	}
	defer ms.Close()

	srv := relay.NewServer(relay.ServerConfig{Handler: sup, Logger: log, Name: cfg.Name,
		Role: relay.RoleSupervisor, HeartbeatTimeout: cfg.HeartbeatTmo})
	done := make(chan struct{})
	var serveErr error
	go func() {
		defer close(done)
		serveErr = srv.Serve(ln)
	}()
	sup.AddChecks(ms, supervisor.HealthOptions{Listener: ln.Addr().String(), Stopped: done,
		SecurityDir: cfg.SecurityDir, Insecure: cfg.Insecure, Client: len(cfg.Console.Servers) > 0, Store: store})
	ms.Serve()
	var lis console.Listener
	var web *webrtcout.Server
	if cfg.Console.Listen != "" {
		if web, err = webrtcout.New(webrtcout.Config{Source: sup, Logger: log}); err != nil {
			log.Warn("listening in the browser is not available", "err", err)
		} else {
			lis = webrtcListener{web}
		}
	}
	con, err := startConsole(cfg, sup, lis, ln.Addr(), store, log, stderr)
	if err != nil {
		if web != nil {
			web.Close()
		}
		srv.Close()
		<-done
		ln.Close()
		sup.Close()
		return err
	}
	rl := &reloader{log: log, level: level, store: store, cur: cfg}
	stopReload := cli.OnSIGHUP(func() { rl.reload() })
	defer stopReload()
	log.Info("smsupervisor started", "listen", ln.Addr().String(), "output", sc.Output, "tls", !cfg.Insecure,
		"max_sessions", sc.MaxSessions, "idle_timeout", sc.IdleTimeout)
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case <-done:
		// The listener failed for good: nothing can reach the service.
		log.Error("the listener for capture servers failed; stopping", "listen", ln.Addr().String(), "err", serveErr)
	}
	if con != nil {
		con.Close()
	}
	if web != nil {
		web.Close()
	}
	srv.Close()
	<-done
	ln.Close()
	err = sup.Close()
	t := sup.Totals()
	fmt.Fprintf(stdout, "smsupervisor: received %d packets (%d duplicates dropped), wrote %.2f s of audio to %s\n",
		t.Packets, t.Duplicates, t.Seconds, sc.Output)
	for _, o := range sup.Outputs() {
		fmt.Fprintf(stdout, "smsupervisor: session %s (agent %s): %.2f s to %s\n", o.Session, o.Agent, o.Seconds, o.Output)
	}
	if err != nil {
		return cli.Failf("closing output %s: %v", sc.Output, err)
	}
	if serveErr != nil {
		return cli.Failf("listening on %s for capture servers: %v", ln.Addr(), serveErr)
	}
	return nil
}
