package service

import (
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/silentmon/silentmon/internal/testutil"
)

// TestMetricsLint (promlint, the linter testutil.GatherAndLint runs):
// what every program's registry carries from here
// (build information, the Go runtime and the process) passes promlint.
func TestMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := ListenMetrics("127.0.0.1:0", reg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	testutil.LintMetrics(t, reg)
}
