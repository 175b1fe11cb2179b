package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/version"
)

// docsTree is a small program: a root that must not run, a subcommand
// with a known flag and a hidden command.
func docsTree(ran *bool) *cobra.Command {
	root := &cobra.Command{
		Use:   "prog",
		Short: "A program",
		RunE:  func(*cobra.Command, []string) error { *ran = true; return nil },
	}
	sub := &cobra.Command{
		Use:   "sub",
		Short: "A subcommand",
		RunE:  func(*cobra.Command, []string) error { *ran = true; return nil },
	}
	sub.Flags().String("known-flag", "", "a flag the manual page must mention")
	hidden := &cobra.Command{Use: "secret", Hidden: true, RunE: sub.RunE}
	root.AddCommand(sub, hidden)
	return root
}

// TestGenerateDocsArg: the hidden first argument writes section 1 manual
// pages for the program and each visible subcommand (with its flags and
// "silentmon" as source) and bash, zsh and fish completions, without
// running the program.
func TestGenerateDocsArg(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1764633600") // 2025-12-02
	dir := t.TempDir()
	ran := false
	var stdout, stderr bytes.Buffer
	if code := Run(docsTree(&ran), []string{DocsArg, dir}, &stdout, &stderr); code != ExitOK {
		t.Fatalf("Run(%s) = %d, stderr %q", DocsArg, code, stderr.String())
	}
	if ran {
		t.Fatal("the program ran instead of writing its documentation")
	}
	read := func(rel string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatalf("%s was not written: %v", rel, err)
		}
		if len(b) == 0 {
			t.Fatalf("%s is empty", rel)
		}
		return string(b)
	}
	root := read("man/man1/prog.1")
	for _, want := range []string{`.TH "PROG" "1" "Dec 2025" "silentmon `, "prog-sub(1)"} {
		if !strings.Contains(root, want) {
			t.Errorf("prog.1 lacks %q:\n%s", want, root)
		}
	}
	if sub := read("man/man1/prog-sub.1"); !strings.Contains(sub, "--known-flag") {
		t.Errorf("prog-sub.1 does not mention --known-flag:\n%s", sub)
	}
	if _, err := os.Stat(filepath.Join(dir, "man/man1/prog-secret.1")); err == nil {
		t.Error("the hidden command got a manual page")
	}
	if b := read("completion/bash/prog"); !strings.Contains(b, "__start_prog") {
		t.Errorf("the bash completion does not define __start_prog:\n%.300s", b)
	}
	if z := read("completion/zsh/_prog"); !strings.HasPrefix(z, "#compdef prog") {
		t.Errorf("the zsh completion does not start with #compdef prog:\n%.300s", z)
	}
	if f := read("completion/fish/prog.fish"); !strings.Contains(f, "complete -c prog") {
		t.Errorf("the fish completion does not complete prog:\n%.300s", f)
	}
}

// TestGenerateDocsUsage: the hidden argument without exactly one
// directory is bad usage, said in one sentence, and runs nothing.
func TestGenerateDocsUsage(t *testing.T) {
	for _, args := range [][]string{{DocsArg}, {DocsArg, "a", "b"}, {DocsArg, ""}} {
		ran := false
		var stdout, stderr bytes.Buffer
		code := Run(docsTree(&ran), args, &stdout, &stderr)
		if code != ExitUsage || ran {
			t.Errorf("Run(%q) = %d, ran %v; want %d without running", args, code, ran, ExitUsage)
		}
		if want := "prog: __generate-docs needs exactly one argument, the output directory.\n"; stderr.String() != want {
			t.Errorf("Run(%q) stderr = %q, want %q", args, stderr.String(), want)
		}
	}
}

// TestDocsVersion: the pages name a release by its version and a build
// from a working tree by its commit.
func TestDocsVersion(t *testing.T) {
	for _, tc := range []struct {
		in   version.Info
		want string
	}{
		{version.Info{Version: "v1.2.0", Commit: "e724f9dfd612"}, "v1.2.0"},
		{version.Info{Version: "(devel)", Commit: "e724f9dfd612"}, "e724f9dfd612"},
		{version.Info{Version: "(devel)", Commit: "unknown"}, "(devel)"},
	} {
		if got := docsVersion(tc.in); got != tc.want {
			t.Errorf("docsVersion(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
