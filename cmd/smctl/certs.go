package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/password"
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
		dir, alg, pwFile, pwEnv, role, caDir string
		hosts                                []string
		days                                 int
		force                                bool
	)
	qs := &cobra.Command{
		Use:   "quickstart --dir DIR [--role capture|supervisor|client|admin|cti --ca-dir CADIR]",
		Short: "Create a CA and the certificates of every role for a local set-up, or one role's set",
		Long: `Writes a complete security directory in one step: CtiosRootCert.pem and the
role bundles. Without --role, the set of one host that runs every program:
CtiosServer.pem (roles capture and supervisor), CtiosPeer.pem (peer) and
CtiosClient.pem (client and admin), and a new CA in DIR/ca (CtiosRoot.pem, the
encrypted key, and CtiosRoot.password with a random password when none is
given): fine for a demo or a lab; move DIR/ca off the host for anything else.

With --role, the set of one host of that role, signed by the CA in --ca-dir
(or a new one): capture (CtiosServer.pem: capture; CtiosPeer.pem: peer),
supervisor (CtiosServer.pem: supervisor; CtiosClient.pem: client), client
(CtiosClient.pem: client), admin (CtiosClient.pem: client and admin) or cti
(CtiosClient.pem: client and cti, for a CTI integration that binds agents to
their devices: smctl agents bind|unbind).`,
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
			var r smtls.Role
			if role != "" {
				if r, err = smtls.ParseRole(role); err != nil {
					return cli.Usage(err)
				}
			}
			if caDir != "" && pw == nil {
				if pw, err = readPassword(cmd, pwFile, pwEnv, false); err != nil {
					return err
				}
			}
			err = smtls.Quickstart(dir, smtls.QuickstartOptions{
				Hosts: hosts, Password: pw, KeyAlgorithm: ka, Days: days, Force: force, Role: r, CADir: caDir, Strength: password.Strength,
			})
			if err != nil {
				return certsErr(err)
			}
			out := cmd.OutOrStdout()
			names := []string{smtls.RootCertFile}
			if caDir == "" {
				ca := smtls.QuickstartCADir
				names = append(names, filepath.Join(ca, smtls.RootCertFile), filepath.Join(ca, smtls.RootKeyFile))
				if pw == nil {
					names = append(names, filepath.Join(ca, smtls.QuickstartPasswordFile))
				}
			}
			for _, n := range []string{smtls.ServerFile, smtls.PeerFile, smtls.ClientFile} {
				if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
					names = append(names, n)
				}
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
	f.StringVar(&role, "role", "", "make the set of one host of this role: capture, supervisor, client, admin or cti (default: every role, for one host)")
	f.StringVar(&caDir, "ca-dir", "", "sign with the CA in this directory instead of creating one (its password as for smctl certs ca)")
	passwordFlags(f, &pwFile, &pwEnv)
	return qs
}
