package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/silentmon/silentmon/bench/gen"
)

// consoleMaxDelayMs is the supervisor's jitter-buffer ceiling in the
// console test (--max-delay-ms): the end-to-end delay the page shows must
// stay within it plus 100 ms on loopback.
const consoleMaxDelayMs = 200

// consoleCalls is the number of calls of the console test's capture: agent
// 1001's call (a 1 kHz tone from the phone, silence from the far side) and
// four others, each with two tones of its own.
const consoleCalls = 5

// screenshotSizes are the viewports the console's screenshots are taken
// at: a laptop and a tablet held upright.
var screenshotSizes = [][2]int64{{1280, 800}, {820, 1180}}

// chromium returns the path of the browser the console tests drive:
// $SILENTMON_CHROMIUM, else Debian's chromium or another Chrome on PATH; it
// skips when there is none.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SILENTMON_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("skipping: no Chromium on PATH (make deps installs Debian's chromium; or set SILENTMON_CHROMIUM)")
	return ""
}

// newBrowser starts a headless Chromium that plays audio without a user
// gesture and answers media permission prompts, and returns a context of
// its first tab; it skips when the browser cannot start.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.WindowSize(1280, 800),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root inside its sandbox.
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelTab(); cancelAlloc() })
	// The first action starts the browser, which then lives as long as
	// the context it ran on: run it on ctx itself, with a deadline beside.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		if err != nil {
			t.Skipf("skipping: Chromium at %s cannot start: %v", path, err)
		}
	case <-time.After(60 * time.Second):
		cancelTab()
		<-started
		t.Skipf("skipping: Chromium at %s did not start within 60 s", path)
	}
	return ctx
}

// console is the rig of the console test: a capture server replaying a
// demo-like capture once a session starts, a supervisor with its console,
// and the console's address and token.
type console struct {
	sec, srvAddr, supAddr string
	url, token            string
	srv, sup              *proc
	calls                 []gen.Call
}

