package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/relay"
)

// newAgentsBindCmd is smctl agents bind or unbind (action), the CTI
// hook.
func newAgentsBindCmd(action string) *cobra.Command {
	var cf connFlags
	var agent string
	var devices, exts []string
	var asJSON bool
	c := &cobra.Command{
		Use:  action + " --server HOST:PORT --agent ID [--device ADDR]... [--extension N]... [--json]",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := relay.AgentsBind{Action: action, Agent: agent, Devices: devices, Extensions: exts}
			if agent == "" {
				return cli.Usagef("--agent ID is required")
			}
			if err := relay.ValidateAgentsBind(&req); err != nil {
				return cli.Usagef("%s", remoteMessage(err))
			}
			ctx, cl, done, err := cf.connect(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			rep, err := cl.AgentsBind(ctx, req)
			if err != nil {
				switch {
				case errors.Is(err, relay.ErrNotSupported):
					return cli.Failf("%v", err)
				case errors.Is(err, relay.ErrRemote):
					return cli.Failf("agents %s refused by %s: %s", action, cl.Server(), remoteMessage(err))
				}
				return cli.Failf("agents %s got no answer from %s (%s); whether agent %s's bindings changed is not known: run the command again",
					action, strings.Join(cf.servers, " or "), remoteMessage(err), agent)
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			return printBindings(cmd.OutOrStdout(), rep)
		},
	}
	if action == relay.BindActionBind {
		c.Short = "Bind an agent to its devices and extensions (the CTI hook, at login)"
		c.Long = `Tell the capture servers that an agent now uses these devices (a phone's IP
or MAC address, optionally vlanN/ADDR) and extensions, as a CTI server does when
the agent logs in: every member of the cluster then finds the agent's media at
those devices and in the SIP calls of those extensions, and monitor start
--agent ID needs no --endpoint. A device or extension is bound to one agent at a
time: binding it takes it from the agent that had it. Needs a certificate with
the cti or the admin role. Prints the agent's bindings after the change;
--json prints {"agent":...,"devices":[...],"extensions":[...]}.`
	} else {
		c.Short = "Unbind an agent's devices and extensions (the CTI hook, at logout)"
		c.Long = `Remove the devices and extensions named from an agent's bindings, or all of
them when none is named (the agent logged out). Needs a certificate with the cti
or the admin role. Prints the agent's bindings after the change; --json prints
{"agent":...,"devices":[...],"extensions":[...]}.`
	}
	cf.add(c)
	f := c.Flags()
	f.StringVar(&agent, "agent", "", "the agent's id")
	f.StringArrayVar(&devices, "device", nil, "a device: phone IP or MAC address, optionally vlanN/ADDR (repeatable)")
	f.StringArrayVar(&exts, "extension", nil, "an extension, a SIP user part (repeatable)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

// printBindings prints an agent's bindings in one line.
func printBindings(w io.Writer, rep *relay.AgentsBindReply) error {
	if len(rep.Devices) == 0 && len(rep.Extensions) == 0 {
		_, err := fmt.Fprintf(w, "agent %s has no bindings\n", rep.Agent)
		return err
	}
	_, err := fmt.Fprintf(w, "agent %s: devices %s; extensions %s\n", rep.Agent, dash(strings.Join(rep.Devices, ", ")), dash(strings.Join(rep.Extensions, ", ")))
	return err
}
