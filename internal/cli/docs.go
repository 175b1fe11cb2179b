package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/silentmon/silentmon/internal/version"
)

// DocsArg is the hidden first argument that makes Run write the program's
// manual pages and shell completions instead of running it:
//
//	smctl __generate-docs DIR
//
// The packages and make install use it; it is not in --help.
const DocsArg = "__generate-docs"

// ErrDocsUsage is returned when DocsArg is not followed by exactly one
// directory.
var ErrDocsUsage = errors.New("__generate-docs needs exactly one argument, the output directory")

// GenerateDocs writes root's manual pages and shell completions under dir:
//
//	dir/man/man1/<program>.1, <program>-<sub>.1, ... (section 1)
//	dir/completion/bash/<program>
//	dir/completion/zsh/_<program>
//	dir/completion/fish/<program>.fish
//
// The pages' source is "silentmon <version>" (the commit for a build from
// a working tree); their date is
// SOURCE_DATE_EPOCH when set, else the commit's date, else today, so that
// a rebuild of one commit gives the same pages. Hidden commands are left
// out.
func GenerateDocs(root *cobra.Command, dir string) error {
	name := root.Name()
	manDir := filepath.Join(dir, "man", "man1")
	bashDir := filepath.Join(dir, "completion", "bash")
	zshDir := filepath.Join(dir, "completion", "zsh")
	fishDir := filepath.Join(dir, "completion", "fish")
	for _, d := range []string{manDir, bashDir, zshDir, fishDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("cannot create the documentation directory %s: %w", d, err)
		}
	}
	date := docsDate()
	header := &doc.GenManHeader{
		Section: "1",
		Source:  "silentmon " + docsVersion(version.Get()),
		Manual:  "silentmon manual",
		Date:    &date,
	}
	// No "auto generated on DATE" line: a rebuild gives the same pages.
	root.DisableAutoGenTag = true
	if err := doc.GenManTree(root, header, manDir); err != nil {
		return fmt.Errorf("cannot write the manual pages of %s into %s: %w", name, manDir, err)
	}
	for _, c := range []struct {
		path string
		gen  func(f *os.File) error
	}{
		{filepath.Join(bashDir, name), func(f *os.File) error { return root.GenBashCompletionV2(f, true) }},
		{filepath.Join(zshDir, "_"+name), func(f *os.File) error { return root.GenZshCompletion(f) }},
		{filepath.Join(fishDir, name+".fish"), func(f *os.File) error { return root.GenFishCompletion(f, true) }},
	} {
		if err := writeFile(c.path, c.gen); err != nil {
			return fmt.Errorf("cannot write the shell completion %s: %w", c.path, err)
		}
	}
	return nil
}

func writeFile(path string, gen func(f *os.File) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := gen(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// docsVersion is the version the pages' source names: the module
// version of a release, the commit of a build from a working tree.
func docsVersion(in version.Info) string {
	if in.Version == "(devel)" && in.Commit != "unknown" {
		return in.Commit
	}
	return in.Version
}

// docsDate is the date printed in the manual pages.
func docsDate() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	if t, err := time.Parse(time.RFC3339, version.Get().Date); err == nil {
		return t.UTC()
	}
	return time.Now().UTC()
}

// runDocs handles DocsArg for Run: args are what follows it.
func runDocs(root *cobra.Command, args []string) error {
	if len(args) != 1 || args[0] == "" {
		return Usage(ErrDocsUsage)
	}
	return GenerateDocs(root, args[0])
}
