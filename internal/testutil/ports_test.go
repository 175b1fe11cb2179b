package testutil

import (
	"net"
	"testing"
)

// TestFreeAddrNeverRepeats asserts that FreeAddr never returns an address
// twice, although the kernel reuses a closed port readily, and that each
// address can be bound.
func TestFreeAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 300 {
		a := FreeAddr(t, "127.0.0.1")
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice", a)
		}
		seen[a] = true
	}
	ln, err := net.Listen("tcp", FreeAddr(t, "127.0.0.1"))
	if err != nil {
		t.Fatalf("binding a free address: %v", err)
	}
	ln.Close()
}
