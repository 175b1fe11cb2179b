package main

import (
	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
)

func newMonitorCmd() *cobra.Command {
	c := &cobra.Command{Use: "monitor", Short: "Start and stop monitor sessions"}
	c.AddCommand(&cobra.Command{Use: "start", RunE: func(*cobra.Command, []string) error { return cli.ErrNotBuilt("smctl monitor start") }})
	return c
}

func newStatusCmd() *cobra.Command {
	return &cobra.Command{Use: "status", RunE: func(*cobra.Command, []string) error { return cli.ErrNotBuilt("smctl status") }}
}
