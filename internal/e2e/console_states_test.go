package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// openConsole opens the console's page with its token in the tab and
// waits for the live connection; it returns the watcher of the tab's
// console.
func openConsole(t *testing.T, ctx context.Context, url, token string) *consoleErrors {
	t.Helper()
	errs := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/?token="+token)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, ctx, 15*time.Second, "the console's live connection", `(() => {
	  const c = document.querySelector('#conn');
	  return [!!c && c.textContent.trim() === 'live', c ? c.textContent : 'no #conn'];
	})()`)
	return errs
}

// press sends key to the page as a person typing with nothing focused:
// whatever has the focus loses it first, so the keys reach the document.
func press(t *testing.T, ctx context.Context, key string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Evaluate[chromedp.Void](`document.activeElement && document.activeElement.blur && document.activeElement.blur()`),
		chromedp.KeyEvent(key))
	if err != nil {
		t.Fatalf("press %q: %v", key, err)
	}
}

// selectedJS gives [the ids of the agent rows marked selected (class and
// aria-selected), the ids of those with aria-selected="true"].
const selectedJS = `(() => {
  const rows = [...document.querySelectorAll('tr[data-agent]')];
  return [rows.filter(r => r.classList.contains('selected')).map(r => r.dataset.agent).join(','),
          rows.filter(r => r.getAttribute('aria-selected') === 'true').map(r => r.dataset.agent).join(',')];
})()`

// sessionForJS gives the id of the first listening session row of agent
// AGENT other than those in EXCEPT, or ”.
const sessionForJS = `(() => {
  for (const r of document.querySelectorAll('[data-session]')) {
    const a = r.querySelector('[data-field="agent"]');
    if (a && a.textContent.trim() === AGENT && !EXCEPT.includes(r.dataset.session) && !r.classList.contains('stopped')) return r.dataset.session;
  }
  return '';
})()`

// pageErrors fails the test if the page caught errors or the tab's
// console has uncaught exceptions or errors, leaving out what allowed
// says is expected (the browser's own log of an answer with an error
// status, say).
func pageErrors(t *testing.T, ctx context.Context, errs *consoleErrors, allowed func(string) bool) {
	t.Helper()
	if pe := eval[[]any](t, ctx, `(window.silentmon && window.silentmon.errors) || []`); len(pe) > 0 {
		t.Errorf("the page caught errors: %v", pe)
	}
	var bad []string
	for _, e := range errs.list() {
		if allowed != nil && allowed(e) {
			t.Logf("the browser's console has, as expected: %s", e)
			continue
		}
		bad = append(bad, e)
	}
	if len(bad) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(bad, "\n"))
	}
}

// TestConsoleKeyboard drives the console with the keyboard alone, with
// smserver replaying the demo-like calls: `?` shows the shortcuts' help
// (#help) and hides it again; ArrowDown selects the first agent row and
// moves down the table, ArrowUp moves back (the selected row, and it alone,
// has class "selected" and aria-selected="true"); `l` starts a session for
// the selected agent (its session row appears, smserver's status lists the
// session) and the page's analyser hears that agent's call (see hears);
// `l` on the next agent starts a second session and the page then plays
// that agent's call, no longer the first's;
// `s` stops the most recent session (it leaves smserver's status and its
// row is gone or marked stopped) while the first goes on, and `s` again
// stops the first. No errors in the page or the browser's console.
func TestConsoleKeyboard(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: listens in a browser for several seconds")
	}
	browser := newBrowser(t)
	c := startConsole(t)
	ctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()
	errs := openConsole(t, ctx, c.url, c.token)
	pollJS(t, ctx, 15*time.Second, "the directory's agents in the agents table", fmt.Sprintf(`(() => {
	  const ids = [...document.querySelectorAll('tr[data-agent]')].map(r => r.dataset.agent);
	  return [ids.length >= %d, ids.join(',')];
	})()`, consoleCalls))
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll('tr[data-agent]')].map(r => r.dataset.agent)`)
	if sel := eval[[]string](t, ctx, selectedJS); sel[0] != "" || sel[1] != "" {
		t.Errorf("before any key, rows %q are marked selected (aria-selected %q), want none", sel[0], sel[1])
	}

	// The help.
	if !eval[bool](t, ctx, `document.querySelector('#help').hidden`) {
		t.Errorf("#help is visible before ?")
	}
	press(t, ctx, "?")
	pollJS(t, ctx, 5*time.Second, "#help shown after ?", `(() => {
	  const h = document.querySelector('#help');
	  return [!!h && !h.hidden && h.offsetHeight > 0 && /shortcuts/i.test(h.textContent), h ? 'hidden ' + h.hidden : 'no #help'];
	})()`)
	press(t, ctx, "?")
	pollJS(t, ctx, 5*time.Second, "#help hidden after a second ?", `(() => {
	  const h = document.querySelector('#help');
	  return [h.hidden && h.offsetHeight === 0, 'hidden ' + h.hidden];
	})()`)

	// The selection: down from nothing to the first row, then down and up
	// the table's order.
	for _, step := range []struct {
		key  string
		want string
	}{
		{kb.ArrowDown, rows[0]}, {kb.ArrowDown, rows[1]}, {kb.ArrowDown, rows[2]}, {kb.ArrowUp, rows[1]},
	} {
		press(t, ctx, step.key)
		poll(t, 5*time.Second, "agent "+step.want+" selected", func() (bool, string) {
			sel := eval[[]string](t, ctx, selectedJS)
			return sel[0] == step.want && sel[1] == step.want, fmt.Sprintf("class selected on %q, aria-selected on %q", sel[0], sel[1])
		})
	}

	// l on the first row: a session for that agent, and its call in the
	// analyser.
	first, second := rows[0], rows[1]
	press(t, ctx, kb.ArrowUp)
	poll(t, 5*time.Second, "agent "+first+" selected", func() (bool, string) {
		sel := eval[[]string](t, ctx, selectedJS)
		return sel[1] == first, fmt.Sprintf("aria-selected on %q", sel[1])
	})
	press(t, ctx, "l")
	s1 := c.sessionRow(t, ctx, first)
	if !c.serverHasSession(t, s1) {
		t.Errorf("smserver's status does not list session %s, started with l for agent %s", s1, first)
	}
	pollJS(t, ctx, 15*time.Second, "window.silentmon.analyser (WebRTC audio in the page)", `(() => {
	  const s = window.silentmon;
	  return [!!(s && s.analyser && s.sampleRate), s ? 'errors ' + JSON.stringify(s.errors || []) : 'no window.silentmon'];
	})()`)
	c.hears(t, ctx, first)

	// l on the next row: a second session, and the page now plays that
	// agent's call and not the first's.
	press(t, ctx, kb.ArrowDown)
	poll(t, 5*time.Second, "agent "+second+" selected", func() (bool, string) {
		sel := eval[[]string](t, ctx, selectedJS)
		return sel[1] == second, fmt.Sprintf("aria-selected on %q", sel[1])
	})
	press(t, ctx, "l")
	s2 := c.sessionRow(t, ctx, second, s1)
	if !c.serverHasSession(t, s2) {
		t.Errorf("smserver's status does not list session %s, started with l for agent %s", s2, second)
	}
	c.hears(t, ctx, second)

	// s: the most recent session ends, the other goes on; s again ends it.
	// The console keeps a stopped session's row for a while, marked
	// stopped and without its Stop button.
	gone := func(session string) {
		t.Helper()
		poll(t, 15*time.Second, "smserver's status without session "+session, func() (bool, string) {
			return !c.serverHasSession(t, session), "still listed"
		})
		pollJS(t, ctx, 10*time.Second, "session "+session+"'s row gone or marked stopped", `(() => {
		  const r = document.querySelector('[data-session="`+session+`"]');
		  return [!r || (r.classList.contains('stopped') && r.querySelector('button[data-action="stop"]').disabled),
		          r ? r.className + ': ' + r.innerText.replace(/\s+/g, ' ') : 'gone'];
		})()`)
	}
	press(t, ctx, "s")
	gone(s2)
	if !c.serverHasSession(t, s1) {
		t.Errorf("after one s, smserver's status no longer lists the older session %s: s stopped it too", s1)
	}
	if eval[bool](t, ctx, `(() => { const r = document.querySelector('[data-session="`+s1+`"]'); return !r || r.classList.contains('stopped'); })()`) {
		t.Errorf("after one s, the older session %s's row is gone or marked stopped, want it listening", s1)
	}
	press(t, ctx, "s")
	gone(s1)
	pollJS(t, ctx, 10*time.Second, "the Listen buttons enabled again", `(() => {
	  const b = [...document.querySelectorAll('button[data-action="listen"]')].filter(b => b.disabled);
	  return [b.length === 0, b.map(x => x.getAttribute('aria-label')).join(', ')];
	})()`)

	pageErrors(t, ctx, errs, func(e string) bool {
		return strings.Contains(e, "404") && strings.Contains(e, c.url+"/favicon.ico")
	})
}