// startConsole starts the rig and returns once the console answers.
func startConsole(t *testing.T) *console {
	t.Helper()
	if so, _, _ := runCmd(t, nil, "smsupervisor", "--help"); !strings.Contains(so, "--console-listen") {
		t.Skip("skipping: smsupervisor has no --console-listen flag yet (the console, internal/console, is not built)")
	}
	c := &console{sec: quickstart(t), srvAddr: freeAddr(t), supAddr: freeAddr(t)}
	dir := t.TempDir()
	// The demo's calls, long enough for the test to listen, and an agent
	// directory naming their agents so the console can list them.
	var err error
	c.calls, err = gen.Build(gen.BuildConfig{Calls: consoleCalls, VLAN: 85, Priority: 5, Duration: 40 * time.Second, AgentTone: 1000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	pcap, _ := writeCalls(t, c.calls, 7)
	agents := filepath.Join(dir, "agents.yaml")
	var yaml strings.Builder
	yaml.WriteString("agents:\n")
	names := []string{"Alice Martin", "Bob Chen", "Carla Diaz", "Dev Patel", "Emma Rossi"}
	for i := range consoleCalls {
		team := "Billing"
		if i%2 == 1 {
			team = "Sales"
		}
		fmt.Fprintf(&yaml, "  - {id: \"%d\", name: %q, team: %s, extensions: [\"%d\"], phone_ip: 10.10.0.%d}\n",
			1001+i, names[i%len(names)], team, 5001+i, i+1)
	}
	if err := os.WriteFile(agents, []byte(yaml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	consoleAddr := freeAddr(t)
	tokenFile := filepath.Join(dir, "console.token")
	c.sup = start(t, "smsupervisor", "--listen", c.supAddr, "--security-dir", c.sec, "--output", "null",
		"--metrics-listen", freeAddr(t), "--max-delay-ms", strconv.Itoa(consoleMaxDelayMs),
		"--console-listen", consoleAddr, "--console-server", c.srvAddr, "--console-token-file", tokenFile)
	c.srv = start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--listen", c.srvAddr, "--security-dir", c.sec, "--metrics-listen", freeAddr(t),
		"--directory", agents, "--audit-file", filepath.Join(dir, "audit.jsonl"))
	waitReady(t, c.sec, c.srvAddr)
	c.url = "http://" + consoleAddr
	token := regexp.MustCompile(`^[0-9a-f]{32}$`)
	poll(t, 20*time.Second, "the console token file "+tokenFile, func() (bool, string) {
		b, err := os.ReadFile(tokenFile)
		c.token = strings.TrimSpace(string(b))
		return err == nil && token.MatchString(c.token), fmt.Sprintf("%q, %v", b, err)
	})
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("console token file %s: %v, want mode 0600", tokenFile, fi.Mode())
	}
	poll(t, 20*time.Second, "the console at "+c.url, func() (bool, string) {
		resp, err := http.Get(c.url + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return true, resp.Status
	})
	return c
}

// poll calls f every 100 ms until it returns true, and fails the test
// with what f said last if that takes longer than d.
func poll(t *testing.T, d time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, last := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not there within %v (last: %s)", what, d, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// eval runs a JavaScript expression in the tab and returns its value.
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// pollJS evaluates expr, a JavaScript expression giving [ok, detail],
// until ok.
func pollJS(t *testing.T, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	poll(t, d, what, func() (bool, string) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[[]any](expr))
		if err != nil {
			return false, err.Error()
		}
		ok, _ := v[0].(bool)
		return ok, fmt.Sprint(v[1])
	})
}

// screenshots saves the tab at each of screenshotSizes as NAME-WxH.png in
// $SILENTMON_SCREENSHOTS (relative to the repository's root), after
// scrolling sel into view; it does nothing when the variable is unset, so
// that ordinary runs leave the committed pictures alone.
func screenshots(t *testing.T, ctx context.Context, name, sel string) {
	t.Helper()
	dir := os.Getenv("SILENTMON_SCREENSHOTS")
	if dir == "" {
		return
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join("..", "..", dir) // tests run in internal/e2e
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range screenshotSizes {
		err := chromedp.Do(ctx, chromedp.EmulateViewport(s[0], s[1]),
			chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`),
			chromedp.ScrollIntoView(chromedp.CSS(sel)),
			chromedp.Sleep(400*time.Millisecond)) // a few level and quality updates
		if err != nil {
			t.Fatalf("screenshot %s at %dx%d: %v", name, s[0], s[1], err)
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot %s at %dx%d: %v", name, s[0], s[1], err)
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-%dx%d.png", name, s[0], s[1]))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Evaluate[chromedp.Void](`window.scrollTo(0, 0)`)); err != nil {
		t.Fatal(err)
	}
}

// consoleErrors collects what the tab writes to its console as errors:
// console.error calls, uncaught exceptions and the browser's error log.
type consoleErrors struct {
	mu   sync.Mutex
	msgs []string
}

func watchConsole(ctx context.Context) *consoleErrors {
	ce := &consoleErrors{}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				ce.mu.Lock()
				ce.msgs = append(ce.msgs, fmt.Sprintf("%s (%s:%d)", m, m.URL, m.Line))
				ce.mu.Unlock()
			}
		}
	}()
	return ce
}

func (ce *consoleErrors) list() []string {
	ce.mu.Lock()
	defer ce.mu.Unlock()
	return slices.Clone(ce.msgs)
}

// toneJS measures the analyser's spectrum: the dominant frequency (bins
// interpolated on a parabola), its level, and the highest level within two
// bins of each frequency of OTHERS, all in dB (-200 for nothing).
const toneJS = `(() => {
  const s = window.silentmon;
  if (!s || !s.analyser || !s.sampleRate) return null;
  const a = s.analyser, d = new Float32Array(a.frequencyBinCount);
  a.getFloatFrequencyData(d);
  const v = i => Number.isFinite(d[i]) ? d[i] : -200;
  let k = 1;
  for (let i = 2; i < d.length - 1; i++) if (v(i) > v(k)) k = i;
  const y0 = v(k - 1), y1 = v(k), y2 = v(k + 1), den = y0 - 2 * y1 + y2;
  const p = den < 0 ? 0.5 * (y0 - y2) / den : 0;
  const hz = (k + p) * s.sampleRate / a.fftSize;
  const at = f => {
    const i = Math.round(f * a.fftSize / s.sampleRate);
    let m = -200;
    for (let j = Math.max(1, i - 2); j <= Math.min(d.length - 1, i + 2); j++) m = Math.max(m, v(j));
    return m;
  };
  return {hz: hz, peak: y1, rate: s.sampleRate, fft: a.fftSize, others: OTHERS.map(at)};
})()`

type spectrum struct {
	Hz     float64   `json:"hz"`
	Peak   float64   `json:"peak"`
	Rate   float64   `json:"rate"`
	FFT    int       `json:"fft"`
	Others []float64 `json:"others"`
}

// TestConsoleListenInBrowser drives a real headless Chromium against
// smsupervisor's console, with smserver replaying the demo's calls: the
// page is refused without the token (401 and the sentence saying where
// the token is) and loads with it; it lists the directory's agents; a
// click on agent 1001's Listen starts a session on the capture server and
// WebRTC, and a WebAudio analyser inside the page hears agent 1001's 1 kHz
// tone (within 10 Hz) and none of the other calls' tones; the page receives
// the two sides on two tracks and its balance works: at +1 (the customer
// only) the 1 kHz falls by 30 dB or more, at 0 it comes back; the agent's level
// meter moves above -60 dBFS; the page shows the end-to-end delay, at most
// the jitter-buffer ceiling plus 100 ms; Stop ends the session in
// smserver's status; the browser's console shows no error. With
// SILENTMON_SCREENSHOTS=docs/console it saves the pages' screenshots.
func TestConsoleListenInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: listens in a browser for several seconds")
	}
	browser := newBrowser(t)
	c := startConsole(t)
	ctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()

	// Without the token: refused, with the sentence saying where the
	// token is, in the browser and on the API.
	resp, err := http.Get(c.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Not authorised") {
		t.Errorf("GET / without the token: %s %q, want 401 saying \"Not authorised\"", resp.Status, body)
	}
	for _, u := range []string{c.url + "/?token=" + strings.Repeat("0", 32), c.url + "/api/agents"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without the right token: %s %q, want 401", u, resp.Status, b)
		}
	}
	refused, cancelRefused := chromedp.NewContext(ctx) // its own tab: a refused load logs a 401
	if err := chromedp.Do(refused, chromedp.Navigate(c.url+"/")); err != nil {
		t.Fatal(err)
	}
	if text := eval[string](t, refused, `document.body.innerText`); !strings.Contains(text, "Not authorised") ||
		!strings.Contains(text, "token") {
		t.Errorf("the page without the token says %q, want \"Not authorised ... token\"", text)
	}
	screenshots(t, refused, "refused", "body")
	cancelRefused()

	// With the token: the page, its sections, the live stream, the agents.
	errs := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(c.url+"/?token="+c.token)); err != nil {
		t.Fatal(err)
	}
	if loc := eval[string](t, ctx, `location.href`); strings.Contains(loc, "token=") {
		t.Errorf("after the token the page is at %s, want a redirect to / (the cookie holds the token)", loc)
	}
	pollJS(t, ctx, 15*time.Second, "the page's sections and the live connection", `(() => {
	  const conn = document.querySelector('#conn');
	  const ok = !!document.querySelector('main section#agents') && !!document.querySelector('main section#sessions') &&
	    !!document.querySelector('main section#audit') && !!conn && conn.textContent.trim() === 'live';
	  return [ok, conn ? conn.textContent : 'no #conn'];
	})()`)
	pollJS(t, ctx, 15*time.Second, "the directory's agents in the agents table", fmt.Sprintf(`(() => {
	  const ids = [...document.querySelectorAll('tr[data-agent]')].map(r => r.dataset.agent);
	  return [%d <= ids.length && [...Array(%d).keys()].every(i => ids.includes(String(1001 + i))), ids.join(',')];
	})()`, consoleCalls, consoleCalls))
	type agentRow struct{ Name, Team, State string }
	row := eval[agentRow](t, ctx, `(() => {
	  const r = document.querySelector('tr[data-agent="1001"]'), f = n => (r.querySelector('[data-field="' + n + '"]') || {}).textContent || '';
	  return {name: f('name').trim(), team: f('team').trim(), state: f('state').trim()};
	})()`)
	if row.Name != "Alice Martin" || row.Team != "Billing" || !slices.Contains([]string{"idle", "ringing", "talking", "held", "unknown"}, row.State) {
		t.Errorf("agent 1001's row: %+v, want Alice Martin of Billing in one of the call states", row)
	}
	screenshots(t, ctx, "agents", "section#agents")

	// Listen to agent 1001: a session on the capture server, WebRTC in
	// the page.
	listen := chromedp.CSS(`tr[data-agent="1001"] button[data-action="listen"]`)
	if err := chromedp.Do(ctx, chromedp.Click(listen)); err != nil {
		t.Fatalf("click agent 1001's Listen: %v", err)
	}
	var session string
	poll(t, 15*time.Second, "a session row for agent 1001", func() (bool, string) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		  for (const r of document.querySelectorAll('[data-session]')) {
		    const a = r.querySelector('[data-field="agent"]');
		    if (a && a.textContent.includes('1001')) return r.dataset.session;
		  }
		  return '';
		})()`))
		session = v
		return err == nil && v != "", fmt.Sprint(err, " ", eval[string](t, ctx, `(document.querySelector('#error') || {}).textContent || ''`))
	})
	if !c.serverHasSession(t, session) {
		t.Errorf("smserver's status does not list the console's session %s", session)
	}
	if eval[bool](t, ctx, `!document.querySelector('tr[data-agent="1001"] button[data-action="listen"]').disabled`) {
		t.Errorf("agent 1001's Listen button is enabled while the page listens to it")
	}
	if !eval[bool](t, ctx, `!!(window.silentmon && window.silentmon.analyser)`) {
		// Give WebRTC a moment before deciding it is not there.
		time.Sleep(5 * time.Second)
		req, _ := http.NewRequest("POST", c.url+"/api/webrtc/"+session, strings.NewReader("v=0\r\n"))
		req.Header.Set("Content-Type", "application/sdp")
		req.Header.Set("Authorization", "Bearer "+c.token)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusNotImplemented {
				t.Skipf("skipping the rest: the console has no WebRTC listener yet (POST /api/webrtc/%s: %s %s)",
					session, resp.Status, strings.TrimSpace(string(b)))
			}
		}
	}
	pollJS(t, ctx, 15*time.Second, "window.silentmon.analyser (WebRTC audio in the page)", `(() => {
	  const s = window.silentmon;
	  return [!!(s && s.analyser && s.sampleRate), s ? JSON.stringify(Object.keys(s)) + ' errors ' + JSON.stringify(s.errors || []) : 'no window.silentmon'];
	})()`)

	// The tone: 1 kHz, and nothing of the other calls' tones.
	sp := c.hears(t, ctx, "1001")

	// The balance: the page receives the agent's and the customer's sides
	// on two tracks; at +1 (the customer only: the far side of agent
	// 1001's call is silent) the 1 kHz falls by 30 dB or more in what the
	// page plays, and comes back at 0 (both at full level).
	sel := fmt.Sprintf(`[data-session=%q]`, session)
	balance := sel + ` input[data-action="balance"]`
	pollJS(t, ctx, 10*time.Second, "the balance enabled on two tracks", `(() => {
	  const r = document.querySelector('`+balance+`'), s = window.silentmon;
	  return [!!r && !r.disabled && s.tracks === 2, r ? 'disabled ' + r.disabled + ', tracks ' + s.tracks : 'no balance'];
	})()`)
	for _, step := range []struct {
		value string
		want  func(l float64) bool
		what  string
	}{
		{"1", func(l float64) bool { return l <= sp.Peak-30 }, "at least 30 dB below"},
		{"0", func(l float64) bool { return l >= sp.Peak-6 }, "back within 6 dB of"},
	} {
		setBalance(t, ctx, balance, step.value)
		var level float64
		poll(t, 10*time.Second, fmt.Sprintf("the 1 kHz tone with the balance at %s %s %.1f dB", step.value, step.what, sp.Peak), func() (bool, string) {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[*spectrum](strings.Replace(toneJS, "OTHERS", "[1000]", 1)))
			if err != nil || v == nil || len(v.Others) != 1 {
				return false, fmt.Sprint("no spectrum: ", err)
			}
			level = v.Others[0]
			return step.want(level), fmt.Sprintf("%.1f dB", level)
		})
		t.Logf("balance %s: the 1 kHz tone at %.1f dB in the page's analyser (%.1f dB with both sides)", step.value, level, sp.Peak)
	}

	// The agent's level meter and the delay.
	pollJS(t, ctx, 10*time.Second, "agent 1001's level meter above -60 dBFS", `(() => {
	  const m = document.querySelector('`+sel+` meter[data-level="agent"]');
	  return [!!m && m.value > -60, m ? String(m.value) : 'no meter[data-level="agent"]'];
	})()`)
	var delay float64
	poll(t, 15*time.Second, "the end-to-end delay in the session row", func() (bool, string) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('`+sel+` [data-field="delay-ms"]') || {}).textContent || ''`))
		if err != nil {
			return false, err.Error()
		}
		m := regexp.MustCompile(`\d+(\.\d+)?`).FindString(v)
		d, err := strconv.ParseFloat(m, 64)
		delay = d
		return err == nil && d > 0, fmt.Sprintf("%q", v)
	})
	t.Logf("end-to-end delay (capture time to browser playout) shown by the page: %.0f ms; jitter-buffer ceiling %d ms",
		delay, consoleMaxDelayMs)
	if delay > consoleMaxDelayMs+100 {
		t.Errorf("end-to-end delay %.0f ms, want at most the jitter-buffer ceiling %d ms + 100 ms", delay, consoleMaxDelayMs)
	}
	screenshots(t, ctx, "listening", "section#sessions")

	// Stop: the session ends in smserver's status.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel+` button[data-action="stop"]`))); err != nil {
		t.Fatalf("click Stop: %v", err)
	}
	poll(t, 15*time.Second, "smserver's status without session "+session, func() (bool, string) {
		return !c.serverHasSession(t, session), "still listed"
	})
	pollJS(t, ctx, 10*time.Second, "agent 1001's Listen button enabled again", `(() => {
	  const b = document.querySelector('tr[data-agent="1001"] button[data-action="listen"]');
	  return [!!b && !b.disabled, b ? 'disabled' : 'no button'];
	})()`)
	// The audit trail has the session's start and stop once refreshed
	// (the console's certificate, quickstart's, has the admin role).
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`section#audit button`))); err != nil {
		t.Fatalf("click the audit section's Refresh: %v", err)
	}
	pollJS(t, ctx, 10*time.Second, "the session's start and stop in the audit section", `(() => {
	  const rows = [...document.querySelectorAll('section#audit tbody tr')].filter(r => r.textContent.includes('`+session+`'));
	  return [rows.length >= 2, rows.map(r => r.innerText.replace(/\s+/g, ' ')).join(' | ') || document.querySelector('section#audit').innerText];
	})()`)
	screenshots(t, ctx, "audit", "section#audit")

	if pe := eval[[]any](t, ctx, `(window.silentmon && window.silentmon.errors) || []`); len(pe) > 0 {
		t.Errorf("the page caught errors: %v", pe)
	}
	var bad []string
	for _, e := range errs.list() {
		// A page that declares no icon makes Chromium ask for
		// /favicon.ico; its 404 is the browser's, not the page's.
		if strings.Contains(e, "404") && strings.Contains(e, c.url+"/favicon.ico") {
			t.Logf("the page declares no icon: Chromium asked for /favicon.ico and logged %s", e)
			continue
		}
		bad = append(bad, e)
	}
	if len(bad) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(bad, "\n"))
	}
	cancel()

	// The supervisor printed the console's address with the token.
	c.sup.stop(t, syscall.SIGTERM)
	if want := "console: " + c.url + "/?token=" + c.token; !strings.Contains(c.sup.stderr.String(), want) {
		t.Errorf("smsupervisor's stderr does not have the line %q:\n%s", want, c.sup.stderr.String())
	}
}

