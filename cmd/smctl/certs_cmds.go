package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/password"
	smtls "github.com/silentmon/silentmon/tls"
)

func newCertsCACmd() *cobra.Command {
	var (
		dir, alg, cn, pwFile, pwEnv string
		days                        int
		force                       bool
	)
	c := &cobra.Command{
		Use:   "ca --dir DIR",
		Short: "Create a self-signed CA: CtiosRootCert.pem and CtiosRoot.pem (encrypted key)",
		Long: `Creates a self-signed certificate authority in DIR: CtiosRootCert.pem (the
public certificate, mode 0644) and CtiosRoot.pem (its private key, encrypted
PKCS#8 with PBKDF2-HMAC-SHA256 and AES-256-CBC, mode 0600). The password has
8 to 30 characters and comes from --password-file, --password-env VAR,
SILENTMON_CA_PASSWORD or a prompt without echo; never from a plain flag.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return cli.Usagef("smctl certs ca needs --dir DIR")
			}
			ka, err := smtls.ParseKeyAlgorithm(alg)
			if err != nil {
				return cli.Usage(err)
			}
			if err := checkDaysFlag(days); err != nil {
				return err
			}
			pw, err := readPassword(cmd, pwFile, pwEnv, true)
			if err != nil {
				return err
			}
			if err := mkdir(dir); err != nil {
				return err
			}
			ca, err := smtls.CreateCA(dir, smtls.CAOptions{CommonName: cn, KeyAlgorithm: ka, Days: days, Password: pw, Force: force, Strength: password.Strength})
			if err != nil {
				return certsErr(err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s\nwrote %s\n", filepath.Join(dir, smtls.RootCertFile), filepath.Join(dir, smtls.RootKeyFile))
			fmt.Fprintf(out, "fingerprint %s\n", smtls.Fingerprint(ca.Cert.Raw))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "dir", "", "directory to write the CA files to (created if missing)")
	keyAlgorithmFlag(f, &alg)
	f.StringVar(&cn, "cn", "silentmon CA", "common name of the CA")
	f.IntVar(&days, "days", smtls.DefaultCADays, "validity in days")
	f.BoolVar(&force, "force", false, "replace existing files")
	passwordFlags(f, &pwFile, &pwEnv)
	return c
}

func newCertsRequestCmd() *cobra.Command {
	var (
		dir, role, cn, alg string
		hosts              []string
		force              bool
	)
	c := &cobra.Command{
		Use:   "request --dir DIR --role ROLE[,ROLE] --cn NAME [--host NAME_OR_IP]...",
		Short: "Create a private key and a certificate request for a role",
		Long: `Creates a private key (mode 0600) and a certificate request in DIR, named as in
the original product: CtiosServerKey.pem and CtiosServerReq.pem for a capture
server or a supervisor service, CtiosClientkey.pem and CtiosClientreq.pem for a
client, an administrator or a CTI integration, CtiosPeerKey.pem and CtiosPeerReq.pem for a cluster
peer. The request asks for the role (a URI SAN silentmon:role/ROLE) and the
extended key usages it needs. Roles: capture, supervisor, peer, client, admin,
cti;
several may be joined with commas. --host adds a DNS name or IP address to the
request's subject alternative names (repeatable).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return cli.Usagef("smctl certs request needs --dir DIR")
			}
			if role == "" {
				return cli.Usagef("smctl certs request needs --role capture, supervisor, peer, client, admin or cti")
			}
			r, err := smtls.ParseRoles(role)
			if err != nil {
				return cli.Usage(err)
			}
			if cn == "" {
				return cli.Usagef("smctl certs request needs --cn NAME")
			}
			ka, err := smtls.ParseKeyAlgorithm(alg)
			if err != nil {
				return cli.Usage(err)
			}
			if err := mkdir(dir); err != nil {
				return err
			}
			kp, rp, err := smtls.CreateRequest(dir, smtls.RequestOptions{Roles: r, CommonName: cn, Hosts: hosts, KeyAlgorithm: ka, Force: force})
			if err != nil {
				return certsErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nwrote %s\n", kp, rp)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&dir, "dir", "", "directory to write the key and request to (created if missing)")
	f.StringVar(&role, "role", "", "capture, supervisor, peer, client, admin or cti (comma-separated for several)")
	f.StringVar(&cn, "cn", "", "common name")
	f.StringSliceVar(&hosts, "host", nil, "DNS name or IP address for the subject alternative names (repeatable)")
	keyAlgorithmFlag(f, &alg)
	f.BoolVar(&force, "force", false, "replace existing files")
	return c
}

func newCertsSignCmd() *cobra.Command {
	var (
		caDir, req, out, role, pwFile, pwEnv string
		days                                 int
		force                                bool
	)
	c := &cobra.Command{
		Use:   "sign --ca-dir DIR --request FILE --out FILE [--days N]",
		Short: "Sign a certificate request with the CA",
		Long: `Signs a certificate request (made by smctl certs request, openssl req or any
other tool) with the CA in --ca-dir (CtiosRootCert.pem and CtiosRoot.pem; the
password as for smctl certs ca). The certificate gets the roles of --role, else
those the request asks for, as URI SANs silentmon:role/ROLE with the extended
key usages they need. Other subject alternative names are carried from the
request.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case caDir == "":
				return cli.Usagef("smctl certs sign needs --ca-dir DIR")
			case req == "":
				return cli.Usagef("smctl certs sign needs --request FILE")
			case out == "":
				return cli.Usagef("smctl certs sign needs --out FILE")
			}
			var r []smtls.Role
			if role != "" {
				var err error
				if r, err = smtls.ParseRoles(role); err != nil {
					return cli.Usage(err)
				}
			}
			if err := checkDaysFlag(days); err != nil {
				return err
			}
			if _, err := os.Stat(req); err != nil {
				return cli.Usagef("certificate request %s does not exist", req)
			}
			pw, err := readPassword(cmd, pwFile, pwEnv, false)
			if err != nil {
				return err
			}
			ca, err := smtls.LoadCA(caDir, pw)
			if err != nil {
				return certsErr(err)
			}
			cert, err := smtls.SignFile(ca, req, out, smtls.SignOptions{Roles: r, Days: days}, force)
			if err != nil {
				return certsErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nfingerprint %s\n", out, smtls.Fingerprint(cert.Raw))
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&caDir, "ca-dir", "", "directory holding CtiosRootCert.pem and CtiosRoot.pem")
	f.StringVar(&req, "request", "", "certificate request file (PEM)")
	f.StringVar(&out, "out", "", "certificate file to write")
	f.IntVar(&days, "days", smtls.DefaultCertDays, "validity in days")
	f.StringVar(&role, "role", "", "capture, supervisor, peer, client, admin or cti, comma-separated (default: from the request)")
	f.BoolVar(&force, "force", false, "replace an existing output file")
	passwordFlags(f, &pwFile, &pwEnv)
	return c
}

func newCertsBundleCmd() *cobra.Command {
	var (
		certF, keyF, out string
		force            bool
	)
	c := &cobra.Command{
		Use:   "bundle --cert FILE --key FILE --out FILE",
		Short: "Write a certificate and its key into one file (CtiosServer.pem, CtiosClient.pem)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case certF == "":
				return cli.Usagef("smctl certs bundle needs --cert FILE")
			case keyF == "":
				return cli.Usagef("smctl certs bundle needs --key FILE")
			case out == "":
				return cli.Usagef("smctl certs bundle needs --out FILE")
			}
			leaf, err := smtls.Bundle(certF, keyF, out, force)
			if err != nil {
				return certsErr(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s)\n", out, leaf.Subject.CommonName)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&certF, "cert", "", "certificate file (PEM)")
	f.StringVar(&keyF, "key", "", "private key file (PEM)")
	f.StringVar(&out, "out", "", "bundle file to write (mode 0600)")
	f.BoolVar(&force, "force", false, "replace an existing output file")
	return c
}

func newCertsShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show FILE",
		Short: "Show subject, issuer, SANs, usages, validity and fingerprint of the certificates in FILE",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			certs, err := smtls.ReadCertificates(args[0])
			if err != nil {
				return certsErr(err)
			}
			out := cmd.OutOrStdout()
			now := time.Now()
			for i, c := range certs {
				if i > 0 {
					fmt.Fprintln(out)
				}
				fmt.Fprint(out, smtls.Describe(c, now))
			}
			return nil
		},
	}
}

// keyAlgorithmFlag adds --key-algorithm, read with smtls.ParseKeyAlgorithm.
func keyAlgorithmFlag(f *pflag.FlagSet, alg *string) {
	f.StringVar(alg, "key-algorithm", string(smtls.ECDSAP256), "key algorithm: ecdsa-p256, rsa-2048 or rsa-3072")
}

func checkDaysFlag(days int) error {
	if days < 1 || days > 36500 {
		return cli.Usagef("--days %d is out of range; use 1 to 36500", days)
	}
	return nil
}

func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cli.Failf("cannot create directory %s: %v", dir, err)
	}
	return nil
}
