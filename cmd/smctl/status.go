package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/status"
	"github.com/silentmon/silentmon/relay"
)

func newStatusCmd() *cobra.Command {
	var cf connFlags
	var asJSON bool
	c := &cobra.Command{
		Use:   "status --server HOST:PORT",
		Short: "Show a server's sessions, streams and supervisor connections",
		Long: `Shows a capture server's capture counters, cluster and monitor sessions, or a
supervisor service's output and sessions (--server names either).

A capture server's sessions are a table: SESSION, AGENT, STARTED (local time),
REQUESTER (the common name of the certificate that started the session, cut to
32 characters with "…"), SUPERVISOR, STATE (of the link to that supervisor
service: connected, connecting, unreachable, or idle when another member of
the cluster captures the session), PACKETS, DROPS (queue overflows), MOS (the
worst of the session's streams, "-" until known) and OWNER (cut to 32). Under
each row: who requested it and until when, its recording, the supervisor's
last error while it is unreachable, its endpoints, and one line per stream.

A supervisor service's sessions: SESSION, AGENT, STATE, STARTED, FROM (the
capture servers whose packets are played), PACKETS, WRITTEN s and MOS, with the
output, the last 32 digits its calls sent as telephone events ("digits 1234#";
JSON "digits") and the streams under each row. A stream whose codec this build
of the supervisor cannot play shows it as "iLBC (not supported)" (JSON "codec"
and "supported": false); the totals of such streams by codec come first.

--json prints the status as the server sent it, whole (fields are only ever
added, never renamed).`,
		Args: cobra.NoArgs,
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

func printSupervisorStatus(w io.Writer, sv *status.SupervisorStatus) error {
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
	if len(sv.Unsupported) > 0 {
		names := make([]string, 0, len(sv.Unsupported))
		for c, n := range sv.Unsupported {
			names = append(names, fmt.Sprintf("%s %d", c, n))
		}
		sort.Strings(names)
		fmt.Fprintf(w, "streams not played, their codec not supported by this build: %s\n", strings.Join(names, ", "))
	}
	if sv.Sessions == nil {
		// An older supervisor: streams only.
		return printPlayoutStreams(w, "", sv.Streams)
	}
	if len(sv.Sessions) == 0 {
		fmt.Fprintln(w, "no sessions")
		return nil
	}
	t := &table{
		header: []string{"SESSION", "AGENT", "STATE", "STARTED", "FROM", "PACKETS", "WRITTEN s", "MOS"},
		right:  []bool{false, false, false, false, false, true, true, true},
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
		mos := "-"
		if x.WorstMOS > 0 {
			mos = fmt.Sprintf("%.2f", x.WorstMOS)
		}
		t.add(x.ID, x.Agent, state, localTime(x.Started), orDash(strings.Join(x.Servers, ", ")),
			fmt.Sprint(x.Packets), fmt.Sprintf("%.1f", x.SecondsWritten), mos)
	}
	var err error
	t.write(w, func(i int) {
		x := sv.Sessions[i]
		fmt.Fprintf(w, "  agent %s, output %s: buffer %.0f ms, added latency p50 %.1f ms p99 %.1f ms\n",
			x.Agent, x.Output, x.TargetMs, x.AddedLatencyP50Ms, x.AddedLatencyP99Ms)
		if x.OutputError != "" {
			fmt.Fprintf(w, "  output error: %s\n", x.OutputError)
		}
		if x.Digits != "" {
			fmt.Fprintf(w, "  digits %s\n", x.Digits)
		}
		if len(x.Streams) > 0 && err == nil {
			err = printPlayoutStreams(w, "    ", x.Streams)
		}
	})
	return err
}

func printPlayoutStreams(w io.Writer, indent string, streams []status.PlayoutStream) error {
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
		codec := x.Codec
		if !x.Playable() {
			codec += " (not supported)"
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t%s\t%v\t%d\t%d\t%d\t%d\t%.2f\t%.0f\t%.2f\n", indent, x.Direction, flow, x.SSRC, codec,
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
		sup = "supervisor unreachable since " + localTime(unreachable.Format(time.RFC3339))
	} else if s.SupervisorState == "idle" {
		sup = "supervisor not connected from here"
	}
	if s.Informed {
		sup += ", agent informed"
	}
	return fmt.Sprintf("requested by %s, %s, %s, %s", requester, until, rec, sup)
}

func printStatus(w io.Writer, raw []byte) error {
	var sv status.SupervisorStatus
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
	sessions := sessionTable(st.Sessions, prev)
	streams := &table{indent: "    ", header: make([]string, 7), right: []bool{false, false, false, false, true, false, false}}
	for _, s := range st.Sessions {
		for _, x := range s.Streams {
			streams.add(streamCells(x)...)
		}
	}
	streams.layout()
	k := 0 // the next stream row
	sessions.write(w, func(i int) {
		s := st.Sessions[i]
		fmt.Fprintf(w, "  %s\n", sessionDetails(s, down[s.Supervisor]))
		if s.SupervisorError != "" {
			fmt.Fprintf(w, "  supervisor error: %s\n", s.SupervisorError)
		}
		var where []string
		if len(s.Endpoints) > 0 {
			where = append(where, "endpoints "+strings.Join(s.Endpoints, ", "))
		}
		if len(s.CapturedBy) > 0 {
			where = append(where, "captured by "+strings.Join(s.CapturedBy, ", "))
		}
		if len(where) > 0 {
			fmt.Fprintf(w, "  %s\n", strings.Join(where, "; "))
		}
		for range s.Streams {
			io.WriteString(w, streams.line(streams.rows[k]))
			k++
		}
	})
	return nil
}

// Column limits of smctl status's session table: longer values are cut
// with "…" (smctl status --json has them whole). Session ids, agents and
// supervisor addresses are never cut: they are what other commands take.
const (
	maxRequesterColumn = 32
	maxOwnerColumn     = 32
)

// sessionTable lays out one row per session: id, agent, start time (local),
// requester, supervisor and the state of the link to it, packets, queue
// drops, worst MOS ("-" when unknown) and owner (with the previous one
// from prev, by session id).
func sessionTable(sessions []status.SessionStatus, prev map[string]string) *table {
	t := &table{
		header: []string{"SESSION", "AGENT", "STARTED", "REQUESTER", "SUPERVISOR", "STATE", "PACKETS", "DROPS", "MOS", "OWNER"},
		max:    []int{0, 0, 0, maxRequesterColumn, 0, 0, 0, 0, 0, maxOwnerColumn},
		right:  []bool{false, false, false, false, false, false, true, true, true, false},
	}
	for _, s := range sessions {
		owner := s.Owner
		if p := prev[s.ID]; p != "" {
			owner += " (was " + p + ")"
		}
		state := orDash(s.SupervisorState)
		if s.SupervisorError != "" {
			state = "unreachable" // the error is on the lines below
		}
		mos := "-"
		if s.WorstMOS > 0 {
			mos = fmt.Sprintf("%.2f", s.WorstMOS)
		}
		t.add(s.ID, s.Agent, localTime(s.Started), orDash(commonName(s.Requester)), s.Supervisor, state,
			fmt.Sprint(s.Packets), fmt.Sprint(s.QueueDrops), mos, orDash(owner))
	}
	return t
}

// streamCells are the cells of a stream's row under its session.
func streamCells(x status.StreamStatus) []string {
	flow := x.Src + " -> " + x.Dst
	if x.Encrypted != "" {
		return []string{x.SSRC, x.Direction, flow, encryptedText(x.Encrypted) + ", not forwarded", fmt.Sprintf("%d packets", x.Packets)}
	}
	mos := "MOS -"
	if x.MOS > 0 {
		mos = fmt.Sprintf("MOS %.2f", x.MOS)
	}
	return []string{x.SSRC, x.Direction, flow, fmt.Sprintf("%s lost %d (network %d, capture %d)", orDash(x.Codec), x.Lost, x.LostNet, x.LostCap),
		fmt.Sprintf("%d packets", x.Packets), fmt.Sprintf("jitter %.2f ms", x.JitterMs), mos}
}

// commonName returns the common name of an RFC 4514 subject that starts
// with one ("CN=ops desk,O=example" gives "ops desk"), unescaped; any
// other text as it is.
func commonName(subject string) string {
	rest, ok := strings.CutPrefix(subject, "CN=")
	if !ok {
		return subject
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		switch c := rest[i]; {
		case c == '\\' && i+1 < len(rest):
			i++
			b.WriteByte(rest[i])
		case c == ',' || c == '+':
			return b.String()
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// localTime shows an RFC 3339 time in the local time zone, to the second;
// "-" when there is none, the text itself when it does not parse.
func localTime(rfc3339 string) string {
	if rfc3339 == "" {
		return "-"
	}
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// encryptedText says in words why a stream is not played (the status's
// stream "encrypted" value).
func encryptedText(enc string) string {
	if enc == "srtp-no-keys" {
		return "encrypted (SRTP, no keys)"
	}
	return "encrypted (" + enc + ")"
}
