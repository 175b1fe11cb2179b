package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	smtls "github.com/silentmon/silentmon/tls"
)

func newCertsCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "certs",
		Short: "Create and inspect certificates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Usagef("smctl certs needs a subcommand: ca, request, sign, bundle, quickstart or show")
		},
	}
	c.AddCommand(newCertsCACmd(), newCertsRequestCmd(), newCertsSignCmd(), newCertsBundleCmd(),
		newCertsQuickstartCmd(), newCertsShowCmd())
	return c
}

func newCertsQuickstartCmd() *cobra.Command {
	var (
		dir, alg, pwFile, pwEnv string
		hosts                   []string
		days                    int
		force                   bool
	)
	qs := &cobra.Command{
		Use:   "quickstart --dir DIR",
		Short: "Create a CA, a server and a client certificate for a local set-up",
		Long: `Writes a complete security directory in one step: CtiosRootCert.pem,
CtiosRoot.pem (the CA key, encrypted), CtiosServer.pem and CtiosClient.pem.
Without --password-file or --password-env, a random CA password is drawn and
written to CtiosRoot.password (mode 0600) next to the key: fine for a demo,
move both elsewhere for production.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return cli.Usagef("smctl certs quickstart needs --dir DIR")
			}
			ka, err := smtls.ParseKeyAlgorithm(alg)
			if err != nil {
				return cli.Usage(err)
			}
			var pw []byte
			if pwFile != "" || pwEnv != "" {
				if pw, err = readPassword(cmd, pwFile, pwEnv, false); err != nil {
					return err
				}
			}
			err = smtls.Quickstart(dir, smtls.QuickstartOptions{
				Hosts: hosts, Password: pw, KeyAlgorithm: ka, Days: days, Force: force,
			})
			if err != nil {
				return certsErr(err)
			}
			out := cmd.OutOrStdout()
			names := []string{smtls.RootCertFile, smtls.RootKeyFile, smtls.ServerFile, smtls.ClientFile}
			if pw == nil {
				names = append(names, smtls.QuickstartPasswordFile)
			}
			for _, n := range names {
				fmt.Fprintf(out, "wrote %s\n", filepath.Join(dir, n))
			}
			return nil
		},
	}
	f := qs.Flags()
	f.StringVar(&dir, "dir", "", "security directory to write (created if missing)")
	f.StringSliceVar(&hosts, "host", nil, "extra DNS name or IP address for the server certificate (repeatable)")
	keyAlgorithmFlag(f, &alg)
	f.IntVar(&days, "days", smtls.DefaultCertDays, "validity of the server and client certificates in days")
	f.BoolVar(&force, "force", false, "replace existing files")
	passwordFlags(f, &pwFile, &pwEnv)
	return qs
}