// TestConsoleNoCaptureServer starts smsupervisor's console with
// --console-server naming an address where no capture server listens: the
// page loads, its #error banner says no capture server is reachable, the
// agents section shows its empty state and no agent row, `l` does
// nothing, and the page throws no exception.
func TestConsoleNoCaptureServer(t *testing.T) {
	if so, _, _ := runCmd(t, nil, "smsupervisor", "--help"); !strings.Contains(so, "--console-listen") {
		t.Skip("skipping: smsupervisor has no --console-listen flag yet (the console, internal/console, is not built)")
	}
	browser := newBrowser(t)
	sec := quickstart(t)
	dir := t.TempDir()
	consoleAddr, nobody := freeAddr(t), freeAddr(t)
	tokenFile := filepath.Join(dir, "console.token")
	start(t, "smsupervisor", "--listen", freeAddr(t), "--security-dir", sec, "--output", "null",
		"--metrics-listen", freeAddr(t), "--console-listen", consoleAddr, "--console-server", nobody,
		"--console-token-file", tokenFile)
	url := "http://" + consoleAddr
	var token string
	poll(t, 20*time.Second, "the console token file "+tokenFile, func() (bool, string) {
		b, err := os.ReadFile(tokenFile)
		token = strings.TrimSpace(string(b))
		return err == nil && regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(token), fmt.Sprintf("%q, %v", b, err)
	})
	poll(t, 20*time.Second, "the console at "+url, func() (bool, string) {
		resp, err := http.Get(url + "/")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return true, resp.Status
	})
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	defer cancel()
	errs := openConsole(t, ctx, url, token)
	pollJS(t, ctx, 20*time.Second, "the #error banner saying no capture server is reachable", `(() => {
	  const e = document.querySelector('#error');
	  return [!!e && !e.hidden && e.offsetHeight > 0 && e.textContent.startsWith('no capture server reachable'),
	          e ? 'hidden ' + e.hidden + ': ' + e.textContent : 'no #error'];
	})()`)
	t.Logf("#error: %s", eval[string](t, ctx, `document.querySelector('#error').textContent`))
	pollJS(t, ctx, 5*time.Second, "the agents section's empty state", `(() => {
	  const e = document.querySelector('#agents .empty');
	  return [!!e && !e.hidden && e.offsetHeight > 0 && e.textContent.includes('No agents known yet') &&
	          document.querySelectorAll('tr[data-agent]').length === 0, e ? 'hidden ' + e.hidden + ': ' + e.textContent : 'no #agents .empty'];
	})()`)
	press(t, ctx, "l")
	time.Sleep(time.Second) // what l would start, if anything
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-session]').length`); n != 0 {
		t.Errorf("l with no agent listed made %d session rows, want none", n)
	}
	if text := eval[string](t, ctx, `document.querySelector('#error').textContent`); !strings.HasPrefix(text, "no capture server reachable") {
		t.Errorf("after l the #error banner says %q, want it still saying no capture server is reachable", text)
	}
	// The audit section asks the capture server too: the browser logs its
	// error status, which is no exception of the page's.
	pageErrors(t, ctx, errs, func(e string) bool {
		return !strings.HasPrefix(e, "exception:") && strings.Contains(e, "Failed to load resource") &&
			(strings.Contains(e, url+"/api/audit") || strings.Contains(e, url+"/favicon.ico"))
	})
}

