package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/password"
	smtls "github.com/silentmon/silentmon/tls"
)

// defaultPasswordEnv is read when neither --password-file nor
// --password-env is given and no terminal is available for a prompt.
const defaultPasswordEnv = "SILENTMON_CA_PASSWORD"

// passwordFlags adds --password-file and --password-env, the sources of
// the CA password that readPassword reads.
func passwordFlags(f *pflag.FlagSet, file, env *string) {
	f.StringVar(file, "password-file", "", "file whose first line is the CA password")
	f.StringVar(env, "password-env", "", "environment variable that holds the CA password")
}

// readPassword returns the CA password from file (first line), from the
// environment variable env, from SILENTMON_CA_PASSWORD, or from a prompt
// without echo on the terminal, in that order. confirm is set for a new
// CA password: it asks twice at the prompt and the password must pass
// smtls.CheckPassword (8 to 30 characters, hard enough to guess);
// otherwise the password opens an existing CA key, made perhaps before
// the strength rule, and only its length is checked. A password that
// fails is a usage error.
func readPassword(cmd *cobra.Command, file, env string, confirm bool) ([]byte, error) {
	var pw []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, cli.Usagef("password file %s does not exist", file)
			}
			return nil, cli.Usagef("password file %s cannot be read: %v", file, err)
		}
		line, _, _ := bufio.NewReader(bytes.NewReader(b)).ReadLine()
		pw = bytes.TrimRight(line, "\r")
		if len(pw) == 0 {
			return nil, cli.Usagef("password file %s is empty", file)
		}
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return nil, cli.Usagef("environment variable %s is not set", env)
		}
		pw = []byte(v)
	default:
		if v := os.Getenv(defaultPasswordEnv); v != "" {
			pw = []byte(v)
			break
		}
		fd := int(os.Stdin.Fd())
		if !term.IsTerminal(fd) {
			return nil, cli.Usagef("no CA password: give --password-file FILE, --password-env VAR or %s, or run on a terminal to be prompted", defaultPasswordEnv)
		}
		var err error
		text := "CA password: "
		if confirm {
			text = "New CA password (8 to 30 characters; a passphrase of unrelated words): "
		}
		pw, err = prompt(cmd.ErrOrStderr(), fd, text)
		if err != nil {
			return nil, err
		}
		if confirm {
			again, err := prompt(cmd.ErrOrStderr(), fd, "CA password again: ")
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(pw, again) {
				return nil, cli.Usagef("the two CA passwords differ")
			}
		}
	}
	check := smtls.CheckPasswordLength
	if confirm {
		check = func(pw []byte) error { return smtls.CheckPassword(pw, password.Strength) }
	}
	if err := check(pw); err != nil {
		return nil, cli.Usage(err)
	}
	return pw, nil
}

func prompt(w io.Writer, fd int, text string) ([]byte, error) {
	fmt.Fprint(w, text)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(w)
	if err != nil {
		return nil, cli.Failf("cannot read the password from the terminal: %v", err)
	}
	return pw, nil
}

// certsErr maps errors of package tls to exit codes: bad arguments and
// passwords (too short, too long, too easy to guess) are usage errors (2), the rest failed operations (1).
func certsErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, smtls.ErrBadArgument) || errors.Is(err, smtls.ErrPasswordLength) || errors.Is(err, smtls.ErrPasswordWeak) {
		return cli.Usage(err)
	}
	var ce *cli.Error
	if errors.As(err, &ce) {
		return err
	}
	return &cli.Error{Code: cli.ExitFailed, Err: err}
}
