//go:build !cgo

package webrtcout

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
)

// TestNoOpusBuild: without cgo the Server says once in its log that
// browsers hear PCMU at 8 kHz only, and answers an offer with Opus with
// PCMU.
func TestNoOpusBuild(t *testing.T) {
	sup := newSupervisor(t)
	startCall(t, sup, "s1")
	var log testutil.SyncBuffer
	srv, err := New(Config{Source: sup, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 2 {
		answer, err := srv.Answer(ctx, "s1", newBrowserWith(t, 1, true).offer)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(answer), "opus") || !strings.Contains(answer, "PCMU/8000") {
			t.Errorf("answer without Opus built in:\n%s", answer)
		}
	}
	if n := strings.Count(log.String(), "PCMU at 8 kHz only"); n != 1 {
		t.Errorf("log says %d times that Opus is left out, want once:\n%s", n, log.String())
	}
}