// sessionRow waits for a listening session row of agent other than those
// in except, and returns its session id.
func (c *console) sessionRow(t *testing.T, ctx context.Context, agent string, except ...string) string {
	t.Helper()
	ex, _ := json.Marshal(append([]string{}, except...))
	ag, _ := json.Marshal(agent)
	expr := strings.NewReplacer("AGENT", string(ag), "EXCEPT", string(ex)).Replace(sessionForJS)
	var id string
	poll(t, 15*time.Second, "a session row for agent "+agent, func() (bool, string) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		id = v
		return err == nil && v != "", fmt.Sprint(err, " ", eval[string](t, ctx, `(document.querySelector('#error') || {}).textContent || ''`))
	})
	return id
}

// TestConsoleUnknownAgent asks, from the page, POST /api/monitor for an
// agent the capture server's directory does not list and that no call
// names (the page lists only the agents the capture servers know, so its
// Listen cannot ask this): the answer must be an error saying "agent
// unknown", the sentence the page shows in its #error banner. While the
// capture server accepts such a request (a session waiting for the agent's
// calls) the test stops that session and skips, saying so.
func TestConsoleUnknownAgent(t *testing.T) {
	browser := newBrowser(t)
	c := startConsole(t)
	ctx, cancel := context.WithTimeout(browser, 2*time.Minute)
	defer cancel()
	errs := openConsole(t, ctx, c.url, c.token)
	type answer struct {
		Status  int    `json:"status"`
		Error   string `json:"error"`
		Session string `json:"session"`
		Body    string `json:"body"`
	}
	a, err := chromedp.Run(ctx, chromedp.Evaluate[answer](`(async () => {
	  const r = await fetch('/api/monitor', {method: 'POST', credentials: 'same-origin',
	    headers: {'Content-Type': 'application/json'}, body: JSON.stringify({agent: 'nobody-9999', record: false})});
	  const body = await r.text();
	  let j = {};
	  try { j = JSON.parse(body); } catch (e) {}
	  return {status: r.status, error: j.error || '', session: j.session || '', body};
	})()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("POST /api/monitor for agent nobody-9999: %d %s", a.Status, strings.TrimSpace(a.Body))
	if a.Status == http.StatusOK && a.Session != "" {
		stopped, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch('/api/stop', {method: 'POST', credentials: 'same-origin',
		  headers: {'Content-Type': 'application/json'}, body: JSON.stringify({session: `+fmt.Sprintf("%q", a.Session)+`})}).then(r => r.status)`,
			chromedp.EvalAwaitPromise))
		if err != nil || stopped != http.StatusOK {
			t.Errorf("stop session %s: %d %v", a.Session, stopped, err)
		}
		t.Fatalf("the console started session %s for agent nobody-9999, whom no directory, CTI binding or SIP knows; want 404 \"agent unknown\"", a.Session)
	}
	if a.Status != http.StatusNotFound || !strings.HasPrefix(a.Error, "agent unknown") {
		t.Errorf("POST /api/monitor for agent nobody-9999 answered %d %s, want 404 and an error saying \"agent unknown\"", a.Status, a.Body)
	}
	pageErrors(t, ctx, errs, func(e string) bool {
		return strings.Contains(e, "404") && (strings.Contains(e, c.url+"/favicon.ico") || strings.Contains(e, c.url+"/api/monitor"))
	})
}
