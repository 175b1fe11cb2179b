package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/testutil"
)

// TestPureGo checks that smnic builds without cgo (a static binary for the
// capture appliance) and pulls in none of the audio side.
func TestPureGo(t *testing.T) {
	gobin := testutil.NeedTool(t, "go")
	cmd := exec.Command(gobin, "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list with CGO_ENABLED=0: %v\n%s", err, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		path, n, _ := strings.Cut(line, " ")
		if n != "0" {
			t.Errorf("%s has cgo files with CGO_ENABLED=0", path)
		}
		for _, bad := range []string{"/playout", "portaudio", "/relay", "/cluster"} {
			if strings.Contains(path, bad) {
				t.Errorf("smnic depends on %s", path)
			}
		}
	}
}
