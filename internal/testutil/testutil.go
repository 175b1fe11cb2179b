// Package testutil holds helpers shared by the project's tests: skipping
// cleanly when a test needs root or a tool that is missing.
package testutil

import (
	"os"
	"os/exec"
	"testing"
)

// NeedRoot skips t with a clear message unless the test runs as root.
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: this test needs root (network namespaces, AF_PACKET); run as root or in CI")
	}
}

// NeedTool skips t with a clear message unless every named program is on
// PATH, and returns the path of the first one.
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	var first string
	for i, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			t.Skipf("skipping: this test needs %s on PATH (make deps installs it)", n)
		}
		if i == 0 {
			first = p
		}
	}
	return first
}
