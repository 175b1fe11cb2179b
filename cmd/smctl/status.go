package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

func newStatusCmd() *cobra.Command {
	var cf connFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "status --server HOST:PORT",
		Short: "Show a server's sessions, streams and supervisor connections",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, err := cf.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer cl.Close()
			raw, err := cl.Status(cmd.Context())
			if err != nil {
				return cli.Failf("status from %s: %v", cl.Server(), remoteMessage(err))
			}
			if asJSON {
				var v any
				if err := json.Unmarshal(raw, &v); err != nil {
					return cli.Failf("status from %s is not JSON: %v", cl.Server(), err)
				}
				return printJSON(cmd.OutOrStdout(), v)
			}
			return printStatus(cmd.OutOrStdout(), raw)
		},
	}
	cf.add(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printSupervisorStatus(w io.Writer, sv *service.SupervisorStatus) error {
	fmt.Fprintf(w, "supervisor service: %d packets received, %d duplicates dropped, %.1f s of audio written, max delivery delay %.1f ms\n",
		sv.Packets, sv.Duplicates, sv.SecondsWritten, sv.DeliveryMs)
	if sv.Output != "" {
		fmt.Fprintf(w, "output %s; %d sessions opened (at most %d at once)", sv.Output, sv.SessionsOpened, sv.MaxSessions)
		if sv.Playing != "" {
			fmt.Fprintf(w, "; the device plays session %s", sv.Playing)
		}
		fmt.Fprintln(w)
	}
	if sv.RefusedPackets+sv.BadSessionIDs+sv.Unauthorized+sv.Rejected > 0 {
		fmt.Fprintf(w, "dropped: %d packets over the session limit, %d frames or notices with a bad session id, %d unauthorized peers, %d packets refused by a player\n",
			sv.RefusedPackets, sv.BadSessionIDs, sv.Unauthorized, sv.Rejected)
	}
	if sv.Sessions == nil {
		// An older supervisor: streams only.
		return printPlayoutStreams(w, "", sv.Streams)
	}
	if len(sv.Sessions) == 0 {
		fmt.Fprintln(w, "no sessions")
		return nil
	}
	for _, x := range sv.Sessions {
		state := x.State
		if x.Closed != "" {
			state += " (" + x.Closed + ")"
		}
		if x.Playing {
			state += ", playing"
		} else if sv.Playing != "" && x.State == "open" {
			state += ", not playing (buffered only)"
		}
		fmt.Fprintf(w, "session %s  agent %s  %s  output %s  from %v\n", x.ID, x.Agent, state, x.Output, x.Servers)
		if x.OutputError != "" {
			fmt.Fprintf(w, "  output error: %s\n", x.OutputError)
		}
		fmt.Fprintf(w, "  %.1f s written, buffer %.0f ms, added latency p50 %.1f ms p99 %.1f ms, worst MOS %.2f, %d packets\n",
			x.SecondsWritten, x.TargetMs, x.AddedLatencyP50Ms, x.AddedLatencyP99Ms, x.WorstMOS, x.Packets)
		if err := printPlayoutStreams(w, "  ", x.Streams); err != nil {
			return err
		}
	}
	return nil
}

func printPlayoutStreams(w io.Writer, indent string, streams []service.PlayoutStream) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, indent+"DIRECTION\tFLOW\tSSRC\tCODEC\tACTIVE\tPACKETS\tLOST\tLATE\tCONCEALED\tJITTER ms\tBUFFER ms\tMOS")
	for _, x := range streams {
		flow := "-"
		if x.Src != "" || x.Dst != "" {
			flow = x.Src + " -> " + x.Dst
			if x.VLAN != 0 {
				flow = fmt.Sprintf("vlan%d/%s", x.VLAN, flow)
			}
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%v\t%d\t%d\t%d\t%d\t%.2f\t%.0f\t%.2f\n", indent, x.Direction, flow, x.SSRC, x.Codec,
			x.Active, x.Packets, x.Lost, x.Late, x.Concealed, x.JitterMs, x.TargetMs, x.MOS)
	}
	return tw.Flush()
}

