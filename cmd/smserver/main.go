// Command smserver is silentmon's capture server: it reads every frame of a
// SPAN interface (or replays a capture file), keeps the RTP of monitored
// agents and pushes it over mutual TLS to their supervisors' services.
package main

import (
	"context"
	"io"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/captureserver"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/service"
)

func main() { cli.Main(newRootCmd()) }

func newRootCmd() *cobra.Command { return newRootCmdWith(run) }

// run serves the profiles on --debug-listen, if set, while the capture
// server runs.
func run(ctx context.Context, cfg *captureserver.Config, stdout, stderr io.Writer) error {
	log, _ := cli.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	d, err := service.StartDebug(cfg.DebugListen, log)
	if err != nil {
		return cli.Usage(err)
	}
	defer d.Close()
	return captureserver.Run(ctx, cfg, stdout, stderr)
}

// newRootCmdWith builds the command with runFn as what runs after the
// configuration is validated (tests replace it).
func newRootCmdWith(runFn func(context.Context, *captureserver.Config, io.Writer, io.Writer) error) *cobra.Command {
	c, _ := newCommand(runFn)
	return c
}

// newCommand is newRootCmdWith that also returns the configuration, whose
// Keys are the keys smserver knows.
func newCommand(runFn func(context.Context, *captureserver.Config, io.Writer, io.Writer) error) (*cobra.Command, *cli.Config) {
	c := &cobra.Command{
		Use:   "smserver (--interface IF | --pcap FILE)",
		Short: "silentmon capture server: SPAN port in, monitored RTP out over mutual TLS",
		Args:  cobra.NoArgs,
	}
	f := c.Flags()
	cfg := cli.NewConfig()
	cli.AddServiceFlags(f, cfg, "address for clients (smctl, supervisor desktops, CTI)", "127.0.0.1:9228")
	f.StringArray("interface", nil, "capture interface (the SPAN port); repeatable")
	f.String("pcap", "", "replay this pcap or pcapng file instead of capturing")
	f.Float64("pcap-speed", 1, "replay speed for --pcap: 1 = recorded pace, 0 = as fast as possible")
	f.Bool("pcap-wait-session", false, "start the --pcap replay only once a monitor session exists")
	f.Bool("exit-after-replay", false, "exit when the --pcap replay is done and queued media is sent")
	f.String("cluster-listen", ":42029", "address for cluster peers")
	f.StringArray("peer", nil, "cluster peer HOST:PORT; repeatable")
	f.String("audit-file", "", "append one JSON line per monitor start and stop to this file")
	f.String("record-dir", "/var/lib/silentmon/recordings", "directory of the pcap files of sessions started with --record")
	f.StringArray("admin", nil, "SHA-256 fingerprint of an administrator's client certificate, who may stop any session (smctl certs show prints it); repeatable")
	f.Bool("cluster", true, "join or form a cluster of capture servers on --cluster-listen")
	f.Int("workers", 1, "capture workers per interface (PACKET_FANOUT by flow)")
	f.Int("supervisor-grace", 600000, "milliseconds a session's supervisor service may be unreachable before the session ends (supervisor gone)")
	f.StringArray("sip-port", []string{"5060"}, "UDP and TCP port of the SIP followed on the SPAN to find agents' calls; repeatable")
	f.Bool("sip", true, "follow SIP on the SPAN (REGISTER, INVITE, SDP) to find the media of monitored agents' calls")
	f.String("directory", "", "agent directory, YAML or CSV: agents' phones (IP or MAC) and extensions, reloaded when it changes and on SIGHUP")
	for key, flag := range map[string]string{
		"interface": "interface", "pcap": "pcap", "pcap_speed": "pcap-speed",
		"pcap_wait_session": "pcap-wait-session", "exit_after_replay": "exit-after-replay",
		"cluster.listen": "cluster-listen", "cluster.peers": "peer",
		"audit.file": "audit-file", "record.dir": "record-dir", "cluster.enabled": "cluster",
		"capture.workers": "workers", "security.admins": "admin",
		"session.supervisor_grace_ms": "supervisor-grace", "sip.ports": "sip-port",
		"sip.enabled": "sip", "directory.file": "directory",
	} {
		cfg.Bind(key, f, flag)
	}
	setDefaults(cfg)
	c.RunE = cli.LoadAndRun(cfg, withReload(cfg), runFn)
	return c, cfg
}

