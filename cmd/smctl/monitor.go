package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
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
	f.DurationVar(&c.timeout, "timeout", 10*time.Second, "how long to wait for the server")
}

func defaultSecurityDir() string {
	if d := os.Getenv(cli.EnvPrefix + "_SECURITY_DIR"); d != "" {
		return d
	}
	return "/etc/silentmon/security"
}

func (c *connFlags) dial(ctx context.Context) (*relay.Client, error) {
	if len(c.servers) == 0 {
		return nil, cli.Usagef("--server HOST:PORT is required")
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
	cl, err := relay.Dial(ctx, relay.ClientConfig{Servers: c.servers, Dial: relay.DialConfig{TLS: tcfg, Timeout: c.timeout},
		Name: "smctl", Logger: quiet, RequestTimeout: c.timeout})
	if err != nil {
		return nil, cli.Failf("cannot reach %s: %v", strings.Join(c.servers, " or "), smtls.ExplainHandshake(err, strings.Join(c.servers, ",")))
	}
	return cl, nil
}

func newMonitorCmd() *cobra.Command {
	c := &cobra.Command{Use: "monitor", Short: "Start and stop monitor sessions",
		RunE: func(*cobra.Command, []string) error { return cli.Usagef("smctl monitor needs start or stop") }}
	c.AddCommand(newMonitorStartCmd(), newMonitorStopCmd())
	return c
}

func newMonitorStartCmd() *cobra.Command {
	var cf connFlags
	var agent, supervisor string
	var endpoints []string
	var asJSON, record bool
	c := &cobra.Command{
		Use:   "start --server HOST:PORT --agent ID --endpoint ADDR [--endpoint ADDR]... --supervisor HOST:PORT",
		Short: "Start monitoring an agent; prints the session id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if agent == "" {
				return cli.Usagef("--agent ID is required")
			}
			if len(endpoints) == 0 {
				return cli.Usagef("--endpoint ADDR is required (the agent's phone IP or MAC, or gateway IP:PORT-PORT)")
			}
			for _, e := range endpoints {
				if _, err := filter.ParseEndpoint(e); err != nil {
					return cli.Usage(err)
				}
			}
			if _, _, err := net.SplitHostPort(supervisor); err != nil {
				return cli.Usagef("supervisor %q is not HOST:PORT", supervisor)
			}
			cl, err := cf.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			st, err := cl.StartMonitor(cmd.Context(), relay.StartMonitor{Agent: agent, Endpoints: endpoints,
				Supervisor: supervisor, Record: record})
			if err != nil {
				return cli.Failf("monitor start refused by %s: %v", cl.Server(), remoteMessage(smtls.ExplainHandshake(err, cl.Server())))
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
	f.StringArrayVar(&endpoints, "endpoint", nil, "agent phone IP or MAC, or gateway IP:PORT-PORT, optionally vlanN/...; repeatable")
	f.StringVar(&supervisor, "supervisor", "", "supervisor service HOST:PORT that receives the audio")
	f.BoolVar(&record, "record", false, "also record the session's packets to a pcap file on the capture server")
	f.BoolVar(&asJSON, "json", false, "print the session as JSON")
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
				return cli.Usagef("--session ID is required")
			}
			cl, err := cf.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			st, err := cl.StopMonitor(cmd.Context(), session)
			if err != nil {
				return cli.Failf("monitor stop refused by %s: %v", cl.Server(), remoteMessage(err))
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
