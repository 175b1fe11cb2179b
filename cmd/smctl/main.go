// Command smctl is silentmon's control and analysis tool: start and stop
// monitor sessions, show a server's status and the audit trail, analyze
// and render captures, and manage certificates.
package main

import (
	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/version"
	"github.com/silentmon/silentmon/playout"
)

func main() { cli.Main(newRootCmd()) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:     "smctl",
		Version: version.Get().String(playout.Features()...),
		Short:   "Control silentmon servers, analyze captures, manage certificates",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cli.Usagef("smctl needs a subcommand: monitor, status, agents, audit, analyze, render or certs")
		},
	}
	root.AddCommand(newMonitorCmd(), newStatusCmd(), newAgentsCmd(), newAuditCmd(), newAnalyzeCmd(), newRenderCmd(), newCertsCmd())
	return root
}
