package service

import (
	"errors"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"testing"
)

// A taken 42228 address says what to do, and still unwraps to
// EADDRINUSE (smsupervisor's console relies on it for its own address).
func TestListenAddressInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	_, err = Listen(ListenConfig{Addr: addr, Insecure: true, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Fatal("Listen on a taken address succeeded")
	}
	want := `listen address "` + addr + `" is taken by another process (on one host smserver and smsupervisor cannot share a port): give --listen another address, or stop that process`
	if err.Error() != want {
		t.Errorf("error = %q\nwant    %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v does not unwrap to EADDRINUSE", err)
	}
	if _, err := Listen(ListenConfig{Addr: "127.0.0.1:99999", Insecure: true, Logger: slog.New(slog.DiscardHandler)}); err == nil || strings.Contains(err.Error(), "taken") {
		t.Errorf("a bad port gave %v", err)
	}
}