// sessionDetails is the second line of a session in status: who started
// it, how long it lives, its recording and its supervisor's reachability.
func sessionDetails(s status.SessionStatus, unreachable time.Time) string {
	requester := s.Requester
	if requester == "" {
		requester = "(no certificate)"
	}
	until := "until stopped"
	if s.Until != "" {
		until = "until " + s.Until
	}
	rec := "not recorded here"
	switch {
	case s.RecordingState != "" && s.Recording != "":
		rec = "recording " + s.RecordingState + " to " + s.Recording
	case s.RecordingState != "":
		rec = "recording " + s.RecordingState
	case s.Recording != "":
		rec = "recording to " + s.Recording
	}
	sup := "supervisor reachable"
	if !unreachable.IsZero() {
		sup = "supervisor unreachable since " + unreachable.UTC().Format(time.RFC3339)
	} else if s.SupervisorState == "idle" {
		sup = "supervisor not connected from here"
	}
	if s.Informed {
		sup += ", agent informed"
	}
	return fmt.Sprintf("requested by %s, %s, %s, %s", requester, until, rec, sup)
}

func printStatus(w io.Writer, raw []byte) error {
	var sv service.SupervisorStatus
	if json.Unmarshal(raw, &sv) == nil && sv.Role == relay.RoleSupervisor {
		return printSupervisorStatus(w, &sv)
	}
	var st status.ServerStatus
	if err := json.Unmarshal(raw, &st); err != nil {
		return cli.Failf("status is not in the expected form: %v", err)
	}
	fmt.Fprintf(w, "server %s, up %.0f s, source %s\n", st.Server, st.UptimeS, st.Source)
	fmt.Fprintf(w, "capture: %d frames, %d RTP, %d matched, %d decode errors\n",
		st.Capture.Frames, st.Capture.RTP, st.Capture.Matched, st.Capture.DecodeErrors)
	if k := st.Kernel; k != nil {
		fmt.Fprintf(w, "kernel: %d packets, %d dropped, %d ring freezes\n", k.Packets, k.Drops, k.FreezeQueue)
	}
	if c := st.Cluster; c != nil {
		fmt.Fprintf(w, "cluster: member %s, %d members, %d routes, %d slow consumers\n", c.Member, len(c.Members), len(c.Routes), c.SlowConsumers)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MEMBER\tSTATE\tOWNS\tCAPTURING")
		for _, m := range c.Members {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%v\n", m.Name, m.State, m.Owns, m.Capturing)
		}
		for _, r := range c.Routes {
			fmt.Fprintf(tw, "  route %s\t%s\t%s\t%s\n", r.Member, r.Address, r.State, r.RTT)
		}
		tw.Flush()
	}
	if len(st.Sessions) == 0 {
		fmt.Fprintln(w, "no monitor sessions")
		return nil
	}
	unreachable := 0
	for _, x := range st.Supervisors {
		if !x.UnreachableSince.IsZero() {
			unreachable++
		}
	}
	fmt.Fprintf(w, "%d monitor sessions, %d supervisor connections (%d unreachable)\n", len(st.Sessions), len(st.Supervisors), unreachable)
	// The previous owner comes from the cluster's view, "unreachable
	// since" from the supervisor connections.
	prev := map[string]string{}
	if c := st.Cluster; c != nil {
		for _, x := range c.Sessions {
			prev[x.ID] = x.PreviousOwner
		}
	}
	down := map[string]time.Time{}
	for _, x := range st.Supervisors {
		down[x.Supervisor] = x.UnreachableSince
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tAGENT\tENDPOINTS\tSUPERVISOR\tSTATE\tPACKETS\tDROPS\tOWNER\tCAPTURED BY")
	for _, s := range st.Sessions {
		owner := s.Owner
		if p := prev[s.ID]; p != "" {
			owner += " (was " + p + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%d\t%d\t%s\t%v\n", s.ID, s.Agent, s.Endpoints, s.Supervisor, s.SupervisorState, s.Packets, s.QueueDrops, owner, s.CapturedBy)
		fmt.Fprintf(tw, "  %s\n", sessionDetails(s, down[s.Supervisor]))
		for _, x := range s.Streams {
			if x.Encrypted != "" {
				fmt.Fprintf(tw, "  %s\t%s\t%s -> %s\t%s, not forwarded\t\t%d\t\n",
					x.SSRC, x.Direction, x.Src, x.Dst, encryptedText(x.Encrypted), x.Packets)
				continue
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s -> %s\t%s lost %d (network %d, capture %d) jitter %.2f ms\t\t%d\t\n",
				x.SSRC, x.Direction, x.Src, x.Dst, x.Codec, x.Lost, x.LostNet, x.LostCap, x.JitterMs, x.Packets)
		}
	}
	return tw.Flush()
}

// encryptedText says in words why a stream is not played (the status's
// stream "encrypted" value).
func encryptedText(enc string) string {
	if enc == "srtp-no-keys" {
		return "encrypted (SRTP, no keys)"
	}
	return "encrypted (" + enc + ")"
}
