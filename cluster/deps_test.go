package cluster

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies keeps the import direction of DESIGN.md: cluster uses
// filter and tls, never relay, playout, bench or a program, and needs no
// cgo.
func TestDependencies(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "list", "-deps", "github.com/silentmon/silentmon/cluster")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, bad := range []string{"/relay", "/playout", "/bench", "/cmd/", "/internal/cli"} {
			if strings.HasPrefix(pkg, "github.com/silentmon/silentmon") && strings.Contains(pkg, bad) {
				t.Errorf("cluster depends on %s", pkg)
			}
		}
	}
}