func setDefaults(cfg *cli.Config) {
	v := cfg.V
	v.SetDefault("heartbeat.interval_ms", 5000)
	v.SetDefault("heartbeat.retries", 5)
	v.SetDefault("media.tos", 0xB8)
	v.SetDefault("media.queue_len", 4096)
	v.SetDefault("capture.block_size", 1<<20)
	v.SetDefault("capture.num_blocks", 64)
	v.SetDefault("capture.block_timeout_ms", 10)
	v.SetDefault("capture.snaplen", 2048)
	v.SetDefault("capture.promiscuous", true)
	v.SetDefault("capture.bpf", true)
	v.SetDefault("capture.track_all_streams", false)
	v.SetDefault("session.supervisor_grace_ms", 600000)
	v.SetDefault("metrics.ready_frames_ms", 10000)
	v.SetDefault(captureserver.KeyMaxSessions, captureserver.DefaultMaxSessions)
	v.SetDefault(captureserver.KeyMaxEndpoints, captureserver.DefaultMaxEndpoints)
	// A list of rules (see docs/security.md); the environment variable
	// takes the list as YAML or JSON text.
	v.SetDefault(captureserver.KeyRules, []any{})
}

// withReload returns validate that also gives the configuration its file
// and the reload SIGHUP does: the file read anew, with the environment
// and the flags, through the same validation as at start.
func withReload(cfg *cli.Config) func(*cli.Config) (*captureserver.Config, error) {
	return func(cfg *cli.Config) (*captureserver.Config, error) {
		c, err := validate(cfg)
		if err != nil {
			return nil, err
		}
		c.ConfigFile = cfg.String("config")
		if c.ConfigFile == "" {
			return c, nil // nothing to read anew
		}
		c.Reload = func() (*captureserver.Config, error) {
			if err := cfg.Load(c.ConfigFile); err != nil {
				return nil, err
			}
			return validate(cfg)
		}
		return c, nil
	}
}

