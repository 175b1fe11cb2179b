package main

import (
	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
)

func newCertsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "Create and inspect certificates",
	}
	qs := &cobra.Command{
		Use:   "quickstart --dir DIR",
		Short: "Create a CA, a server and a client certificate for a local set-up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.ErrNotBuilt("smctl certs quickstart")
		},
	}
	qs.Flags().String("dir", "", "security directory to write")
	c.AddCommand(qs)
	return c
}
