package console

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/service"
	smtls "github.com/silentmon/silentmon/tls"
)

// TestUnauthorised checks that nothing is served without the token: the
// page answers 401 with the short page, the API 401 with JSON, and a
// wrong token (query, cookie or Bearer) opens nothing.
func TestUnauthorised(t *testing.T) {
	_, base := startTest(t, Config{})
	for _, tc := range []struct {
		name, path string
		headers    []string
		json       bool
	}{
		{"page", "/", nil, false},
		{"script", "/app.js", nil, false},
		{"wrong token", "/?token=ffffffffffffffffffffffffffffffff", nil, false},
		{"api", "/api/sessions", nil, true},
		{"events", "/api/events", nil, true},
		{"wrong cookie", "/api/sessions", []string{"Cookie: " + CookieName + "=ffffffffffffffffffffffffffffffff"}, true},
		{"wrong bearer", "/api/agents", []string{"Authorization: Bearer ffffffffffffffffffffffffffffffff"}, true},
		{"token in the API's query", "/api/sessions?token=" + testToken, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := do(t, nil, "GET", base+tc.path, nil, tc.headers...)
			if res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401: %s", res.StatusCode, body)
			}
			if len(res.Cookies()) != 0 {
				t.Fatalf("a refused request got a cookie: %v", res.Cookies())
			}
			if tc.json {
				var e struct{ Error string }
				if json.Unmarshal([]byte(body), &e) != nil || !strings.HasPrefix(e.Error, "not authorised") {
					t.Fatalf("body %q is not the JSON error", body)
				}
			} else if !strings.Contains(body, "Not authorised: open the console with the URL smsupervisor printed at start (it holds the token).") {
				t.Fatalf("body %q is not the page", body)
			}
			if res.Header.Get("Content-Security-Policy") == "" || res.Header.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("headers %v lack the security headers", res.Header)
			}
		})
	}
}

