// Package cli holds what the four programs share on their command lines:
// exit codes, one-sentence errors, configuration through viper (YAML file,
// SILENTMON_ environment variables, flags) and slog set-up.
//
// Only the programs in cmd/ import it; library packages take typed Config
// structs instead.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/silentmon/silentmon/internal/version"
	"github.com/spf13/cobra"
)

// Exit codes shared by every program (DESIGN.md).
const (
	ExitOK     = 0 // success
	ExitFailed = 1 // a failed check or operation
	ExitUsage  = 2 // bad usage or configuration
)

// Error is an error that carries the process exit code.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Usagef returns an error that exits with ExitUsage.
func Usagef(format string, args ...any) error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Failf returns an error that exits with ExitFailed.
func Failf(format string, args ...any) error {
	return &Error{Code: ExitFailed, Err: fmt.Errorf(format, args...)}
}

// Usage wraps err so that it exits with ExitUsage. A nil err stays nil.
func Usage(err error) error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return err
	}
	return &Error{Code: ExitUsage, Err: err}
}

// ErrNotBuilt is returned by subcommands that exist in the command line but
// are not implemented yet; they exit with ExitUsage.
func ErrNotBuilt(name string) error {
	return Usagef("%s is not built yet in this version of silentmon", name)
}

// CodeOf returns the exit code for err: 0 for nil, the carried code for an
// *Error, ExitUsage for cobra's flag and argument errors, ExitFailed otherwise.
func CodeOf(err error) int {
	if err == nil {
		return ExitOK
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	if isCobraUsageError(err) {
		return ExitUsage
	}
	return ExitFailed
}

func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown flag", "unknown shorthand flag", "unknown command",
		"flag needs an argument", "invalid argument", "accepts ", "requires at least",
		"requires at most", "required flag", "if any flags in the group", "none of the others"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// Sentence formats err as one sentence: first letter upper-case (unless
// it begins with a program's name or a flag, kept as written), one final
// period.
func Sentence(err error) string {
	s := strings.TrimSpace(err.Error())
	if s == "" {
		return "Unknown error."
	}
	if !startsWithName(s) {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "!") && !strings.HasSuffix(s, "?") {
		s += "."
	}
	return s
}

// programNames are the words a sentence keeps in lower case when it
// starts with one: the programs' names ("smctl certs ca needs --dir").
var programNames = []string{"smserver", "smsupervisor", "smctl", "smnic"}

// startsWithName reports whether s begins with a program's name or a
// flag, which keep their spelling at the start of a sentence.
func startsWithName(s string) bool {
	if strings.HasPrefix(s, "--") {
		return true
	}
	word, _, _ := strings.Cut(s, " ")
	word = strings.TrimRight(word, ":,")
	for _, n := range programNames {
		if word == n {
			return true
		}
	}
	return false
}

// Main runs root with os.Args, prints any error to stderr as one sentence
// prefixed by the program name, and exits with its code. SIGINT and SIGTERM
// cancel the command's context, so long-running commands stop cleanly.
func Main(root *cobra.Command) {
	os.Exit(Run(root, os.Args[1:], os.Stdout, os.Stderr))
}

// Run is Main without the exit, for tests.
func Run(root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if root.Version == "" {
		// --version: a program with features to report sets Version
		// itself (version.Get().String(features...)).
		root.Version = version.Get().String()
	}
	root.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	if len(args) > 0 && args[0] == DocsArg {
		err := runDocs(root, args[1:])
		if err != nil {
			fmt.Fprintf(stderr, "%s: %s\n", root.Name(), Sentence(err))
		}
		return CodeOf(err)
	}
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return Usage(err) })
	err := root.ExecuteContext(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", root.Name(), Sentence(err))
	}
	return CodeOf(err)
}
