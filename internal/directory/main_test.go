package directory

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (the
// Watcher's poller).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