// TestTokenLogin checks that /?token=T sets the cookie (HttpOnly,
// SameSite=Strict, Path=/) and redirects to /, and that the cookie then
// opens the page and the API, with the security headers.
func TestTokenLogin(t *testing.T) {
	_, base := startTest(t, Config{Name: "sup-7"})
	res, _ := do(t, nil, "GET", base+"/?token="+testToken, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("status %d location %q, want 303 to /", res.StatusCode, res.Header.Get("Location"))
	}
	var c *http.Cookie
	for _, x := range res.Cookies() {
		if x.Name == CookieName {
			c = x
		}
	}
	if c == nil || c.Value != testToken || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Fatalf("cookie %+v", c)
	}
	cookie := "Cookie: " + CookieName + "=" + testToken
	res, body := do(t, nil, "GET", base+"/", nil, cookie)
	if res.StatusCode != 200 || !strings.Contains(body, `<section id="agents"`) || !strings.Contains(body, `<audio id="player" autoplay>`) {
		t.Fatalf("page: %d %.200s", res.StatusCode, body)
	}
	want := map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
	for k, v := range want {
		if res.Header.Get(k) != v {
			t.Errorf("header %s = %q, want %q", k, res.Header.Get(k), v)
		}
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	for _, p := range []string{"/app.js", "/style.css"} {
		if res, _ := do(t, nil, "GET", base+p, nil, cookie); res.StatusCode != 200 {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	res, body = do(t, nil, "GET", base+"/api/config", nil, cookie)
	if res.StatusCode != 200 || !strings.Contains(body, `"name":"sup-7"`) || !strings.Contains(body, `"listen":false`) {
		t.Fatalf("config: %d %s", res.StatusCode, body)
	}
}

// TestPageHasNoInlineScript checks that the page loads its script from
// app.js (the CSP forbids inline script) and nothing from elsewhere.
func TestPageHasNoInlineScript(t *testing.T) {
	b, err := webFS.ReadFile("web/index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if strings.Contains(page, "<script>") || strings.Contains(page, " on") && strings.Contains(page, "onclick=") {
		t.Fatal("the page has inline script")
	}
	for _, f := range []string{"web/index.html", "web/app.js", "web/style.css"} {
		b, _ := webFS.ReadFile(f)
		if strings.Contains(string(b), "http://") || strings.Contains(string(b), "https://") || strings.Contains(string(b), "@import") {
			t.Errorf("%s refers to an external resource", f)
		}
	}
}

// TestBearer checks that the Bearer header opens the API without a
// cookie.
func TestBearer(t *testing.T) {
	st := &fakeSessions{}
	st.set(service.SupervisorSession{ID: "s1", Agent: "1001", State: "open", Servers: []string{"cap-a:42228"},
		DeliveryMs: 12, TargetMs: 40, Streams: []service.PlayoutStream{
			{Direction: "from-agent", SSRC: "0x1", Codec: "PCMU", Packets: 90, Lost: 10, JitterMs: 2.5, MOS: 4.2}}})
	_, base := startTest(t, Config{Sessions: st})
	res, body := do(t, nil, "GET", base+"/api/sessions", nil, "Authorization: Bearer "+testToken)
	if res.StatusCode != 200 {
		t.Fatalf("status %d: %s", res.StatusCode, body)
	}
	var got struct{ Sessions []Session }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Sessions) != 1 {
		t.Fatalf("sessions %+v", got.Sessions)
	}
	s := got.Sessions[0]
	if s.ID != "s1" || s.State != "listening" || s.CaptureServer != "cap-a:42228" || s.PipelineMs != 52 || len(s.Streams) != 1 ||
		s.Streams[0].LossNetwork != 10 || s.Streams[0].MOS != 4.2 || s.Streams[0].LevelDBFS != Silence {
		t.Fatalf("session %+v", s)
	}
}

// TestTokenFile checks that the token file is written 0600 (an existing
// file's mode corrected), that a symbolic link is refused, and that each
// token is new.
func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "console.token")
	if err := os.WriteFile(p, []byte("old token, world-readable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b || !ValidToken(a) || !ValidToken(b) || len(a) != 32 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if err := WriteTokenFile(p, a); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	got, _ := os.ReadFile(p)
	if string(got) != a+"\n" {
		t.Fatalf("file holds %q", got)
	}
	target := filepath.Join(dir, "elsewhere")
	link := filepath.Join(dir, "link.token")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := WriteTokenFile(link, b); err == nil {
		t.Fatal("a symbolic link was followed")
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("the link's target was created")
	}
}

// TestNeedsTLS checks which addresses need HTTPS, and that New refuses
// plain HTTP on one of them.
func TestNeedsTLS(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:9230": false, "127.0.0.2:9230": false, "[::1]:9230": false, "localhost:9230": false,
		":9230": true, "0.0.0.0:9230": true, "[::]:9230": true, "192.0.2.1:9230": true, "console.example:9230": true, "garbage": true,
	} {
		if got := NeedsTLS(addr); got != want {
			t.Errorf("NeedsTLS(%q) = %v, want %v", addr, got, want)
		}
	}
	_, err := New(Config{Addr: "0.0.0.0:0", Token: testToken, Sessions: &fakeSessions{}})
	if !errors.Is(err, ErrPlainOffLoopback) {
		t.Fatalf("plain HTTP on 0.0.0.0: %v", err)
	}
	for _, cfg := range []Config{{Addr: "127.0.0.1:0", Sessions: &fakeSessions{}}, {Addr: "127.0.0.1:0", Token: testToken}} {
		if _, err := New(cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

// TestHTTPS checks the console with the supervisor's certificate: a
// browser without a client certificate needs the token; a client
// certificate of the site CA (client role) opens it without; plain HTTP
// gets nothing.
func TestHTTPS(t *testing.T) {
	dir := t.TempDir()
	if err := smtls.Quickstart(dir, smtls.QuickstartOptions{}); err != nil {
		t.Fatal(err)
	}
	tcfg, err := ServerTLS(dir, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, base := startTest(t, Config{TLS: tcfg})
	cc, err := smtls.ClientConfig(dir, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cc.RootCAs, ServerName: "localhost"}},
		CheckRedirect: noRedirect.CheckRedirect}
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cc.RootCAs, ServerName: "localhost",
		Certificates: cc.Certificates}}}
	t.Cleanup(func() {
		noCert.CloseIdleConnections()
		withCert.CloseIdleConnections()
	})
	if res, _ := do(t, noCert, "GET", base+"/api/sessions", nil); res.StatusCode != 401 {
		t.Fatalf("no certificate, no token: %d", res.StatusCode)
	}
	res, _ := do(t, noCert, "GET", base+"/?token="+testToken, nil)
	if res.StatusCode != http.StatusSeeOther || len(res.Cookies()) != 1 || !res.Cookies()[0].Secure {
		t.Fatalf("token over HTTPS: %d %v", res.StatusCode, res.Cookies())
	}
	if res, body := do(t, withCert, "GET", base+"/api/sessions", nil); res.StatusCode != 200 {
		t.Fatalf("client certificate: %d %s", res.StatusCode, body)
	}
	plain := "http://" + strings.TrimPrefix(base, "https://")
	if res, err := http.Get(plain + "/api/sessions"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("plain HTTP was served on the HTTPS console")
		}
	}
}

