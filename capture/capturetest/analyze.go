package capturetest

import (
	"testing"

	"github.com/silentmon/silentmon/capture"
)

// AnalyzeFile opens the capture file at path and returns capture.Analyze's
// analysis of it with the default options; it ends the test on an error.
func AnalyzeFile(t testing.TB, path string) *capture.Analysis {
	t.Helper()
	src, err := capture.OpenFile(path, capture.FileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	a, err := capture.Analyze(src, capture.AnalyzeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return a
}
