package main

import (
	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
)

func newRenderCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "render FILE --out OUT.wav",
		Short: "Decode the RTP of a capture through the jitter buffer into a WAV file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.ErrNotBuilt("smctl render")
		},
	}
	c.Flags().String("out", "", "WAV file to write")
	c.Flags().StringArray("endpoint", nil, "keep only RTP to or from this endpoint")
	return c
}
