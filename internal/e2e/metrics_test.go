package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMetricsAndHealth: both services answer /healthz and serve their
// counters on /metrics at the configured loopback address.
func TestMetricsAndHealth(t *testing.T) {
	sec := quickstart(t)
	pcap, res := writeCapture(t, 1, time.Second)
	srvMetrics, supMetrics := freeAddr(t), freeAddr(t)
	srvAddr := freeAddr(t)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-speed", "0",
		"--listen", srvAddr, "--security-dir", sec, "--metrics-listen", srvMetrics)
	sup := start(t, "smsupervisor", "--listen", freeAddr(t), "--security-dir", sec, "--output", "null",
		"--metrics-listen", supMetrics)
	waitReady(t, sec, srvAddr)
	get := func(url string) string {
		t.Helper()
		var resp *http.Response
		var err error
		for i := 0; i < 50; i++ {
			if resp, err = http.Get(url); err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", url, resp.Status)
		}
		return string(b)
	}
	for _, c := range []struct{ addr, metric string }{
		{srvMetrics, fmt.Sprintf("silentmon_capture_frames_total %d\n", res.Frames)}, // the whole file was read
		{srvMetrics, "silentmon_cluster_"},
		{srvMetrics, "silentmon_tls_"},
		{srvMetrics, "silentmon_sip_messages_total"},
		{supMetrics, "silentmon_supervisor_media_packets_total"},
		{supMetrics, "silentmon_playout_mos"},
	} {
		if h := get("http://" + c.addr + "/healthz"); strings.TrimSpace(h) != "ok" {
			t.Errorf("%s/healthz = %q", c.addr, h)
		}
		// The replay runs on its own: allow it a moment to finish.
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(get("http://"+c.addr+"/metrics"), c.metric) {
			if time.Now().After(deadline) {
				t.Errorf("%s/metrics has no %q", c.addr, c.metric)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	srv.stop(t, syscall.SIGTERM)
	sup.stop(t, syscall.SIGTERM)
}
