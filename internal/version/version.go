// Package version says which build a program is: the module version, the
// commit it was built from and when, and the Go release, read from the
// build information the Go toolchain embeds. It is safe for concurrent
// use.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// commit and date are set by the build (make build: -ldflags -X) when
// the toolchain's own VCS stamping is off (-buildvcs=false).
var commit, date string

// Info is a program's build.
type Info struct {
	// Version is the module version ("(devel)" for a build from a
	// working tree).
	Version string
	// Commit is the VCS revision, shortened to 12 characters, with
	// "+dirty" when the tree had changes; "unknown" when the build
	// recorded none.
	Commit string
	// Date is the commit's time (RFC 3339), or "unknown".
	Date string
	// Go is the Go release that built the program.
	Go string
}

// Get returns this program's build.
func Get() Info {
	in := Info{Version: "(devel)", Commit: "unknown", Date: "unknown", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = &debug.BuildInfo{}
	}
	if v := bi.Main.Version; v != "" {
		in.Version = v
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
			if len(in.Commit) > 12 {
				in.Commit = in.Commit[:12]
			}
		case "vcs.time":
			in.Date = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && in.Commit != "unknown" {
		in.Commit += "+dirty"
	}
	if in.Commit == "unknown" && commit != "" {
		in.Commit = commit
	}
	if in.Date == "unknown" && date != "" {
		in.Date = date
	}
	return in
}

// String is the line --version prints after the program's name: the
// version, commit, date and Go release, then features (what is built in
// or left out, such as "G.729 yes").
func (in Info) String(features ...string) string {
	s := fmt.Sprintf("%s (commit %s, %s, %s)", in.Version, in.Commit, in.Date, in.Go)
	if len(features) > 0 {
		s += "; " + strings.Join(features, ", ")
	}
	return s
}
