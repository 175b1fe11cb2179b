package testutil

import (
	"net"
	"sync"
	"testing"
)

// handedOut holds the addresses FreeAddr returned in this test binary.
var handedOut sync.Map // "host:port" -> struct{}

// FreeAddr returns host:port with a TCP port that was free on host a
// moment ago and that no earlier call in this test binary returned. The
// port is closed again before the caller binds it, and the kernel may give
// the same free port to the next caller in that moment: without the set,
// two addresses of one test (a listener and its metrics) could be equal.
// It is safe for concurrent use.
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, dup := handedOut.LoadOrStore(addr, struct{}{}); !dup {
			return addr
		}
	}
	t.Fatalf("no port on %s that was not handed out already, in 100 tries", host)
	return ""
}
