//go:build !cgo

package resample

import (
	"errors"
	"testing"
)

// TestNotBuilt: without cgo, New says the resampler is left out.
func TestNotBuilt(t *testing.T) {
	if Available() {
		t.Fatal("Available() = true without cgo")
	}
	if _, err := New(8000, 16000, 1); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("New = %v, want ErrNotBuilt", err)
	}
}
