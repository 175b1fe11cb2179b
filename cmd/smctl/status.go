package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
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

// statusView is the part of a status the human view shows; unknown fields
// are kept in the JSON output only.
type statusView struct {
	Server  string  `json:"server"`
	UptimeS float64 `json:"uptime_s"`
	Source  string  `json:"source"`
	Capture struct {
		Frames       uint64 `json:"frames"`
		DecodeErrors uint64 `json:"decode_errors"`
		RTP          uint64 `json:"rtp"`
		Matched      uint64 `json:"matched"`
	} `json:"capture"`
	Sessions []struct {
		ID              string   `json:"id"`
		Agent           string   `json:"agent"`
		Endpoints       []string `json:"endpoints"`
		Supervisor      string   `json:"supervisor"`
		SupervisorState string   `json:"supervisor_state"`
		Packets         uint64   `json:"packets"`
		QueueDrops      uint64   `json:"queue_drops"`
		Owner           string   `json:"owner"`
		CapturedBy      []string `json:"captured_by"`
		Recording       string   `json:"recording"`
		Streams         []struct {
			SSRC      string  `json:"ssrc"`
			Direction string  `json:"direction"`
			Src       string  `json:"src"`
			Dst       string  `json:"dst"`
			Packets   uint64  `json:"packets"`
			Codec     string  `json:"codec"`
			Lost      int64   `json:"lost"`
			LostNet   uint64  `json:"lost_network"`
			LostCap   uint64  `json:"lost_in_capture"`
			JitterMs  float64 `json:"jitter_ms"`
		} `json:"streams"`
	} `json:"sessions"`
	Kernel *struct {
		Packets     uint64 `json:"Packets"`
		Drops       uint64 `json:"Drops"`
		FreezeQueue uint64 `json:"FreezeQueue"`
	} `json:"kernel"`
	Cluster *struct {
		Member  string `json:"member"`
		Members []struct {
			Name      string   `json:"name"`
			State     string   `json:"state"`
			Owns      int      `json:"owns"`
			Capturing []string `json:"capturing"`
		} `json:"members"`
		Routes []struct {
			Member  string `json:"member"`
			Address string `json:"address"`
			State   string `json:"state"`
			RTT     string `json:"rtt"`
		} `json:"routes"`
		SlowConsumers int64 `json:"slow_consumers"`
	} `json:"cluster"`
}

type supervisorView struct {
	Role           string  `json:"role"`
	Packets        uint64  `json:"packets"`
	Duplicates     uint64  `json:"duplicates"`
	SecondsWritten float64 `json:"seconds_written"`
	DeliveryMs     float64 `json:"max_delivery_ms"`
	Streams        []struct {
		Direction string  `json:"direction"`
		SSRC      string  `json:"ssrc"`
		Codec     string  `json:"codec"`
		Packets   uint64  `json:"packets"`
		Lost      uint64  `json:"lost"`
		Late      uint64  `json:"late"`
		Concealed uint64  `json:"concealed"`
		JitterMs  float64 `json:"jitter_ms"`
		TargetMs  float64 `json:"target_ms"`
		MOS       float64 `json:"mos"`
	} `json:"streams"`
}

func printSupervisorStatus(w io.Writer, sv *supervisorView) error {
	fmt.Fprintf(w, "supervisor service: %d packets received, %d duplicates dropped, %.1f s of audio played, max delivery delay %.1f ms\n",
		sv.Packets, sv.Duplicates, sv.SecondsWritten, sv.DeliveryMs)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIRECTION\tSSRC\tCODEC\tPACKETS\tLOST\tLATE\tCONCEALED\tJITTER ms\tBUFFER ms\tMOS")
	for _, x := range sv.Streams {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.2f\t%.0f\t%.2f\n", x.Direction, x.SSRC, x.Codec,
			x.Packets, x.Lost, x.Late, x.Concealed, x.JitterMs, x.TargetMs, x.MOS)
	}
	return tw.Flush()
}

func printStatus(w io.Writer, raw []byte) error {
	var sv supervisorView
	if json.Unmarshal(raw, &sv) == nil && sv.Role == "supervisor" {
		return printSupervisorStatus(w, &sv)
	}
	var st statusView
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
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SESSION\tAGENT\tENDPOINTS\tSUPERVISOR\tSTATE\tPACKETS\tDROPS\tOWNER\tCAPTURED BY")
	for _, s := range st.Sessions {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%d\t%d\t%s\t%v\n", s.ID, s.Agent, s.Endpoints, s.Supervisor, s.SupervisorState, s.Packets, s.QueueDrops, s.Owner, s.CapturedBy)
		if s.Recording != "" {
			fmt.Fprintf(tw, "  recording to %s\n", s.Recording)
		}
		for _, x := range s.Streams {
			fmt.Fprintf(tw, "  %s\t%s\t%s -> %s\t%s lost %d (network %d, capture %d) jitter %.2f ms\t\t%d\t\n",
				x.SSRC, x.Direction, x.Src, x.Dst, x.Codec, x.Lost, x.LostNet, x.LostCap, x.JitterMs, x.Packets)
		}
	}
	return tw.Flush()
}
