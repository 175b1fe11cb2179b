package nic

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them (the
// selftest's sender, the namespace helpers).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
