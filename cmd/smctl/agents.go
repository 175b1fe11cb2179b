package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/relay"
)

// maxListedAgents bounds the agents smctl agents fetches: past it, it
// stops with a warning (a misbehaving server, or a directory to narrow
// with --team).
const maxListedAgents = 100_000

func newAgentsCmd() *cobra.Command {
	var cf connFlags
	var team string
	var asJSON bool
	c := &cobra.Command{
		Use:   "agents --server HOST:PORT [--team T] [--json]",
		Short: "List the agents a capture server knows, their devices and their calls",
		Long: `List the agents a capture server knows: those of the agent directory (of
every member of the cluster), those a CTI bound (smctl agents bind) and those
SIP tracking found on the SPAN, each with its devices (and where each
was learned: directory, sip-register, sip-call or cti), its state (idle,
ringing, talking, held) and its live calls with their media addresses.
--team lists one team's agents. --json prints {"agents":[...]}, every page
fetched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := relay.AgentsQuery{Team: team}
			if relay.ValidateAgentsQuery(&q) != nil {
				return cli.Usagef("--team %q is not 1 to %d of A-Z a-z 0-9 . _ -", team, relay.MaxTeamLen)
			}
			cl, err := cf.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			agents, err := listAgents(cmd.Context(), cmd.ErrOrStderr(), cl, q, maxListedAgents)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), struct {
					Agents []relay.AgentStatus `json:"agents"`
				}{agents})
			}
			return printAgents(cmd.OutOrStdout(), agents, team)
		},
	}
	cf.add(c)
	f := c.Flags()
	f.StringVar(&team, "team", "", "only this team's agents")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(newAgentsBindCmd(relay.BindActionBind), newAgentsBindCmd(relay.BindActionUnbind))
	c.AddCommand(newAgentsWatchCmd())
	return c
}

// agentsClient is the part of relay.Client listAgents uses.
type agentsClient interface {
	AgentsQuery(ctx context.Context, req relay.AgentsQuery) (*relay.AgentsReply, error)
	Server() string
}

// listAgents fetches every page of q's agents (see relay.AgentsQuery),
// at most limit of them: past that it stops and says so on w. It checks
// that the pages come in id order, so that paging always progresses. The
// result is never nil.
func listAgents(ctx context.Context, w io.Writer, cl agentsClient, q relay.AgentsQuery, limit int) ([]relay.AgentStatus, error) {
	agents := []relay.AgentStatus{}
	for {
		rep, err := cl.AgentsQuery(ctx, q)
		if err != nil {
			if errors.Is(err, relay.ErrNotSupported) {
				return nil, cli.Failf("%v", err)
			}
			return nil, cli.Failf("agents query to %s: %v", cl.Server(), remoteMessage(err))
		}
		for _, a := range rep.Agents {
			if a.ID <= q.After {
				return nil, cli.Failf("agents reply from %s lists agent %q after %q: not in id order", cl.Server(), a.ID, q.After)
			}
			q.After = a.ID
		}
		agents = append(agents, rep.Agents...)
		if len(agents) >= limit {
			if len(agents) > limit || rep.More {
				fmt.Fprintf(w, "smctl: stopped after %d agents, more follow: narrow the list with --team\n", limit)
			}
			return agents[:limit], nil
		}
		if !rep.More {
			return agents, nil
		}
		if len(rep.Agents) == 0 {
			return nil, cli.Failf("agents reply from %s says more agents follow but holds none", cl.Server())
		}
	}
}

// printAgents prints one line per agent and a summary by state.
func printAgents(w io.Writer, agents []relay.AgentStatus, team string) error {
	if len(agents) == 0 {
		if team != "" {
			_, err := fmt.Fprintf(w, "no agents known in team %s\n", team)
			return err
		}
		_, err := fmt.Fprintln(w, "no agents known (no directory given and no SIP seen)")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTEAM\tEXTENSIONS\tSTATE\tDEVICES\tCALLS")
	count := map[string]int{}
	for i := range agents {
		a := &agents[i]
		count[a.State]++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, dash(a.Name), dash(a.Team), dash(strings.Join(a.Extensions, ",")),
			dash(a.State), dash(agentDevices(a.Devices)), agentCalls(a.Calls))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	noun := "agents"
	if len(agents) == 1 {
		noun = "agent"
	}
	sum := fmt.Sprintf("%d %s: %d talking, %d ringing, %d held, %d idle", len(agents), noun,
		count[relay.AgentTalking], count[relay.AgentRinging], count[relay.AgentHeld], count[relay.AgentIdle])
	if other := len(agents) - count[relay.AgentTalking] - count[relay.AgentRinging] - count[relay.AgentHeld] - count[relay.AgentIdle]; other > 0 {
		sum += fmt.Sprintf(", %d unknown", other)
	}
	_, err := fmt.Fprintln(w, sum)
	return err
}

// agentDevices is "10.10.0.1 (sip-register), 00:11:22:33:44:55 (directory)".
func agentDevices(ds []relay.AgentDevice) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.Address + " (" + d.Learned + ")"
	}
	return strings.Join(parts, ", ")
}

// agentCalls is "-" without calls, "talking with +15550100
// 10.10.0.1:20000" for one (its state, the other party, the agent's media
// addresses, SRTP when encrypted), the number of calls for several.
func agentCalls(cs []relay.AgentCall) string {
	switch len(cs) {
	case 0:
		return "-"
	case 1:
	default:
		return strconv.Itoa(len(cs)) + " calls"
	}
	c := &cs[0]
	s := dash(c.State)
	if c.Peer != "" {
		s += " with " + c.Peer
	}
	if len(c.Local) > 0 {
		s += " " + strings.Join(c.Local, ",")
	}
	if c.Encrypted {
		s += " (SRTP)"
	}
	return s
}
