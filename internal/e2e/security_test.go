package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestBadSupervisorAddressCannotLockOut: a client starts a session whose
// supervisor address (127.0.0.3) is one the supervisor's certificate does
// not name. The capture server's handshakes to it fail on its own side
// (it refuses the supervisor's certificate and says so with an alert);
// the supervisor, which listens on every address, must not count them as
// failed authentications of the capture server's address (127.0.0.1),
// so the legitimate session started afterwards is heard, sample for
// sample, until the end of the call.
func TestBadSupervisorAddressCannotLockOut(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: replays 12 s in real time")
	}
	sec := quickstart(t)
	pcap, res := writeCapture(t, 4, 12*time.Second)
	_, port, _ := net.SplitHostPort(freeAddr(t))
	dir := t.TempDir()
	supMetrics := freeAddr(t)
	sup := start(t, "smsupervisor", "--listen", "0.0.0.0:"+port, "--security-dir", sec,
		"--output", "wav:"+filepath.Join(dir, "{agent}.wav"), "--metrics-listen", supMetrics)
	srvAddr := freeAddr(t)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--exit-after-replay", "--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, srvAddr)
	monitor := func(agent, endpoint, supervisor string) {
		t.Helper()
		_, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", sec,
			"--agent", agent, "--endpoint", endpoint, "--supervisor", supervisor)
		if code != 0 {
			t.Fatalf("smctl monitor start --agent %s exited %d: %s", agent, code, se)
		}
	}
	monitor("1002", "10.10.0.2", "127.0.0.3:"+port)
	// The capture server tries, fails, backs off and tries again: the
	// lockout threshold (3) is passed within these seconds.
	time.Sleep(3 * time.Second)
	monitor("1001", "10.10.0.1", "127.0.0.1:"+port)
	srv.wait(t, 60*time.Second)
	time.Sleep(time.Second)
	metrics := httpGet(t, "http://"+supMetrics+"/metrics")
	disturbed := (&replay{sec: sec, supAddr: "127.0.0.1:" + port}).disturbances(t)["1001"]
	sup.stop(t, syscall.SIGTERM)

	alerts := metricValue(metrics, `silentmon_tls_handshake_errors_total{reason="peer_alert"}`)
	if alerts < 3 {
		t.Errorf("the supervisor saw %v handshakes the capture server refused, want at least 3 (the bad session must have tried)", alerts)
	}
	if v := metricValue(metrics, "silentmon_tls_locked_sources"); v != 0 {
		t.Errorf("the supervisor locked out %v sources", v)
	}
	if _, err := os.Stat(filepath.Join(dir, "1002.wav")); err == nil {
		t.Error("the session with the bad supervisor address reached the supervisor")
	}
	// Agent 1001 was monitored from about 3 s into its 12 s call: its last
	// 8 s are in the WAV, equal to the decode of what its phone sent.
	got, want := readWAV(t, filepath.Join(dir, "1001.wav")), sentPCM(t, res, "1001")
	tail := want[len(want)-8*8000:]
	at := -1
	for i := 0; i+len(tail) <= len(got) && at < 0; i++ {
		if got[i] == tail[0] && got[i+1] == tail[1] && slicesEqual(got[i:i+len(tail)], tail) {
			at = i
		}
	}
	if at < 0 && disturbed > 0 && len(got) >= 8*8000 {
		// A loaded machine stalled the relay: the supervisor counted late
		// packets, slips or stretches, so the samples around them differ
		// from the phone's; the session was still heard to the end.
		t.Logf("agent 1001: %.2f s written; the supervisor counted %d late packets, slips or stretches, so the sample comparison is skipped",
			float64(len(got))/8000, disturbed)
		return
	}
	if at < 0 {
		t.Fatalf("the WAV of agent 1001 (%.2f s) does not hold the last 8 s of its call (the supervisor counted %d late packets, slips or stretches)",
			float64(len(got))/8000, disturbed)
	}
	t.Logf("agent 1001: %.2f s written; the call's last 8 s found at %.2f s; %v peer alerts, none counted", float64(len(got))/8000, float64(at)/8000, alerts)
}

func slicesEqual(a, b []int16) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// metricValue returns the value of the sample named (with its labels) in
// a Prometheus text exposition, or -1 when absent.
func metricValue(text, sample string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestRolesOverRealTLS: over real mutual TLS to a running capture server,
// a client-role certificate of the same CA (mallory, one desk's) cannot
// stop a session another client (alice) started, nor read the audit
// trail; a certificate with the admin role (the lab set's) can do both.
func TestRolesOverRealTLS(t *testing.T) {
	sec := quickstart(t)
	pw := filepath.Join(sec, "ca", "CtiosRoot.password")
	desk := func(name string) string {
		d := filepath.Join(t.TempDir(), name)
		if _, se, code := runCmd(t, nil, "smctl", "certs", "quickstart", "--dir", d, "--role", "client",
			"--ca-dir", filepath.Join(sec, "ca"), "--password-file", pw); code != 0 {
			t.Fatalf("quickstart --role client: exit %d: %s", code, se)
		}
		return d
	}
	alice, mallory := desk("alice"), desk("mallory")
	srvAddr := freeAddr(t)
	start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap"),
		"--pcap-wait-session", "--listen", srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t),
		"--audit-file", filepath.Join(t.TempDir(), "audit.log"))
	waitReady(t, sec, srvAddr)
	so, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", alice,
		"--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9")
	if code != 0 {
		t.Fatalf("alice's start: exit %d: %s", code, se)
	}
	id := strings.TrimSpace(so)
	if _, se, code := runCmd(t, nil, "smctl", "monitor", "stop", "--server", srvAddr, "--security-dir", mallory, "--session", id); code != 1 ||
		!strings.Contains(se, "only that identity or an administrator may stop it") {
		t.Errorf("mallory's stop of alice's session: exit %d: %s", code, se)
	}
	if _, se, code := runCmd(t, nil, "smctl", "audit", "--server", srvAddr, "--security-dir", mallory); code != 1 || !strings.Contains(se, "administrator") {
		t.Errorf("mallory's audit query: exit %d: %s", code, se)
	}
	if so, se, code := runCmd(t, nil, "smctl", "audit", "--server", srvAddr, "--security-dir", sec, "--json"); code != 0 || !strings.Contains(so, id) {
		t.Errorf("the administrator's audit query: exit %d: %s %s", code, se, so)
	}
	if _, se, code := runCmd(t, nil, "smctl", "monitor", "stop", "--server", srvAddr, "--security-dir", sec, "--session", id); code != 0 {
		t.Errorf("the administrator's stop: exit %d: %s", code, se)
	}
}
