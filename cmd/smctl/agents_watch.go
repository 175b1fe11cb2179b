package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/relay"
)

func newAgentsWatchCmd() *cobra.Command {
	var cf connFlags
	var agents []string
	var asJSON bool
	var count int
	c := &cobra.Command{
		Use:   "watch --server HOST:PORT --agent ID [--agent ID]... [--json] [--count N]",
		Short: "Watch agents: tell when a session marked \"agent informed\" monitors them",
		Long: `Prints the current state of each agent (monitored or not-monitored), then one
line per change until interrupted (or after --count changes): what a desktop
integration shows its agent. Only sessions started with --inform-agent count,
on any capture server of the cluster; silent sessions are never shown, so an
agent monitored silently stays "not-monitored". --json prints each state as
one JSON object per line: {"agent":"1001","state":"monitored","sessions":[...]}.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(agents) == 0 {
				return cli.Usagef("--agent ID is required (repeatable)")
			}
			if err := relay.ValidateAgentWatch(&relay.AgentWatch{Agents: agents}); err != nil {
				return cli.Usagef("%v", err)
			}
			if count < 0 {
				return cli.Usagef("--count %d is negative", count)
			}
			q := newEventQueue()
			ctx, cancel := context.WithTimeout(cmd.Context(), cf.timeout)
			defer cancel()
			cl, err := cf.dialWith(ctx, func(cc *relay.ClientConfig) { cc.OnAgentEvents = q.add })
			if err != nil {
				return err
			}
			defer cl.Close()
			rep, err := cl.WatchAgents(ctx, agents)
			if err != nil {
				if errors.Is(err, relay.ErrNotSupported) {
					return cli.Failf("%v", err)
				}
				return cli.Failf("watching agents on %s: %v", cl.Server(), remoteMessage(err))
			}
			out := cmd.OutOrStdout()
			for _, e := range rep.Events {
				if err := printAgentEvent(out, e, asJSON); err != nil {
					return err
				}
			}
			return q.print(cmd.Context(), out, asJSON, count)
		},
	}
	cf.add(c)
	f := c.Flags()
	f.StringArrayVar(&agents, "agent", nil, "agent id to watch; repeatable")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per line")
	f.IntVar(&count, "count", 0, "exit after this many changes (0: until interrupted)")
	return c
}

// eventQueue hands the events the client's reader goroutine receives to
// the printing goroutine without ever blocking the reader.
type eventQueue struct {
	mu     sync.Mutex
	events []relay.AgentEvent
	ready  chan struct{} // holds a token while events wait
}

func newEventQueue() *eventQueue { return &eventQueue{ready: make(chan struct{}, 1)} }

func (q *eventQueue) add(ev *relay.AgentEvents) {
	q.mu.Lock()
	q.events = append(q.events, ev.Events...)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// print prints the queued events as they come, until ctx ends (nil) or
// count events were printed (count 0: no limit).
func (q *eventQueue) print(ctx context.Context, w io.Writer, asJSON bool, count int) error {
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-q.ready:
		}
		q.mu.Lock()
		evs := q.events
		q.events = nil
		q.mu.Unlock()
		for _, e := range evs {
			if err := printAgentEvent(w, e, asJSON); err != nil {
				return err
			}
			n++
			if count > 0 && n >= count {
				return nil
			}
		}
	}
}

func printAgentEvent(w io.Writer, e relay.AgentEvent, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	line := "agent " + e.Agent + " " + e.State
	if len(e.Sessions) > 0 {
		line += " (sessions " + strings.Join(e.Sessions, ", ") + ")"
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
