package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
)

// getInNetns asks path of the HTTP server at addr inside the network
// namespace ns and returns the status code and body; 0 when it does not
// answer.
func getInNetns(t *testing.T, ns, addr, path string) (int, string) {
	t.Helper()
	var c net.Conn
	if err := testutil.InNetns(ns, func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	}); err != nil {
		return 0, err.Error()
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET "+path+" HTTP/1.0\r\nHost: "+addr+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestReadyzCarrier: smserver capturing on a quiet veth is ready while the
// interface is up with carrier; when the other end of the veth goes down
// /readyz answers 503 naming the interface and "carrier down", and ready
// again once it comes back; /healthz stays ok throughout (a worker waiting
// for frames is not stuck).
func TestReadyzCarrier(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip")
	sec := quickstart(t)
	v := testutil.NewVethPair(t, "smrd")
	metrics := "127.0.0.1:9228"
	startInNetns(t, v.NsRx, "smserver", "--interface", v.IfRx, "--listen", "127.0.0.1:42228",
		"--cluster-listen", "127.0.0.1:0", "--security-dir", sec, "--metrics-listen", metrics)
	wait := func(what string, cond func(code int, body string) bool) string {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			code, body := getInNetns(t, v.NsRx, metrics, "/readyz")
			if cond(code, body) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 30 s; /readyz answers %d:\n%s", what, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	healthy := func() {
		t.Helper()
		if code, body := getInNetns(t, v.NsRx, metrics, "/healthz"); code != 200 || body != "ok" {
			t.Errorf("/healthz: %d %q", code, body)
		}
	}
	carrier := "capture: ready, no frame"
	body := wait("ready with carrier", func(code int, body string) bool { return code == 200 && strings.Contains(body, carrier) })
	if !strings.Contains(body, v.IfRx+" up with carrier") || !strings.Contains(body, "certificate: ready") {
		t.Errorf("/readyz when ready:\n%s", body)
	}
	healthy()

	testutil.Run(t, "ip", "-n", v.NsTx, "link", "set", v.IfTx, "down")
	want := "capture: " + v.IfRx + ": carrier down"
	body = wait("carrier down", func(code int, body string) bool { return code == 503 && strings.Contains(body, want) })
	if first, _, _ := strings.Cut(body, "\n"); !strings.HasPrefix(first, want) {
		t.Errorf("/readyz with the carrier down: the failure is not first:\n%s", body)
	}
	healthy()

	testutil.Run(t, "ip", "-n", v.NsTx, "link", "set", v.IfTx, "up")
	wait("ready again", func(code int, body string) bool { return code == 200 && strings.Contains(body, carrier) })
	healthy()
}
