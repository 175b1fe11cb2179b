package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// scrape returns the body and status of GET url.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitScrape scrapes url until cond holds (20 s at most) and returns the
// last body.
func waitScrape(t *testing.T, url, what string, cond func(string) bool) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, body := scrape(t, url)
		if cond(body) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s; last scrape of %s:\n%s", what, url, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// families returns the metric families a text exposition names
// (# TYPE lines).
func families(body string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	return out
}

// sample returns the value of the series line (name and labels as
// written) in body, or "".
func sample(body, series string) string {
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// num is a sample's value, 0 when absent.
func num(v string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	return f
}

// promtoolPath finds promtool (scripts/deps.sh puts it in /usr/local/bin).
func promtoolPath() string {
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/local/bin/promtool"); err == nil {
		return "/usr/local/bin/promtool"
	}
	return ""
}

// TestPromtoolCheckMetrics: with a session carrying media, both programs'
// /metrics pass `promtool check metrics` and hold the per-session series
// (session and agent labels); every expression of the Grafana dashboard
// names only metrics they export; after the session stops its series are
// gone, and the relay's packets sent stay counted (they do not fall back
// to 0 with the last link).
func TestPromtoolCheckMetrics(t *testing.T) {
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 1, 30*time.Second)
	srvAddr, supAddr, srvMetrics, supMetrics := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "null", "--metrics-listen", supMetrics)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--listen", srvAddr, "--security-dir", sec, "--metrics-listen", srvMetrics)
	waitReady(t, sec, srvAddr)
	so, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", sec,
		"--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", supAddr)
	if code != 0 {
		t.Fatalf("smctl monitor start: %d %s", code, se)
	}
	id := strings.TrimSpace(so)
	srvURL, supURL := "http://"+srvMetrics+"/metrics", "http://"+supMetrics+"/metrics"
	perSession := `{agent="1001",session="` + id + `"}`
	srvBody := waitScrape(t, srvURL, "smserver's session MOS", func(b string) bool {
		return strings.Contains(b, "silentmon_session_worst_mos"+perSession)
	})
	supBody := waitScrape(t, supURL, "smsupervisor's session series", func(b string) bool {
		return strings.Contains(b, "silentmon_playout_session_mos"+perSession)
	})
	for name, url := range map[string]string{"smserver": "http://" + srvMetrics, "smsupervisor": "http://" + supMetrics} {
		if code, body := scrape(t, url+"/readyz"); code != 200 {
			t.Errorf("%s /readyz while monitoring: %d\n%s", name, code, body)
		}
		if code, body := scrape(t, url+"/healthz"); code != 200 {
			t.Errorf("%s /healthz while monitoring: %d\n%s", name, code, body)
		}
	}
	checkDashboard(t, families(srvBody), families(supBody))

	if pt := promtoolPath(); pt == "" {
		t.Log("promtool is not installed (scripts/deps.sh installs it): promtool check metrics not run")
	} else {
		for name, body := range map[string]string{"smserver": srvBody, "smsupervisor": supBody} {
			cmd := exec.Command(pt, "check", "metrics")
			cmd.Stdin = strings.NewReader(body)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Errorf("promtool check metrics on %s's /metrics: %v\n%s", name, err, out.String())
			}
		}
	}

	sent := sample(srvBody, "silentmon_relay_media_sent_total")
	if sent == "" || sent == "0" {
		t.Fatalf("silentmon_relay_media_sent_total while relaying: %q", sent)
	}
	if _, se, code := runCmd(t, nil, "smctl", "monitor", "stop", "--server", srvAddr, "--security-dir", sec, "--session", id); code != 0 {
		t.Fatalf("smctl monitor stop: %d %s", code, se)
	}
	srvBody = waitScrape(t, srvURL, "smserver's session series gone", func(b string) bool { return !strings.Contains(b, id) })
	waitScrape(t, supURL, "smsupervisor's session series gone", func(b string) bool { return !strings.Contains(b, id) })
	if after := sample(srvBody, "silentmon_relay_media_sent_total"); num(after) < num(sent) || num(after) == 0 {
		t.Errorf("silentmon_relay_media_sent_total after the session stopped: %q (was %q while relaying)", after, sent)
	}
	srv.stop(t, syscall.SIGTERM)
	if m := regexp.MustCompile(`packets relayed (\d+)`).FindStringSubmatch(srv.stdout.String()); m == nil || m[1] == "0" {
		t.Errorf("exit summary: %q, want the packets relayed over the run", srv.stdout.String())
	}
}

// checkDashboard parses docs/grafana/silentmon.json as a dashboard and
// checks that every panel's expressions name only metrics one of the
// programs exports (families of their scrapes) and that a Prometheus
// datasource variable picks the source.
func checkDashboard(t *testing.T, exported ...map[string]bool) {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(file), "..", "..", "docs", "grafana", "silentmon.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title      string `json:"title"`
		UID        string `json:"uid"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title      string `json:"title"`
			Datasource struct {
				UID string `json:"uid"`
			} `json:"datasource"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 8 {
		t.Fatalf("%s: title %q, uid %q, %d panels", path, d.Title, d.UID, len(d.Panels))
	}
	hasDS := false
	for _, v := range d.Templating.List {
		if v.Type == "datasource" && v.Query == "prometheus" {
			hasDS = true
		}
	}
	if !hasDS {
		t.Errorf("%s: no Prometheus datasource variable", path)
	}
	known := func(name string) bool {
		for _, e := range exported {
			if e[name] {
				return true
			}
		}
		return false
	}
	metric := regexp.MustCompile(`\b(silentmon|process|go)_[a-zA-Z0-9_]+`)
	var unknown []string
	for _, p := range d.Panels {
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the datasource variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			for _, m := range metric.FindAllString(q.Expr, -1) {
				if !known(m) {
					unknown = append(unknown, p.Title+": "+m)
				}
			}
		}
	}
	sort.Strings(unknown)
	for _, u := range unknown {
		t.Errorf("dashboard panel %s: no program exports this metric", u)
	}
}
