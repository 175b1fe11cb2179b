package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deskDir makes a security directory for a desk whose client certificate
// has common name cn, with smctl certs request, sign and bundle, signed
// by the CA of the quickstart set sec.
func deskDir(t *testing.T, sec, cn string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), cn)
	work := t.TempDir()
	if _, se, code := runCmd(t, nil, "smctl", "certs", "request", "--dir", work, "--role", "client", "--cn", cn); code != 0 {
		t.Fatalf("certs request: exit %d: %s", code, se)
	}
	keys := []string{filepath.Join(work, "CtiosClientkey.pem")}
	reqs := []string{filepath.Join(work, "CtiosClientreq.pem")}
	crt := filepath.Join(work, "desk.crt")
	if _, se, code := runCmd(t, nil, "smctl", "certs", "sign", "--ca-dir", filepath.Join(sec, "ca"), "--request", reqs[0], "--out", crt,
		"--password-file", filepath.Join(sec, "ca", "CtiosRoot.password")); code != 0 {
		t.Fatalf("certs sign: exit %d: %s", code, se)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, se, code := runCmd(t, nil, "smctl", "certs", "bundle", "--cert", crt, "--key", keys[0], "--out", filepath.Join(dir, "CtiosClient.pem")); code != 0 {
		t.Fatalf("certs bundle: exit %d: %s", code, se)
	}
	root, err := os.ReadFile(filepath.Join(sec, "CtiosRootCert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "CtiosRootCert.pem"), root, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPolicyRefusalAndInformedWatch: smserver with the rule "CN=desk-sales
// may monitor team sales" and a directory where agent 1001 is in sales
// and 2001 in support, over real certificates. The desk-sales client may
// start agent 1001; for agent 2001 smctl exits 1 with the sentence naming
// the client, the agent and its team, and the audit trail has the
// refusal; the quickstart administrator may start 2001. A desk watching
// agent 1001 (smctl agents watch) sees it monitored when an informed
// session starts and not monitored when it stops; the silent session
// started before it never shows; status JSON marks the informed session.
func TestPolicyRefusalAndInformedWatch(t *testing.T) {
	sec := quickstart(t)
	desk := deskDir(t, sec, "desk-sales")
	dir := filepath.Join(t.TempDir(), "agents.yaml")
	if err := os.WriteFile(dir, []byte(`agents:
  - {id: "1001", name: Sam, team: sales, extensions: ["5001"], phone_ip: 10.10.0.1}
  - {id: "2001", name: Sue, team: support, extensions: ["5002"], phone_ip: 10.20.0.1}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "smserver.yaml")
	if err := os.WriteFile(conf, []byte(`authorization:
  rules:
    - identities: ["CN=desk-sales"]
      teams: [sales]
`), 0o600); err != nil {
		t.Fatal(err)
	}
	auditFile := filepath.Join(t.TempDir(), "audit.log")
	srvAddr, metrics := freeAddr(t), freeAddr(t)
	start(t, "smserver", "--config", conf, "--directory", dir, "--cluster-listen", "127.0.0.1:0",
		"--pcap", filepath.Join("..", "..", "capture", "testdata", "ipv4_rtp.pcap"), "--pcap-wait-session",
		"--listen", srvAddr, "--security-dir", sec, "--metrics-listen", metrics, "--audit-file", auditFile)
	waitReady(t, sec, srvAddr)
	monitor := func(dir, agent string, extra ...string) (string, string, int) {
		args := append([]string{"monitor", "start", "--server", srvAddr, "--security-dir", dir, "--agent", agent,
			"--supervisor", "127.0.0.1:9"}, extra...)
		return runCmd(t, nil, "smctl", args...)
	}

	_, se, code := monitor(desk, "2001")
	const want = "client CN=desk-sales,O=silentmon may not monitor agent 2001 (team support): no authorization rule allows it"
	if code != 1 || !strings.Contains(se, want) || strings.Count(strings.TrimSpace(se), "\n") != 0 {
		t.Fatalf("desk-sales starting agent 2001: exit %d, stderr %q; want 1 and one line with %q", code, se, want)
	}
	refused := false
	for _, l := range readAudit(t, auditFile) {
		if l.Action == "start" && l.Result == "refused" && l.Agent == "2001" && strings.Contains(l.Reason, want) &&
			strings.Contains(l.ClientSubject, "CN=desk-sales") {
			refused = true
		}
	}
	if !refused {
		t.Errorf("no refused start of agent 2001 by desk-sales in the audit trail: %+v", readAudit(t, auditFile))
	}
	if _, se, code := monitor(sec, "2001"); code != 0 {
		t.Fatalf("the administrator starting agent 2001: exit %d: %s", code, se)
	}
	silent, se, code := monitor(desk, "1001")
	if code != 0 {
		t.Fatalf("desk-sales starting agent 1001 silently: exit %d: %s", code, se)
	}

	watch := start(t, "smctl", "agents", "watch", "--server", srvAddr, "--security-dir", desk, "--agent", "1001", "--json", "--count", "2")
	deadline := time.Now().Add(20 * time.Second)
	for metricValue(httpGet(t, "http://"+metrics+"/metrics"), "silentmon_agent_watches") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not reach smserver")
		}
		time.Sleep(50 * time.Millisecond)
	}
	informed, se, code := monitor(desk, "1001", "--inform-agent")
	if code != 0 {
		t.Fatalf("desk-sales starting agent 1001 informed: exit %d: %s", code, se)
	}
	informed = strings.TrimSpace(informed)
	so, _, code := runCmd(t, nil, "smctl", "status", "--server", srvAddr, "--security-dir", sec, "--json")
	var st struct {
		Sessions []struct {
			ID       string `json:"id"`
			Informed bool   `json:"informed"`
		} `json:"sessions"`
	}
	if code != 0 || json.Unmarshal([]byte(so), &st) != nil {
		t.Fatalf("status: exit %d: %s", code, so)
	}
	marked := map[string]bool{}
	for _, x := range st.Sessions {
		marked[x.ID] = x.Informed
	}
	if !marked[informed] || marked[strings.TrimSpace(silent)] || len(marked) != 3 {
		t.Errorf("status informed marks %v, want only %s", marked, informed)
	}
	if v := metricValue(httpGet(t, "http://"+metrics+"/metrics"), "silentmon_sessions_informed"); v != 1 {
		t.Errorf("silentmon_sessions_informed %v, want 1", v)
	}
	if _, se, code := runCmd(t, nil, "smctl", "monitor", "stop", "--server", srvAddr, "--security-dir", desk, "--session", informed); code != 0 {
		t.Fatalf("stop: exit %d: %s", code, se)
	}
	watch.wait(t, 20*time.Second)
	lines := strings.Split(strings.TrimSpace(watch.stdout.String()), "\n")
	wantLines := []string{`{"agent":"1001","state":"not-monitored"}`,
		`{"agent":"1001","state":"monitored","sessions":["` + informed + `"]}`,
		`{"agent":"1001","state":"not-monitored"}`}
	if strings.Join(lines, "\n") != strings.Join(wantLines, "\n") {
		t.Fatalf("smctl agents watch printed:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(wantLines, "\n"))
	}
}