func validate(cfg *cli.Config) (*captureserver.Config, error) {
	c := &captureserver.Config{
		Interfaces: cfg.Strings("interface"),
		Pcap:       cfg.String("pcap"),
		Peers:      cfg.Strings("cluster.peers"),
		AuditFile:  cfg.String("audit.file"),
		RecordDir:  cfg.String("record.dir"),
		Admins:     cfg.Strings("security.admins"),
	}
	var err error
	if c.Service, err = cli.ReadService(cfg); err != nil {
		return nil, err
	}
	if c.PcapSpeed, err = cfg.Float("pcap_speed"); err != nil {
		return nil, err
	}
	if c.PcapSpeed < 0 {
		return nil, cli.Usagef("configuration key pcap_speed has value %v; use 0 (as fast as possible) or a positive factor", c.PcapSpeed)
	}
	for _, k := range []struct {
		key string
		dst *bool
	}{{"pcap_wait_session", &c.PcapWaitSession}, {"exit_after_replay", &c.ExitAfterReplay},
		{"cluster.enabled", &c.Cluster},
		{"capture.track_all_streams", &c.TrackAllStreams}} {
		if *k.dst, err = cfg.Bool(k.key); err != nil {
			return nil, err
		}
	}
	if len(c.Interfaces) == 0 && c.Pcap == "" {
		return nil, cli.Usagef("no capture source: give --interface IF (the SPAN port) or --pcap FILE (a capture to replay)")
	}
	if len(c.Interfaces) > 0 && c.Pcap != "" {
		return nil, cli.Usagef("give either --interface or --pcap, not both")
	}
	if c.Pcap != "" {
		fi, err := os.Stat(c.Pcap)
		if err != nil {
			return nil, cli.Usagef("capture file %q cannot be opened: %v", c.Pcap, unwrapPath(err))
		}
		if fi.IsDir() {
			return nil, cli.Usagef("capture file %q is a directory", c.Pcap)
		}
		f, err := os.Open(c.Pcap)
		if err != nil {
			return nil, cli.Usagef("capture file %q cannot be read: %v", c.Pcap, unwrapPath(err))
		}
		f.Close()
	}
	for _, ifname := range c.Interfaces {
		if _, err := net.InterfaceByName(ifname); err != nil {
			return nil, cli.Usagef("interface %q does not exist", ifname)
		}
	}
	if c.ClusterListen, err = cfg.Addr("cluster.listen"); err != nil {
		return nil, err
	}
	for _, a := range c.Admins {
		if _, ok := captureserver.NormalizeFingerprint(a); !ok {
			return nil, cli.Usagef("configuration key security.admins has value %q, which is not a SHA-256 fingerprint (64 hexadecimal digits, colons allowed)", a)
		}
	}
	for _, p := range c.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return nil, cli.Usagef("configuration key cluster.peers has value %q, which is not HOST:PORT", p)
		}
	}
	if c.ReadyFrames, err = cfg.Millis("metrics.ready_frames_ms", 1000, 3600_000); err != nil {
		return nil, err
	}
	if c.HeartbeatIntv, err = cfg.Millis("heartbeat.interval_ms", 100, 3600_000); err != nil {
		return nil, err
	}
	if c.HeartbeatRetry, err = cfg.IntRange("heartbeat.retries", 1, 1000); err != nil {
		return nil, err
	}
	if c.MediaTOS, err = cfg.IntRange("media.tos", 0, 255); err != nil {
		return nil, err
	}
	if c.QueueLen, err = cfg.IntRange("media.queue_len", 16, 1<<20); err != nil {
		return nil, err
	}
	c.DirectoryFile = cfg.String("directory.file")
	if c.SIP, err = cfg.Bool("sip.enabled"); err != nil {
		return nil, err
	}
	for _, p := range cfg.Strings("sip.ports") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 65535 {
			return nil, cli.Usagef("configuration key sip.ports has value %q, which is not a port from 1 to 65535", p)
		}
		c.SIPPorts = append(c.SIPPorts, uint16(n))
	}
	if c.MaxSessions, err = cfg.IntRange(captureserver.KeyMaxSessions, 1, 1_000_000); err != nil {
		return nil, err
	}
	if c.MaxEndpoints, err = cfg.IntRange(captureserver.KeyMaxEndpoints, 1, 100_000); err != nil {
		return nil, err
	}
	if c.SupervisorGrace, err = cfg.Millis("session.supervisor_grace_ms", 1000, 7*24*3600_000); err != nil {
		return nil, err
	}
	if c.Live, err = liveConfig(cfg); err != nil {
		return nil, err
	}
	if c.Rules, err = captureserver.ParseRules(cfg.V.Get(captureserver.KeyRules)); err != nil {
		return nil, cli.Usage(err)
	}
	if len(c.Rules) > 0 && c.Insecure {
		return nil, cli.Usagef("%s cannot be enforced with --insecure: clients present no certificate to match; remove the rules or --insecure", captureserver.KeyRules)
	}
	return c, nil
}

func unwrapPath(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func liveConfig(cfg *cli.Config) (capture.LiveConfig, error) {
	var lc capture.LiveConfig
	var err error
	if lc.Workers, err = cfg.IntRange("capture.workers", 1, 64); err != nil {
		return lc, err
	}
	if lc.BlockSize, err = cfg.IntRange("capture.block_size", 4096, 1<<30); err != nil {
		return lc, err
	}
	if lc.BlockSize%os.Getpagesize() != 0 {
		return lc, cli.Usagef("configuration key capture.block_size has value %d, which is not a multiple of the page size %d", lc.BlockSize, os.Getpagesize())
	}
	if lc.NumBlocks, err = cfg.IntRange("capture.num_blocks", 2, 1<<16); err != nil {
		return lc, err
	}
	if lc.BlockTimeout, err = cfg.Millis("capture.block_timeout_ms", 1, 10000); err != nil {
		return lc, err
	}
	if lc.SnapLen, err = cfg.IntRange("capture.snaplen", 128, 65535); err != nil {
		return lc, err
	}
	promisc, err := cfg.Bool("capture.promiscuous")
	if err != nil {
		return lc, err
	}
	bpf, err := cfg.Bool("capture.bpf")
	if err != nil {
		return lc, err
	}
	lc.NoPromiscuous, lc.NoFilter = !promisc, !bpf
	return lc, nil
}
