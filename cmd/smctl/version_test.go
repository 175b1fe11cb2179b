package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/playout"
)

// TestVersion: smctl --version prints one line: the program, its version
// and commit, the Go release, and whether G.729 and PortAudio are built
// in; exit 0.
func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	code := cli.Run(newRootCmd(), []string{"--version"}, &out, &errb)
	line := strings.TrimSpace(out.String())
	if code != 0 || !strings.HasPrefix(line, "smctl ") || strings.Count(out.String(), "\n") != 1 ||
		!strings.Contains(line, "(commit ") || !strings.Contains(line, "go1.") {
		t.Fatalf("smctl --version: exit %d, %q %q", code, out.String(), errb.String())
	}
	for _, f := range playout.Features() {
		if !strings.Contains(line, f) {
			t.Errorf("smctl --version %q does not say %q", line, f)
		}
	}
}
