package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// connFlags are the flags every command that talks to a server has.
type connFlags struct {
	servers     []string
	securityDir string
	insecure    bool
	timeout     time.Duration
}

func (c *connFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVar(&c.servers, "server", nil, "capture server HOST:PORT (repeatable: one is chosen at random, the others are failovers)")
	f.StringVar(&c.securityDir, "security-dir", defaultSecurityDir(), "directory with CtiosRootCert.pem and CtiosClient.pem (env SILENTMON_SECURITY_DIR)")
	f.BoolVar(&c.insecure, "insecure", false, "plaintext, without certificates")
	f.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for the servers, retries on a broken connection included")
}

func defaultSecurityDir() string {
	if d := os.Getenv(cli.EnvPrefix + "_SECURITY_DIR"); d != "" {
		return d
	}
	return "/etc/silentmon/security"
}

// dial connects to one of the servers. When a connection breaks (at the
// connect, the TLS handshake, the hello, or later during a request), the
// client tries again, on another --server or the same one, within
// --timeout; requests are sent again with the same idempotency key.
func (c *connFlags) dial(ctx context.Context) (*relay.Client, error) { return c.dialWith(ctx, nil) }

// connect dials as dial does, under a context of parent bounded by
// --timeout, for a command's one request. The caller sends the request
// with ctx, then calls done, which closes the client and ends ctx.
func (c *connFlags) connect(parent context.Context) (ctx context.Context, cl *relay.Client, done func(), err error) {
	ctx, cancel := context.WithTimeout(parent, c.timeout)
	cl, err = c.dial(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return ctx, cl, func() { cl.Close(); cancel() }, nil
}

// dialWith is dial with the client's configuration changed by set (if
// not nil) before it dials.
func (c *connFlags) dialWith(ctx context.Context, set func(*relay.ClientConfig)) (*relay.Client, error) {
	if c.timeout <= 0 {
		return nil, cli.Usagef("a --timeout of %v is not a positive duration", c.timeout)
	}
	if len(c.servers) == 0 {
		return nil, cli.Usagef("no capture server given: --server HOST:PORT is required (repeat it to name failovers)")
	}
	for _, s := range c.servers {
		if _, _, err := net.SplitHostPort(s); err != nil {
			return nil, cli.Usagef("server %q is not HOST:PORT", s)
		}
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tcfg, err := service.DialTLS(c.securityDir, c.insecure, false, quiet)
	if err != nil {
		return nil, cli.Usage(err)
	}
	cc := relay.ClientConfig{Servers: c.servers, Dial: relay.DialConfig{TLS: tcfg, Timeout: c.timeout},
		Name: "smctl", Logger: quiet, RequestTimeout: c.timeout, DialRetry: c.timeout}
	if set != nil {
		set(&cc)
	}
	cl, err := relay.Dial(ctx, cc)
	if err != nil {
		ex := smtls.ExplainHandshake(err, strings.Join(c.servers, ","))
		if errors.Is(ex, smtls.ErrNotTLS) || errors.Is(ex, smtls.ErrExpectsTLS) {
			// Reached, but --insecure is wrong: the sentence says so.
			// A failed connection all the same (exit 1).
			return nil, &cli.Error{Code: cli.ExitFailed, Err: ex}
		}
		return nil, cli.Failf("cannot reach %s: %v", strings.Join(c.servers, " or "), dialReason(ex))
	}
	return cl, nil
}

// dialReason shortens an error of relay.Dial whose cause is the network
// (a refused connection, an unknown host, no answer) to that cause and
// what it usually means; any other error is shown as it is.
func dialReason(err error) string {
	var dnsErr *net.DNSError
	var oe *net.OpError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused: nothing listens there (is the server running, and is the port right?)"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return fmt.Sprintf("host %q is not known", dnsErr.Name)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &oe) && oe.Timeout()):
		return "no answer within the --timeout (a firewall, or a wrong address?)"
	}
	return err.Error()
}

func newMonitorCmd() *cobra.Command {
	c := &cobra.Command{Use: "monitor", Short: "Start and stop monitor sessions",
		RunE: func(*cobra.Command, []string) error {
			return cli.Usagef("no subcommand given: use monitor start or monitor stop")
		}}
	c.AddCommand(newMonitorStartCmd(), newMonitorStopCmd())
	return c
}

func newMonitorStartCmd() *cobra.Command {
	var cf connFlags
	var agent, supervisor, key string
	var endpoints, extensions []string
	var asJSON, record, wait, inform bool
	var lifetime time.Duration
	c := &cobra.Command{
		Use:   "start --server HOST:PORT --agent ID [--extension N]... [--endpoint ADDR]... [--wait] --supervisor HOST:PORT [--for DURATION] [--inform-agent]",
		Short: "Start monitoring an agent; prints the session id",
		Long: `Starts monitoring an agent's calls. The capture servers find them from the
SIP on their SPAN (the agent id and every --extension are taken as SIP user
parts: REGISTER, INVITE and the SDP of each call give the media addresses) and
from --endpoint (the agent's phone IP or MAC, or a gateway IP:PORT-PORT), which
may be combined. When nothing is known about the agent yet, the start is
refused unless --wait is given: the session then captures the agent's next call.
--inform-agent marks the session "agent informed": desktops watching the agent
(smctl agents watch) are told it is monitored; without it the session is silent
and never disclosed to them. The capture servers' authorization rules decide
which agents this client's certificate may monitor.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agent == "" && len(extensions) > 0 {
				// The extension names the agent: the capture servers
				// follow its calls as a SIP user part.
				agent = extensions[0]
			}
			if agent == "" {
				return cli.Usagef("no agent given: monitor start needs --agent ID (or --extension N), the agent to monitor")
			}
			if !filter.ValidAgent(agent) {
				return cli.Usagef("agent %q is not 1 to %d printable characters without a slash", agent, filter.MaxAgentLen)
			}
			for _, x := range extensions {
				if !filter.ValidExtension(x) {
					return cli.Usagef("extension %q is not 1 to %d of A-Z a-z 0-9 + * # . _ -", x, filter.MaxExtensionLen)
				}
			}
			for _, e := range endpoints {
				if _, err := filter.ParseEndpoint(e); err != nil {
					return cli.Usage(err)
				}
			}
			if supervisor == "" {
				return cli.Usagef("no supervisor given: monitor start needs --supervisor HOST:PORT, the supervisor service that receives the audio")
			}
			if _, _, err := net.SplitHostPort(supervisor); err != nil {
				return cli.Usagef("supervisor address %q (--supervisor) is not HOST:PORT", supervisor)
			}
			req := relay.StartMonitor{Agent: agent, Endpoints: endpoints, Extensions: extensions, Wait: wait, Supervisor: supervisor, Record: record, InformAgent: inform}
			if cmd.Flags().Changed("for") {
				if lifetime < time.Millisecond || lifetime > relay.MaxLifetime {
					return cli.Usagef("a lifetime (--for) of %v is not between 1ms and %v", lifetime, relay.MaxLifetime)
				}
				req.ForMS = lifetime.Milliseconds()
			}
			if key == "" {
				key = relay.NewIdempotencyKey()
			} else if !filter.ValidID(key) {
				return cli.Usagef("request key %q (--request-key) is not 1 to %d of A-Z a-z 0-9 . _ -", key, filter.MaxIDLen)
			}
			req.IdempotencyKey = key
			ctx, cl, done, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			st, err := cl.StartMonitor(ctx, req)
			if err != nil {
				if errors.Is(err, relay.ErrRemote) {
					return cli.Failf("monitor start refused by %s: %v", cl.Server(), remoteMessage(err))
				}
				// No answer: the session may or may not exist. The same
				// key finds it, or makes it once.
				return cli.Failf("monitor start got no answer from %s (%v); whether the session was made is not known: run the same command with --request-key %s to find out without making a second one",
					strings.Join(cf.servers, " or "), remoteMessage(smtls.ExplainHandshake(err, cl.Server())), key)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			fmt.Fprintln(cmd.OutOrStdout(), st.Session)
			return nil
		},
	}
	cf.add(c)
	f := c.Flags()
	f.StringVar(&agent, "agent", "", "agent id")
	f.StringArrayVar(&endpoints, "endpoint", nil, "agent phone IP or MAC, or gateway IP:PORT-PORT, optionally vlanN/...; repeatable; optional when SIP tracking knows the agent")
	f.StringArrayVar(&extensions, "extension", nil, "the agent's telephone extension (SIP user part), found from SIP on the SPAN; repeatable")
	f.BoolVar(&wait, "wait", false, "accept the start even when nothing is known about the agent yet: its next call is captured")
	f.StringVar(&supervisor, "supervisor", "", "supervisor service HOST:PORT that receives the audio")
	f.BoolVar(&record, "record", false, "also record the session's packets to a pcap file on the capture server")
	f.DurationVar(&lifetime, "for", 0, "end the session by itself after this long (e.g. 8h, at most 720h); default: until stopped")
	f.StringVar(&key, "request-key", "", "idempotency key of this start (default: a new random one); the same key never makes a second session")
	f.BoolVar(&asJSON, "json", false, "print the session as JSON")
	f.BoolVar(&inform, "inform-agent", false, "mark the session \"agent informed\": the agent's desktop may be told it is monitored (default: silent)")
	return c
}

func remoteMessage(err error) string {
	s := err.Error()
	return strings.TrimPrefix(s, relay.ErrRemote.Error()+": ")
}

func newMonitorStopCmd() *cobra.Command {
	var cf connFlags
	var session string
	var asJSON bool
	c := &cobra.Command{
		Use:   "stop --server HOST:PORT --session ID",
		Short: "Stop a monitor session",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if session == "" {
				return cli.Usagef("no session given: monitor stop needs --session ID, the id that monitor start printed")
			}
			if !filter.ValidID(session) {
				return cli.Usagef("session id %q is not 1 to %d of A-Z a-z 0-9 . _ -", session, filter.MaxIDLen)
			}
			ctx, cl, done, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			st, err := cl.StopMonitor(ctx, session)
			if err != nil {
				if errors.Is(err, relay.ErrRemote) {
					return cli.Failf("monitor stop refused by %s: %v", cl.Server(), remoteMessage(err))
				}
				return cli.Failf("monitor stop got no answer from %s (%v); whether session %s stopped is not known: run the command again",
					strings.Join(cf.servers, " or "), remoteMessage(err), session)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stopped %s\n", st.Session)
			return nil
		},
	}
	cf.add(c)
	c.Flags().StringVar(&session, "session", "", "session id printed by monitor start")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
