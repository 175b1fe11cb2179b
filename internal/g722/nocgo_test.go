//go:build !cgo

package g722

import (
	"errors"
	"testing"
)

func TestNotBuilt(t *testing.T) {
	if Available() {
		t.Fatal("Available() = true without cgo")
	}
	if _, err := NewDecoder(8000); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("NewDecoder: %v, want ErrNotBuilt", err)
	}
	if _, err := NewEncoder(16000); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("NewEncoder: %v, want ErrNotBuilt", err)
	}
}
