package captureserver

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: every
// goroutine Run or a server starts must end with it.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
