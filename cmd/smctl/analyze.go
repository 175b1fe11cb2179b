package main

import (
	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
)

func newAnalyzeCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "analyze FILE",
		Short: "Per-RTP-stream statistics of a pcap or pcapng file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.ErrNotBuilt("smctl analyze")
		},
	}
	c.Flags().Bool("json", false, "print JSON")
	return c
}
