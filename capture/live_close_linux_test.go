//go:build linux

package capture

import (
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/silentmon/silentmon/internal/testutil"
)

// openLoopback opens a one-worker capture on the loopback interface, or
// skips without root.
func openLoopback(t *testing.T) (*Live, *LiveSource) {
	t.Helper()
	testutil.NeedRoot(t)
	live, err := OpenLive(LiveConfig{Interface: "lo", NoPromiscuous: true, BlockSize: 1 << 16, NumBlocks: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	return live, live.Sources()[0]
}

// ownSocket reports whether fd is still an AF_PACKET socket, as the
// source's is: a closed descriptor, or a number the system gave to another
// file, is not.
func ownSocket(fd int) bool {
	dom, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	return err == nil && dom == unix.AF_PACKET
}

// TestStatsCloseInTheMiddle closes the source while its statistics are
// being read, then opens files that would take the freed descriptor
// number, and checks that the read still reached the source's own socket,
// and that reads after the close reach no descriptor at all.
func TestStatsCloseInTheMiddle(t *testing.T) {
	live, s := openLoopback(t)
	calls, foreign := 0, 0
	s.getStats = func(fd int) (*unix.TpacketStatsV3, error) {
		if calls == 0 {
			if err := s.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
			for i := 0; i < 4; i++ {
				f, err := os.Open(os.DevNull)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
			}
		}
		calls++
		if !ownSocket(fd) {
			foreign++
		}
		return packetStats(fd)
	}
	live.Stats() // closes the source in the middle of its read
	live.Stats() // after Close
	if foreign != 0 {
		t.Errorf("%d of %d statistics reads reached a descriptor that was no longer the capture socket", foreign, calls)
	}
	if calls != 1 {
		t.Errorf("%d statistics reads; want 1 (none after Close)", calls)
	}
}

// TestStatsWhileClosing polls the statistics from one goroutine while a
// ReadBatch waits in another and a third closes the capture (run it with
// the race detector): every read reaches the capture socket, and the
// blocked ReadBatch returns net.ErrClosed.
func TestStatsWhileClosing(t *testing.T) {
	const rounds = 20
	for r := 0; r < rounds; r++ {
		live, s := openLoopback(t)
		var calls, foreign atomic.Int64
		s.getStats = func(fd int) (*unix.TpacketStatsV3, error) {
			calls.Add(1)
			if !ownSocket(fd) {
				foreign.Add(1)
			}
			return packetStats(fd)
		}
		closed := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				live.Stats()
				select {
				case <-closed:
					live.Stats()
					return
				default:
				}
			}
		}()
		var readErr error
		go func() {
			defer wg.Done()
			frames, infos := make([][]byte, 8), make([]Info, 8)
			for {
				if _, readErr = s.ReadBatch(frames, infos); readErr != nil {
					return
				}
			}
		}()
		// Descriptors opened and closed around the Close, so a freed
		// number is reused at once.
		var files []*os.File
		live.Close()
		for i := 0; i < 4; i++ {
			f, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
		close(closed)
		wg.Wait()
		for _, f := range files {
			f.Close()
		}
		if !errors.Is(readErr, net.ErrClosed) {
			t.Fatalf("round %d: ReadBatch returned %v after Close; want net.ErrClosed", r, readErr)
		}
		if n := foreign.Load(); n != 0 {
			t.Fatalf("round %d: %d of %d statistics reads reached a descriptor that was no longer the capture socket", r, n, calls.Load())
		}
	}
}
