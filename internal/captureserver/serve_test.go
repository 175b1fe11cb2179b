package captureserver

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/relay"
)

// runConfig is an smserver replaying file on loopback ports chosen by the
// system, in plaintext.
func runConfig(t *testing.T, file string) *Config {
	t.Helper()
	cfg := &Config{Pcap: file, RecordDir: t.TempDir(), ClusterListen: "127.0.0.1:0",
		HeartbeatIntv: time.Second, HeartbeatRetry: 3, QueueLen: 64, SupervisorGrace: time.Minute}
	cfg.Listen, cfg.MetricsListen, cfg.Insecure, cfg.Name = "127.0.0.1:0", "127.0.0.1:0", true, "start-1"
	cfg.HeartbeatTmo, cfg.LogLevel, cfg.LogFormat = 3*time.Second, "error", "text"
	return cfg
}

// hammer asks for /metrics, /healthz and the relay status in a loop from
// the moment the ports listen until stop is closed.
func hammer(t *testing.T, relayAddr, metricsAddr net.Addr, stop <-chan struct{}, wg *sync.WaitGroup) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, path := range []string{"/metrics", "/healthz"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if r, err := hc.Get("http://" + metricsAddr.String() + path); err == nil {
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { <-stop; cancel() }()
		for ctx.Err() == nil {
			cl, err := relay.Dial(ctx, relay.ClientConfig{Servers: []string{relayAddr.String()}, Name: "hammer",
				Logger: slog.New(slog.DiscardHandler), RequestTimeout: 5 * time.Second})
			if err != nil {
				continue
			}
			cl.Status(ctx)
			cl.Close()
		}
	}()
}

// TestStartupServesComplete: /metrics, /healthz and the relay port are hit
// from the moment they listen; under the race detector, nothing they read
// (forwarder, workers, cluster node) may be set after they serve.
func TestStartupServesComplete(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cluster bool
	}{{"standalone", false}, {"cluster", true}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := runConfig(t, filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap"))
			cfg.Cluster = tc.cluster
			stop := make(chan struct{})
			var wg sync.WaitGroup
			hammering := make(chan struct{})
			cfg.listening = func(r, m net.Addr) { hammer(t, r, m, stop, &wg); close(hammering) }
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- Run(ctx, cfg, io.Discard, io.Discard) }()
			select {
			case <-hammering:
			case err := <-done:
				t.Fatalf("run before listening: %v", err)
			}
			time.Sleep(500 * time.Millisecond)
			close(stop)
			wg.Wait()
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
		})
	}
}

// failingSource fails each ReadBatch by its script: an error, a panic
// ("panic"), or io.EOF once the script is over.
type failingSource struct {
	script []string
	calls  atomic.Int32
}

func (f *failingSource) ReadBatch([][]byte, []capture.Info) (int, error) {
	n := int(f.calls.Add(1))
	if n > len(f.script) {
		return 0, io.EOF
	}
	if f.script[n-1] == "panic" {
		var m map[string]int
		m["x"]++ // a nil map write: a real runtime panic
	}
	return 0, errors.New(f.script[n-1])
}
func (f *failingSource) LinkType() capture.LinkType { return capture.LinkType(1) }
func (f *failingSource) Close() error               { return nil }

// TestWorkerRestarts: a worker that fails (an error or a panic) is
// restarted with back-off up to its limit, then gives up with an error
// that names it; health reports it while it is down and after it failed.
func TestWorkerRestarts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		script   []string
		restarts int
		wantErr  string // "" : supervise returns nil
		wantRuns int32
	}{
		{"error then recovers", []string{"read: network is down"}, 3, "", 2},
		{"panic then recovers", []string{"panic"}, 3, "", 2},
		{"gives up", []string{"e1", "panic", "e3"}, 2, "capture worker eth9#0 failed 3 times in a row, the last time: e3", 3},
		{"no restart", []string{"panic"}, 0, "panic: assignment to entry in nil map", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, t.TempDir())
			src := &failingSource{script: tc.script}
			w := newWorker(ts.server, src, "eth9#0", nil)
			ts.workers = []*worker{w}
			done := make(chan error, 1)
			go func() { done <- w.supervise(context.Background(), false, tc.restarts) }()
			if tc.restarts > 0 {
				waitUntil(t, "health reports the worker down", func() bool {
					err := ts.health()
					return err != nil && strings.Contains(err.Error(), "capture worker eth9#0 is down (restart 1 of")
				})
			}
			err := <-done
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || err.Error() != tc.wantErr) {
				t.Fatalf("supervise = %v, want %q", err, tc.wantErr)
			}
			if n := src.calls.Load(); n != tc.wantRuns {
				t.Errorf("ReadBatch called %d times", n)
			}
			h := ts.health()
			switch {
			case tc.wantErr == "" && h != nil:
				t.Errorf("health after recovery: %v", h)
			case tc.wantErr != "" && (h == nil || !strings.Contains(h.Error(), "capture worker eth9#0 failed")):
				t.Errorf("health after giving up: %v", h)
			}
		})
	}
}

// writePcap writes an Ethernet pcap of RTP frames at the given offsets
// from its first frame.
func writePcap(t *testing.T, offsets ...time.Duration) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gap.pcap")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, off := range offsets {
		frame := make([]byte, 60)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: t0.Add(off), CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// TestPacedReplayStopsInGap: a replay at the recorded pace that waits
// for a frame an hour away stops within 100 ms of the context's end.
func TestPacedReplayStopsInGap(t *testing.T) {
	cfg := runConfig(t, writePcap(t, 0, time.Hour))
	cfg.PcapSpeed = 1
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, io.Discard, io.Discard) }()
	time.Sleep(300 * time.Millisecond) // the first frame is read, the second waited for
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("run returned %v after the cancel, want at most 100 ms", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run still waits for the frame an hour away 5 s after the cancel")
	}
}

// TestBadCaptureFailsRun: a capture whose second record is unreadable
// ends run with exit 1 and one sentence naming the file.
func TestBadCaptureFailsRun(t *testing.T) {
	p := writePcap(t, 0)
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A record header whose capture length exceeds the frame's length.
	f.Write([]byte{0, 0, 0, 0, 0, 0, 0, 0, 100, 0, 0, 0, 50, 0, 0, 0})
	f.Close()
	cfg := runConfig(t, p)
	cfg.PcapSpeed = 1 // one frame per read: the error is the second read's
	done := make(chan error, 1)
	go func() { done <- Run(context.Background(), cfg, io.Discard, io.Discard) }()
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("run did not end after the capture failed")
	}
	var ce *cli.Error
	if !errors.As(err, &ce) || ce.Code != cli.ExitFailed || !strings.HasPrefix(err.Error(), "reading capture "+p+": ") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("run = %v, want exit 1 and one sentence reading capture %s: ...", err, p)
	}
}