// TestPostOrigin checks the CSRF rule: a POST with the cookie needs an
// Origin naming this console; with the Bearer header it needs none.
func TestPostOrigin(t *testing.T) {
	_, base := startTest(t, Config{})
	host := strings.TrimPrefix(base, "http://")
	cookie := "Cookie: " + CookieName + "=" + testToken
	body := func() *strings.Reader { return strings.NewReader(`{"session":"s1"}`) }
	for _, tc := range []struct {
		name    string
		headers []string
		want    int
	}{
		{"cookie without origin", []string{cookie}, http.StatusForbidden},
		{"cookie from another site", []string{cookie, "Origin: http://evil.example"}, http.StatusForbidden},
		{"cookie from another port", []string{cookie, "Origin: http://127.0.0.1:1"}, http.StatusForbidden},
		{"cookie with https origin on http", []string{cookie, "Origin: https://" + host}, http.StatusForbidden},
		{"cookie from a cross-site fetch", []string{cookie, "Sec-Fetch-Site: cross-site"}, http.StatusForbidden},
		{"no credentials, right origin", []string{"Origin: http://" + host}, http.StatusUnauthorized},
		// Past the checks, the stop fails: no capture server.
		{"cookie and origin", []string{cookie, "Origin: http://" + host}, http.StatusServiceUnavailable},
		{"cookie, same-origin fetch without origin", []string{cookie, "Sec-Fetch-Site: same-origin"}, http.StatusServiceUnavailable},
		{"bearer", []string{"Authorization: Bearer " + testToken}, http.StatusServiceUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, b := do(t, nil, "POST", base+"/api/stop", body(), append(tc.headers, "Content-Type: application/json")...)
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.want, b)
			}
		})
	}
}

// TestBodyLimits checks that a body over 64 KiB is refused with 413, for
// JSON and for an SDP offer, and that ids are checked before use.
func TestBodyLimits(t *testing.T) {
	l := &fakeListener{}
	_, base := startTest(t, Config{Listener: l})
	bearer := "Authorization: Bearer " + testToken
	big := `{"agent":"` + strings.Repeat("a", MaxBody) + `"}`
	if res, b := do(t, nil, "POST", base+"/api/monitor", strings.NewReader(big), bearer); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("big JSON: %d %s", res.StatusCode, b)
	}
	offer := strings.Repeat("a=x\r\n", MaxBody/5+1)
	if res, b := do(t, nil, "POST", base+"/api/webrtc/s1", strings.NewReader(offer), bearer, "Content-Type: application/sdp"); res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("big offer: %d %s", res.StatusCode, b)
	}
	for _, tc := range []struct{ path, body, ct string }{
		{"/api/monitor", `{"agent":"10/01"}`, "application/json"},
		{"/api/monitor", `{"agent":""}`, "application/json"},
		{"/api/monitor", `{"agent":"1001","extra":1}`, "application/json"},
		{"/api/stop", `{"session":".."}`, "application/json"},
		{"/api/stop", `{"session":"a b"}`, "application/json"},
		{"/api/webrtc/" + strings.Repeat("a", 65), "v=0", "application/sdp"},
		{"/api/webrtc/a%20b", "v=0", "application/sdp"},
	} {
		res, b := do(t, nil, "POST", base+tc.path, strings.NewReader(tc.body), bearer, "Content-Type: "+tc.ct)
		if res.StatusCode != http.StatusBadRequest && res.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s: %d %s", tc.path, tc.body, res.StatusCode, b)
		}
	}
	if len(l.offers) != 0 {
		t.Fatalf("the listener got offers with bad ids: %v", l.offers)
	}
	if res, b := do(t, nil, "GET", base+"/api/audit?agent=a/b", nil, bearer); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("audit with a bad agent: %d %s", res.StatusCode, b)
	}
}

// TestWebRTC checks that an offer reaches the Listener and its answer
// comes back as application/sdp, and that without a Listener the console
// says listening in the browser is not available.
func TestWebRTC(t *testing.T) {
	l := &fakeListener{}
	_, base := startTest(t, Config{Listener: l})
	bearer := "Authorization: Bearer " + testToken
	res, body := do(t, nil, "POST", base+"/api/webrtc/s-1", strings.NewReader("v=0\r\noffer\r\n"), bearer, "Content-Type: application/sdp")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/sdp" || body != "v=0\r\nanswer-for s-1\r\n" {
		t.Fatalf("answer: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	if len(l.offers) != 1 || l.offers[0] != "s-1|v=0\r\noffer\r\n" {
		t.Fatalf("offers %q", l.offers)
	}
	if res, body := do(t, nil, "POST", base+"/api/webrtc/gone", strings.NewReader("v=0"), bearer, "Content-Type: application/sdp"); res.StatusCode != 400 || !strings.Contains(body, "session gone is not played here") {
		t.Fatalf("refused offer: %d %s", res.StatusCode, body)
	}
	if res, _ := do(t, nil, "POST", base+"/api/webrtc/s-1", strings.NewReader("v=0"), bearer, "Content-Type: text/plain"); res.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain offer: %d", res.StatusCode)
	}
	_, base2 := startTest(t, Config{})
	res, body = do(t, nil, "POST", base2+"/api/webrtc/s-1", strings.NewReader("v=0"), bearer, "Content-Type: application/sdp")
	if res.StatusCode != http.StatusNotImplemented || !strings.Contains(body, "listening in the browser is not available") {
		t.Fatalf("no listener: %d %s", res.StatusCode, body)
	}
}
