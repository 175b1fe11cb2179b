//go:build !cgo

package g729

import (
	"errors"
	"testing"
)

func TestNotBuilt(t *testing.T) {
	if Available() {
		t.Fatal("Available() = true without cgo")
	}
	if _, err := NewDecoder(); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("NewDecoder: %v, want ErrNotBuilt", err)
	}
	if _, err := NewEncoder(true); !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("NewEncoder: %v, want ErrNotBuilt", err)
	}
}