// setBalance moves the balance slider sel to value as a person would:
// the value, then the input event the page listens to.
func setBalance(t *testing.T, ctx context.Context, sel, value string) {
	t.Helper()
	eval[bool](t, ctx, fmt.Sprintf(`(() => {
	  const r = document.querySelector(%q);
	  r.value = %q;
	  r.dispatchEvent(new Event('input', {bubbles: true}));
	  return true;
	})()`, sel, value))
}

// serverHasSession reports whether smserver's status lists session.
func (c *console) serverHasSession(t *testing.T, session string) bool {
	t.Helper()
	so, se, code := runCmd(t, nil, "smctl", "status", "--json", "--server", c.srvAddr, "--security-dir", c.sec)
	if code != 0 {
		t.Fatalf("smctl status exited %d: %s", code, se)
	}
	var st struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(so), &st); err != nil {
		t.Fatalf("smctl status --json: %v: %s", err, so)
	}
	return slices.ContainsFunc(st.Sessions, func(s struct {
		ID string `json:"id"`
	}) bool {
		return s.ID == session
	})
}

// intermod reports whether hz is within 10 Hz of an intermodulation
// product of order 3 or 5 of two of tones (2f1-f2, 3f1-2f2 and the same
// the other way round).
func intermod(tones []float64, hz float64) bool {
	for _, f1 := range tones {
		for _, f2 := range tones {
			if f1 != f2 && (math.Abs(2*f1-f2-hz) <= 10 || math.Abs(3*f1-2*f2-hz) <= 10) {
				return true
			}
		}
	}
	return false
}

