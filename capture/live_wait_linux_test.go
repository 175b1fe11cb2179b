//go:build linux

package capture_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/testutil"
)

// osThreads returns the number of OS threads of this process.
func osThreads(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// TestLiveWaitHoldsNoThread checks that readers waiting for the ring park
// in the runtime's network poller instead of each holding an OS thread in
// a blocking poll: with 32 workers waiting on an idle interface, the
// process has fewer threads than workers. Close still wakes every one of
// them, with net.ErrClosed.
func TestLiveWaitHoldsNoThread(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip")
	const workers = 32
	v := testutil.NewVethPair(t, "smw")
	var live *capture.Live
	if err := testutil.InNetns(v.NsRx, func() (err error) {
		live, err = capture.OpenLive(capture.LiveConfig{Interface: v.IfRx, Workers: workers, BlockSize: 1 << 16, NumBlocks: 2})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	done := make(chan error, workers)
	for _, s := range live.Sources() {
		go func(s *capture.LiveSource) {
			frames, infos := make([][]byte, 4), make([]capture.Info, 4)
			for {
				if _, err := s.ReadBatch(frames, infos); err != nil {
					done <- err
					return
				}
			}
		}(s)
	}
	// Wait until every reader is inside its wait for a block (not a
	// timing: the count is of stacks, and the bound only stops a hang).
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(10 * time.Second); ; {
		n := runtime.Stack(buf, true)
		if bytes.Count(buf[:n], []byte("capture.(*LiveSource).wait(")) >= workers {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the %d readers did not all reach their wait", workers)
		}
		time.Sleep(time.Millisecond)
	}
	if n := osThreads(t); n >= workers {
		t.Errorf("%d OS threads with %d readers waiting: each waiting reader holds a thread", n, workers)
	}
	live.Close()
	for i := 0; i < workers; i++ {
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Close woke %d of %d readers", i, workers)
		}
	}
}
