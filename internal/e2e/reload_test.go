package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	smtls "github.com/silentmon/silentmon/tls"
)

// syncLog collects a program's stderr while the test reads it.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startLogged starts a program whose stderr the test reads as it runs.
func startLogged(t *testing.T, name string, args ...string) (*proc, *syncLog) {
	t.Helper()
	log := &syncLog{}
	p := launch(t, exec.Command(bin(t, name), args...), func(c *exec.Cmd) error {
		c.Stderr = log
		return c.Start()
	}, func(*proc) { t.Logf("%s stderr:\n%s", name, log.String()) })
	return p, log
}

// servedSerial makes a new mutual-TLS handshake with the service at addr
// (the client certificate of sec) and returns the serial of the
// certificate it presents.
func servedSerial(t *testing.T, sec, addr string) *big.Int {
	t.Helper()
	client := filepath.Join(sec, smtls.ClientFile)
	pair, err := tls.LoadX509KeyPair(client, client)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := os.ReadFile(filepath.Join(sec, smtls.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c, err := tls.Dial("tcp", addr, &tls.Config{Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func fileCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	p, err := smtls.ReadPair(path)
	if err != nil {
		t.Fatal(err)
	}
	return p.Leaf
}

// reissueSet writes new certificates for every bundle of the quickstart
// directory sec, signed by its CA (same CA, new serials).
func reissueSet(t *testing.T, sec string) {
	t.Helper()
	pw, err := os.ReadFile(filepath.Join(sec, smtls.QuickstartCADir, "CtiosRoot.password"))
	if err != nil {
		t.Fatal(err)
	}
	if err := smtls.Quickstart(sec, smtls.QuickstartOptions{CADir: filepath.Join(sec, smtls.QuickstartCADir),
		Password: bytes.TrimSpace(pw), Force: true}); err != nil {
		t.Fatalf("reissue: %v", err)
	}
}

// hup sends SIGHUP to p and waits for the n-th reload summary in log,
// which it returns.
func hup(t *testing.T, p *proc, log *syncLog, n int) string {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	var line string
	poll(t, 10*time.Second, fmt.Sprintf("reload summary %d", n), func() (bool, string) {
		var sums []string
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, `msg="reloaded: `) {
				sums = append(sums, l)
			}
		}
		if len(sums) >= n {
			line = sums[n-1]
			return true, ""
		}
		return false, log.String()
	})
	return line
}

// linesWith returns the lines of s that contain every one of subs.
func linesWith(s string, subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if !strings.Contains(l, sub) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// TestReloadOnSIGHUP runs smserver from a configuration file with its
// section and reloads it with SIGHUP: a reissued CtiosServer.pem is served
// to the next handshake (the summary line says so; smctl status works),
// garbage in its place keeps the old certificate with one ERROR naming
// the file, and a new log.level takes effect while a new listen address
// is logged as needing a restart.
func TestReloadOnSIGHUP(t *testing.T) {
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 1, 2*time.Second)
	addr, metrics := freeAddr(t), freeAddr(t)
	conf := filepath.Join(t.TempDir(), "silentmon.yaml")
	writeConf := func(level, listen string) {
		t.Helper()
		y := fmt.Sprintf("security_dir: %s\nsmserver:\n  listen: %s\n  metrics:\n    listen: %s\n  log:\n    level: %s\nsmsupervisor:\n  output: null\n", sec, listen, metrics, level)
		if err := os.WriteFile(conf, []byte(y), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("info", addr)
	p, log := startLogged(t, "smserver", "--config", conf, "--pcap", pcap, "--pcap-wait-session", "--cluster-listen", "127.0.0.1:0")
	waitReady(t, sec, addr)

	server := filepath.Join(sec, smtls.ServerFile)
	first := servedSerial(t, sec, addr)
	if first.Cmp(fileCert(t, server).SerialNumber) != 0 {
		t.Fatal("smserver does not serve the certificate of its CtiosServer.pem")
	}
	reissueSet(t, sec)
	reissued := fileCert(t, server)
	if sum := hup(t, p, log, 1); !strings.Contains(sum, `msg="reloaded: certificates ok, configuration: unchanged"`) {
		t.Errorf("first summary: %s", sum)
	}
	if got := servedSerial(t, sec, addr); got.Cmp(reissued.SerialNumber) != 0 {
		t.Fatalf("after SIGHUP a new handshake sees serial %v, want the new file's %v", got, reissued.SerialNumber)
	}
	if w := linesWith(log.String(), "needs a restart"); len(w) != 0 {
		t.Errorf("the same file read anew is said to change keys: %q", w)
	}
	if _, se, code := runCmd(t, nil, "smctl", "status", "--server", addr, "--security-dir", sec); code != 0 {
		t.Fatalf("smctl status with the reissued certificates: exit %d: %s", code, se)
	}
	text := httpGet(t, "http://"+metrics+"/metrics")
	if v := metricValue(text, `silentmon_certificate_expiry_timestamp_seconds{file="CtiosServer.pem",role="capture"}`); v != float64(reissued.NotAfter.Unix()) {
		t.Errorf("expiry gauge of CtiosServer.pem = %v, want %d", v, reissued.NotAfter.Unix())
	}

	good, err := os.ReadFile(server)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(server, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if sum := hup(t, p, log, 2); !strings.Contains(sum, "certificates refused, the ones in use kept") {
		t.Errorf("second summary: %s", sum)
	}
	if errs := linesWith(log.String(), "level=ERROR"); len(errs) != 1 || !strings.Contains(errs[0], server) {
		t.Errorf("want one ERROR line naming %s, got %q", server, errs)
	}
	if got := servedSerial(t, sec, addr); got.Cmp(reissued.SerialNumber) != 0 {
		t.Errorf("after a refused reload a new handshake sees serial %v, want the one in use %v", got, reissued.SerialNumber)
	}
	text = httpGet(t, "http://"+metrics+"/metrics")
	if v := metricValue(text, "silentmon_tls_reload_failures_total"); v != 1 {
		t.Errorf("silentmon_tls_reload_failures_total = %v, want 1", v)
	}

	if err := os.WriteFile(server, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if n := len(linesWith(log.String(), "level=DEBUG")); n != 0 {
		t.Fatalf("%d debug lines at log.level info", n)
	}
	writeConf("debug", freeAddr(t))
	if sum := hup(t, p, log, 3); !strings.Contains(sum, `certificates ok, configuration: log.level debug"`) {
		t.Errorf("third summary: %s", sum)
	}
	if n := len(linesWith(log.String(), "level=DEBUG")); n == 0 {
		t.Error("no debug line after log.level debug was reloaded")
	}
	if w := linesWith(log.String(), "level=WARN", "configuration key listen changed in "+conf+" but needs a restart"); len(w) != 1 {
		t.Errorf("want one warning naming listen and the file:\n%s", log.String())
	}
	if _, se, code := runCmd(t, nil, "smctl", "status", "--server", addr, "--security-dir", sec); code != 0 {
		t.Fatalf("smctl status on the address in use after the reload: exit %d: %s", code, se)
	}
	p.stop(t, os.Interrupt)
}

// TestSupervisorReloadOnSIGHUP checks the same certificate reload on
// smsupervisor's 42228 listener.
func TestSupervisorReloadOnSIGHUP(t *testing.T) {
	sec := quickstart(t)
	addr := freeAddr(t)
	p, log := startLogged(t, "smsupervisor", "--listen", addr, "--security-dir", sec, "--output", "null",
		"--metrics-listen", freeAddr(t), "--console-listen", "off")
	poll(t, 10*time.Second, "smsupervisor started", func() (bool, string) {
		return strings.Contains(log.String(), "smsupervisor started"), log.String()
	})
	server := filepath.Join(sec, smtls.ServerFile)
	if got := servedSerial(t, sec, addr); got.Cmp(fileCert(t, server).SerialNumber) != 0 {
		t.Fatal("smsupervisor does not serve the certificate of its CtiosServer.pem")
	}
	reissueSet(t, sec)
	if sum := hup(t, p, log, 1); !strings.Contains(sum, `msg="reloaded: certificates ok, configuration: no file"`) {
		t.Errorf("summary: %s", sum)
	}
	if got, want := servedSerial(t, sec, addr), fileCert(t, server).SerialNumber; got.Cmp(want) != 0 {
		t.Errorf("after SIGHUP a new handshake sees serial %v, want the new file's %v", got, want)
	}
	if err := os.WriteFile(server, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup(t, p, log, 2)
	if errs := linesWith(log.String(), "level=ERROR"); len(errs) != 1 || !strings.Contains(errs[0], server) {
		t.Errorf("want one ERROR line naming %s, got %q", server, errs)
	}
	p.stop(t, os.Interrupt)
}