// hears waits until the page's analyser hears agent's call: the dominant
// frequency within 10 Hz of one of the call's tones, five readings in a
// row; then every tone of the other calls 50 Hz or more from the call's
// own tones must be 40 dB or more below it, 25 dB at an intermodulation
// product of the call's own two tones (intermod). (The demo-like capture gives
// agent 1001's phone 1 kHz and its far side silence, and the other calls
// two tones each, 25 Hz apart from 300 Hz up: closer tones are in the
// analyser's window leakage.)
func (c *console) hears(t *testing.T, ctx context.Context, agent string) spectrum {
	t.Helper()
	var mine, far []float64
	for _, call := range c.calls {
		if call.AgentID == agent {
			for _, hz := range []float64{call.FromAgent.ToneHz, call.ToAgent.ToneHz} {
				if hz > 0 {
					mine = append(mine, hz)
				}
			}
		}
	}
	for _, call := range c.calls {
		for _, hz := range []float64{call.FromAgent.ToneHz, call.ToAgent.ToneHz} {
			if call.AgentID != agent && hz > 0 && !slices.ContainsFunc(mine, func(m float64) bool { return math.Abs(m-hz) < 50 }) {
				far = append(far, hz)
			}
		}
	}
	if len(mine) == 0 {
		t.Fatalf("agent %s's call has no tone in the capture", agent)
	}
	js, _ := json.Marshal(far)
	expr := strings.Replace(toneJS, "OTHERS", string(js), 1)
	var sp spectrum
	heard := 0
	poll(t, 30*time.Second, fmt.Sprintf("agent %s's tones %v in the page's analyser", agent, mine), func() (bool, string) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[*spectrum](expr))
		if err != nil || v == nil {
			return false, fmt.Sprint("no spectrum: ", err)
		}
		sp = *v
		near := slices.ContainsFunc(mine, func(hz float64) bool { return math.Abs(sp.Hz-hz) <= 10 })
		if sp.Peak > -70 && near {
			heard++
		} else {
			heard = 0
		}
		return heard >= 5, fmt.Sprintf("dominant %.1f Hz at %.1f dB", sp.Hz, sp.Peak)
	})
	loudest := -200.0
	for i, l := range sp.Others {
		loudest = max(loudest, l)
		margin := 40.0
		if intermod(mine, far[i]) {
			// The codec's own distortion of the agent's two tones lies
			// there too (Opus at 8 kHz leaves it 38 to 58 dB down): a
			// leaked call, at about the agent's level, is still far
			// above 25 dB down.
			margin = 25
		}
		if l > sp.Peak-margin {
			t.Errorf("another call's %.0f Hz tone is at %.1f dB, within %.0f dB of agent %s's tone (%.1f dB)", far[i], l, margin, agent, sp.Peak)
		}
	}
	t.Logf("agent %s (tones %v): dominant %.1f Hz at %.1f dB (sample rate %.0f Hz, FFT %d); the other calls' tones %v at most %.1f dB",
		agent, mine, sp.Hz, sp.Peak, sp.Rate, sp.FFT, far, loudest)
	return sp
}
