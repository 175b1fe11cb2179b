// Command smnic is silentmon's NIC qualification test: it checks that a
// network card hands 802.1Q-tagged voice frames to the capture stack, with
// the tag in the frame or reported out of band, and says why when it does
// not. It replaces the original product's manual hub-and-WinDump procedure.
//
//	smnic listen --interface IF [--vlan 85] [--count 5] [--timeout 10s] [--json]
//	smnic send --interface IF [--dst-mac MAC] [--vlan 85] [--priority 5] [--count 5] [--interval 100ms] [--pcap FILE]
//	smnic selftest --tx IF --rx IF [--json]
//
// Exit status: 0 PASS, 1 FAIL (or a failed operation), 2 bad usage.
package main

import (
	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
)

func main() { cli.Main(newRootCmd()) }

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "smnic",
		Short: "Qualify a NIC for VLAN capture: send, listen for and diagnose 802.1Q frames",
		Long: `smnic checks that a network card passes 802.1Q-tagged frames (VLAN 85 by
default, as the original procedure's sample) to the capture stack, with the tag
in the frame or reported by the kernel out of band, and tells why it fails.
Exit status: 0 PASS, 1 FAIL, 2 bad usage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cli.Usagef("smnic needs a subcommand: listen, send or selftest")
		},
	}
	root.AddCommand(newListenCmd(), newSendCmd(), newSelftestCmd())
	return root
}
