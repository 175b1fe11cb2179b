package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/audit"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/relay"
)

func newAuditCmd() *cobra.Command {
	var cf connFlags
	var files []string
	var q audit.Query
	var since, until string
	var asJSON bool
	c := &cobra.Command{
		Use:   "audit (--server HOST:PORT | --file PATH) [--agent ID] [--session ID] [--since T] [--until T] [--json]",
		Short: "Show the audit trail: who listened to whom, from when to when",
		Long: `Show the audit trail: requests to start and stop monitoring, sessions
ending, capture begun and ended, supervisors connected and disconnected,
recordings begun and failed, sorted by time, duplicates removed.

--server asks a capture server (repeatable: the others are failovers) for
the merged answer of every member of its cluster; it needs an administrator's
certificate (smserver --admin). Members that did not answer are named on
stderr: the answer lacks their lines, and the exit code is still 0.
--file reads trail files (repeatable; a pattern such as
'/var/log/silentmon/audit.log*' reads the rotated and compressed files too).
T is a time in RFC 3339 (2026-03-01T09:30:00Z) or a duration meaning that
long ago (2h, 30m). --since is inclusive, --until exclusive.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if q.Since, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if q.Until, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			if !q.Since.IsZero() && !q.Until.IsZero() && !q.Since.Before(q.Until) {
				return cli.Usagef("--since %s is not before --until %s", since, until)
			}
			switch {
			case len(files) > 0 && len(cf.servers) > 0:
				return cli.Usagef("give --server or --file, not both")
			case len(cf.servers) > 0:
				recs, err := queryAudit(cmd.Context(), cmd.ErrOrStderr(), &cf, q)
				if err != nil {
					return err
				}
				return printAudit(cmd.OutOrStdout(), recs, asJSON)
			case len(files) == 0:
				return cli.Usagef("--server HOST:PORT or --file PATH is required")
			}
			recs, err := readAuditFiles(cmd.ErrOrStderr(), files, q)
			if err != nil {
				return err
			}
			return printAudit(cmd.OutOrStdout(), recs, asJSON)
		},
	}
	cf.add(c)
	f := c.Flags()
	f.StringArrayVar(&files, "file", nil, "read this audit trail file or glob pattern instead of asking a server (repeatable)")
	f.StringVar(&q.Agent, "agent", "", "only this agent's records (and its supervisors' connections)")
	f.StringVar(&q.Session, "session", "", "only this session's records (and its supervisor's connections)")
	f.StringVar(&since, "since", "", "from this time on: RFC 3339, or a duration ago (2h)")
	f.StringVar(&until, "until", "", "before this time: RFC 3339, or a duration ago (30m)")
	f.BoolVar(&asJSON, "json", false, "print the records as JSON lines, as in the trail")
	return c
}

// parseWhen reads T of --since and --until: RFC 3339, or a non-negative
// duration meaning that long before now. "" is the zero time (no bound).
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, cli.Usagef("%s %q is neither an RFC 3339 time (2026-03-01T09:30:00Z) nor a duration ago (2h)", flag, s)
}

// maxAuditPages bounds the pages smctl follows (each makes progress, so
// this only stops a misbehaving server).
const maxAuditPages = 100_000

// queryAudit asks a server for the cluster's answer, page after page (see
// relay.AuditQuery), and says on w which members did not answer and how
// many malformed lines each skipped.
func queryAudit(ctx context.Context, w io.Writer, cf *connFlags, q audit.Query) ([]audit.Record, error) {
	cl, err := cf.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := relay.AuditQuery{Agent: q.Agent, Session: q.Session}
	if !q.Since.IsZero() {
		req.Since = q.Since.UTC().Format(time.RFC3339Nano)
	}
	if !q.Until.IsZero() {
		req.Until = q.Until.UTC().Format(time.RFC3339Nano)
	}
	var lists [][]audit.Record
	missing := map[string]string{} // member → why its part is missing
	malformed := map[string]int{}  // member → malformed lines it skipped
	var order []string
	for page := 1; ; page++ {
		rep, err := cl.AuditQuery(ctx, req)
		if err != nil {
			return nil, cli.Failf("audit query to %s: %v", cl.Server(), remoteMessage(err))
		}
		recs := make([]audit.Record, len(rep.Records))
		for i, raw := range rep.Records {
			if err := json.Unmarshal(raw, &recs[i]); err != nil {
				return nil, cli.Failf("audit reply from %s holds a record that is not a trail line: %v", cl.Server(), err)
			}
			if recs[i].Endpoints == nil {
				recs[i].Endpoints = []string{}
			}
		}
		lists = append(lists, recs)
		for _, m := range rep.Members {
			if !slices.Contains(order, m.Name) {
				order = append(order, m.Name)
			}
			if m.Error != "" {
				missing[m.Name] = m.Error
			}
			// Each page reads the whole trail again: the count repeats.
			malformed[m.Name] = max(malformed[m.Name], m.Malformed)
		}
		if !rep.Truncated {
			break
		}
		if len(recs) == 0 || page == maxAuditPages {
			return nil, cli.Failf("audit reply from %s says more records follow but the paging makes no progress", cl.Server())
		}
		last := recs[len(recs)-1].Time
		if !q.Since.IsZero() && !last.After(q.Since) {
			return nil, cli.Failf("audit reply from %s says more records follow but the paging makes no progress", cl.Server())
		}
		q.Since = last
		req.Since = last.UTC().Format(time.RFC3339Nano)
	}
	for _, m := range order {
		if n := malformed[m]; n > 0 {
			fmt.Fprintf(w, "smctl: member %s skipped %d malformed lines of its trail\n", m, n)
		}
	}
	for _, m := range order {
		if why, ok := missing[m]; ok && why != "" {
			fmt.Fprintf(w, "smctl: incomplete answer: member %s did not answer: %s\n", m, why)
		}
	}
	return audit.Merge(lists...), nil
}

// readAuditFiles reads and merges the files, and says on w how many
// malformed lines each skipped.
func readAuditFiles(w io.Writer, files []string, q audit.Query) ([]audit.Record, error) {
	lists := make([][]audit.Record, 0, len(files))
	for _, p := range files {
		recs, st, err := audit.ReadFile(p, q)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, cli.Failf("no audit file %s", p)
			}
			return nil, cli.Failf("%v", err)
		}
		if st.Malformed > 0 {
			fmt.Fprintf(w, "smctl: skipped %d malformed lines of %d in %s\n", st.Malformed, st.Lines, p)
		}
		lists = append(lists, recs)
	}
	return audit.Merge(lists...), nil
}

func printAudit(w io.Writer, recs []audit.Record, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for i := range recs {
			if err := enc.Encode(&recs[i]); err != nil {
				return err
			}
		}
		return nil
	}
	if len(recs) == 0 {
		_, err := fmt.Fprintln(w, "no audit records match")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tMEMBER\tACTION\tRESULT\tSESSION\tAGENT\tWHO\tDETAIL")
	for i := range recs {
		r := &recs[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339),
			dash(r.Member), r.Action, dash(r.Result), dash(r.SessionID), dash(r.Agent), dash(auditWho(r)), dash(auditDetail(r)))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// auditWho is the certificate behind the record: the client's for a
// request, the supervisor's for a supervisor event.
func auditWho(r *audit.Record) string {
	switch r.Action {
	case audit.ActionStart, audit.ActionStop:
		if r.ClientSubject == "" {
			return r.Source
		}
		return r.ClientSubject
	case audit.ActionSupervisorConnected, audit.ActionSupervisorDisconnected:
		return r.SupervisorSubject
	}
	return ""
}

func auditDetail(r *audit.Record) string {
	var d []string
	if r.Reason != "" {
		d = append(d, r.Reason)
	}
	if r.Supervisor != "" {
		d = append(d, "supervisor "+r.Supervisor)
	}
	if r.Action == audit.ActionStart && r.Result == audit.ResultAccepted && len(r.Endpoints) > 0 {
		d = append(d, "endpoints "+strings.Join(r.Endpoints, ","))
	}
	if !r.Until.IsZero() {
		d = append(d, "until "+r.Until.UTC().Format(time.RFC3339))
	}
	if r.Action == audit.ActionCaptureEnd {
		d = append(d, strconv.FormatUint(r.Packets, 10)+" packets")
		if r.Dropped > 0 {
			d = append(d, strconv.FormatUint(r.Dropped, 10)+" dropped")
		}
	}
	if r.File != "" {
		d = append(d, "file "+r.File)
	}
	return strings.Join(d, "; ")
}
