package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// ALSAFileDevice points ALSA's default device at a file for the rest of
// the test (through ALSA_CONFIG_PATH): the samples played to it are
// appended, raw, to the file whose path it returns, and a null device
// paces them. It skips the test when alsa-utils (the ALSA plugins) is
// not installed.
func ALSAFileDevice(t *testing.T) string {
	t.Helper()
	NeedTool(t, "aplay")
	dir := t.TempDir()
	raw := filepath.Join(dir, "out.raw")
	conf := filepath.Join(dir, "asound.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`pcm.!default { type file; slave.pcm { type null }; file %q; format "raw" }
`, raw)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("ALSA_CONFIG_PATH", conf)
	return raw
}

// childEnv marks the child process InChild starts.
const childEnv = "SILENTMON_TEST_CHILD"

// InChild runs the calling test again, alone, in a child process of the
// test binary, and reports whether the caller is that child. In the
// parent it returns only after the child has ended, having logged the
// child's output and failed or skipped as the child did; the caller then
// returns. In the child it returns true and the test goes on. Tests of
// the PortAudio binding need it under the race detector, whose pointer
// checks reject the binding's stream handles for any stream but a
// process's first.
func InChild(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+regexp.QuoteMeta(t.Name())+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.Name())
	out, err := cmd.CombinedOutput()
	t.Logf("child process:\n%s", out)
	if err != nil {
		t.Fatalf("the child process failed: %v", err)
	}
	if strings.Contains(string(out), "--- SKIP") {
		t.Skip("skipping: the child process skipped")
	}
	return false
}
