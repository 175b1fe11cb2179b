package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/cluster"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/internal/status"
)

// failoverMember is one capture server of the failover test's cluster.
type failoverMember struct {
	name, addr string
	p          *proc
}

// failoverReading is one look at the page's analyser after the kill.
type failoverReading struct {
	at   time.Duration // since the kill
	hz   float64
	peak float64
	ok   bool // agent 1001's tone: 1000±10 Hz above -70 dB
}

// TestConsoleFailover: two smserver members of one cluster whose SPANs
// both carry the demo's calls (each replays the same capture once the
// session exists; the supervisor drops the duplicates), smsupervisor with
// its console asking both, and a headless Chromium listening to agent
// 1001 after a click on Listen. Once the page's analyser hears the 1 kHz
// tone, the member the page names as the session's capture server is
// killed with SIGKILL; then the page still hears 1 kHz (dominant 1000±10
// Hz at every reading over at least 3 s, starting within 10 s of the
// kill), its row of the session, with the same session id, names the
// other member as capture server, the surviving member and the
// supervisor still hold that session id, and the page and the browser's
// console logged no error. It logs the time from the kill to the tone
// heard again.
func TestConsoleFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: listens in a browser across a capture server's failover for about a minute")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipping: not root (the e2e console tests run Chromium without its sandbox, which needs root here)")
	}
	if so, _, _ := runCmd(t, nil, "smsupervisor", "--help"); !strings.Contains(so, "--console-listen") {
		t.Skip("skipping: smsupervisor has no --console-listen flag (the console is not built)")
	}
	browser := newBrowser(t)

	// The rig: the demo's calls, long enough to listen before and after
	// the kill; both members get the directory and replay the capture.
	sec := quickstart(t)
	dir := t.TempDir()
	calls, err := gen.Build(gen.BuildConfig{Calls: consoleCalls, VLAN: 85, Priority: 5, Duration: 90 * time.Second, AgentTone: 1000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	pcap, _ := writeCalls(t, calls, 7)
	agents := filepath.Join(dir, "agents.yaml")
	var yaml strings.Builder
	yaml.WriteString("agents:\n")
	for i := range consoleCalls {
		fmt.Fprintf(&yaml, "  - {id: \"%d\", name: \"Agent %d\", team: Billing, extensions: [\"%d\"], phone_ip: 10.10.0.%d}\n",
			1001+i, 1001+i, 5001+i, i+1)
	}
	if err := os.WriteFile(agents, []byte(yaml.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	members := []*failoverMember{{name: "sm-a", addr: freeAddr(t)}, {name: "sm-b", addr: freeAddr(t)}}
	peers := []string{freeAddr(t), freeAddr(t)}
	supAddr, consoleAddr := freeAddr(t), freeAddr(t)
	tokenFile := filepath.Join(dir, "console.token")
	start(t, "smsupervisor", "--listen", supAddr, "--security-dir", sec, "--output", "null",
		"--metrics-listen", freeAddr(t), "--max-delay-ms", fmt.Sprint(consoleMaxDelayMs),
		"--console-listen", consoleAddr, "--console-server", members[0].addr, "--console-server", members[1].addr,
		"--console-token-file", tokenFile)
	for i, m := range members {
		m.p = start(t, "smserver", "--name", m.name, "--cluster-listen", peers[i], "--peer", peers[1-i],
			"--pcap", pcap, "--pcap-wait-session", "--listen", m.addr, "--security-dir", sec,
			"--metrics-listen", freeAddr(t), "--directory", agents, "--audit-file", filepath.Join(dir, m.name+".audit.jsonl"))
	}
	for _, m := range members {
		waitReady(t, sec, m.addr)
	}
	// The cluster is formed: each member sees the other.
	for i, m := range members {
		other := members[1-i].name
		poll(t, 30*time.Second, m.name+" seeing "+other+" in its cluster", func() (bool, string) {
			st, raw := memberStatus(t, sec, m.addr)
			return st != nil && st.Cluster != nil && slices.ContainsFunc(st.Cluster.Members, func(x cluster.MemberStatus) bool {
				return x.Name == other
			}), raw
		})
	}
	var token string
	poll(t, 20*time.Second, "the console token file "+tokenFile, func() (bool, string) {
		b, err := os.ReadFile(tokenFile)
		token = strings.TrimSpace(string(b))
		return err == nil && len(token) == 32, fmt.Sprintf("%q, %v", b, err)
	})
	url := "http://" + consoleAddr

	ctx, cancel := context.WithTimeout(browser, 4*time.Minute)
	defer cancel()
	errs := watchConsole(ctx)
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/?token="+token)); err != nil {
		t.Fatal(err)
	}
	pollJS(t, ctx, 20*time.Second, "the page's live connection", `(() => {
	  const c = document.querySelector('#conn');
	  return [!!c && c.textContent.trim() === 'live', c ? c.textContent : 'no #conn'];
	})()`)
	pollJS(t, ctx, 30*time.Second, "agent 1001's Listen button", `(() => {
	  const b = document.querySelector('tr[data-agent="1001"] button[data-action="listen"]');
	  return [!!b && !b.disabled, b ? 'disabled' : [...document.querySelectorAll('tr[data-agent]')].map(r => r.dataset.agent).join(',')];
	})()`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`tr[data-agent="1001"] button[data-action="listen"]`))); err != nil {
		t.Fatalf("click agent 1001's Listen: %v", err)
	}
	var session string
	poll(t, 20*time.Second, "a session row for agent 1001", func() (bool, string) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](sessionOf1001JS))
		session = v
		return err == nil && v != "", fmt.Sprint(err, " ", eval[string](t, ctx, `(document.querySelector('#error') || {}).textContent || ''`))
	})
	t.Logf("the page listens to session %s", session)
	pollJS(t, ctx, 30*time.Second, "window.silentmon.analyser (WebRTC audio in the page)", `(() => {
	  const s = window.silentmon;
	  return [!!(s && s.analyser && s.sampleRate), s ? 'errors ' + JSON.stringify(s.errors || []) : 'no window.silentmon'];
	})()`)
	expr := strings.Replace(toneJS, "OTHERS", "[]", 1)
	read := func() (failoverReading, error) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[*spectrum](expr))
		if err != nil || v == nil {
			return failoverReading{}, fmt.Errorf("no spectrum: %v", err)
		}
		return failoverReading{hz: v.Hz, peak: v.Peak, ok: v.Peak > -70 && math.Abs(v.Hz-1000) <= 10}, nil
	}
	heard := 0
	poll(t, 30*time.Second, "agent 1001's 1 kHz tone in the page's analyser before the failover", func() (bool, string) {
		r, err := read()
		if err != nil {
			return false, err.Error()
		}
		if r.ok {
			heard++
		} else {
			heard = 0
		}
		return heard >= 5, fmt.Sprintf("dominant %.1f Hz at %.1f dB", r.hz, r.peak)
	})

	// Both members capture the session and stream it: the supervisor
	// drops one copy of each packet.
	poll(t, 30*time.Second, "both members capturing session "+session, func() (bool, string) {
		st, raw := memberStatus(t, sec, members[0].addr)
		if st == nil {
			return false, raw
		}
		for _, s := range st.Sessions {
			if s.ID == session {
				return slices.Contains(s.CapturedBy, "sm-a") && slices.Contains(s.CapturedBy, "sm-b"), fmt.Sprint("captured_by ", s.CapturedBy)
			}
		}
		return false, "session not listed: " + raw
	})
	var before service.SupervisorStatus
	poll(t, 30*time.Second, "duplicates dropped by the supervisor (both members streaming)", func() (bool, string) {
		raw := supStatus(t, sec, supAddr, &before)
		return before.Duplicates > 0, raw
	})
	var streaming string
	poll(t, 15*time.Second, "a member named as the session's capture server on the page", func() (bool, string) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](captureServerJS(session)))
		streaming = strings.TrimSpace(v)
		return err == nil && (streaming == "sm-a" || streaming == "sm-b"), fmt.Sprintf("%q %v", v, err)
	})
	var victim, survivor *failoverMember
	for _, m := range members {
		if m.name == streaming {
			victim = m
		} else {
			survivor = m
		}
	}
	t.Logf("before the kill: the page names %s as capture server; the supervisor dropped %d duplicates of %d packets",
		streaming, before.Duplicates, before.Packets)
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`window.silentmon.analyser.failoverMark = true`)); err != nil {
		t.Fatal(err)
	}

	// Kill the member streaming the session.
	supStatus(t, sec, supAddr, &before)
	killed := time.Now()
	if err := victim.p.cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", victim.name, err)
	}
	select {
	case <-victim.p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10 s after SIGKILL", victim.name)
	}

	// The tone, again: every reading of a run spanning at least 3 s is
	// 1000±10 Hz, and the run starts within 10 s of the kill.
	const recoverWithin, runFor = 10 * time.Second, 3 * time.Second
	var readings []failoverReading
	runStart := -1
	for {
		r, err := read()
		r.at = time.Since(killed)
		if err != nil {
			t.Fatalf("%v after the kill: %v", r.at.Round(time.Millisecond), err)
		}
		readings = append(readings, r)
		switch {
		case !r.ok:
			runStart = -1
		case runStart < 0:
			runStart = len(readings) - 1
		}
		if runStart >= 0 && r.at-readings[runStart].at >= runFor && len(readings)-runStart >= 10 {
			break
		}
		if runStart < 0 && r.at > recoverWithin || r.at > recoverWithin+runFor+5*time.Second {
			t.Fatalf("the page did not hear agent 1001's 1 kHz tone steadily after %s was killed:\n%s", victim.name, formatReadings(readings))
		}
		time.Sleep(100 * time.Millisecond)
	}
	back := readings[runStart].at
	bad, longest, gapFrom := 0, time.Duration(0), time.Duration(-1)
	for _, r := range readings {
		if !r.ok {
			bad++
			if gapFrom < 0 {
				gapFrom = r.at
			}
			continue
		}
		if gapFrom >= 0 {
			longest = max(longest, r.at-gapFrom)
			gapFrom = -1
		}
	}
	run := readings[runStart:]
	t.Logf("kill of %s to tone heard again: %v (first reading %v after the kill; %d of %d readings without the tone, longest gap %v); then %d readings over %v all 1000±10 Hz (last %.1f Hz at %.1f dB)",
		victim.name, back.Round(time.Millisecond), readings[0].at.Round(time.Millisecond), bad, len(readings), longest.Round(time.Millisecond),
		len(run), (run[len(run)-1].at - run[0].at).Round(time.Millisecond), run[len(run)-1].hz, run[len(run)-1].peak)
	if back > recoverWithin {
		t.Errorf("the tone came back %v after the kill, want within %v", back, recoverWithin)
	}
	if !eval[bool](t, ctx, `!!(window.silentmon.analyser && window.silentmon.analyser.failoverMark)`) {
		t.Logf("the page made a new analyser (a new WebRTC connection) across the failover")
	}

	// The page's row: the same session, now from the surviving member.
	deadline := time.Now().Add(20 * time.Second)
	var shown, id string
	for {
		id = eval[string](t, ctx, sessionOf1001JS)
		shown = strings.TrimSpace(eval[string](t, ctx, captureServerJS(session)))
		if (id == session && shown == survivor.name) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if id != session {
		t.Errorf("after the failover the page's session row for agent 1001 is %q, want the same session %s", id, session)
	}
	if shown != survivor.name {
		var after service.SupervisorStatus
		raw := supStatus(t, sec, supAddr, &after)
		t.Errorf("20 s after %s was killed the page names %q as the capture server of session %s, want %s (the member still streaming); supervisor status:\n%s",
			victim.name, shown, session, survivor.name, raw)
	}
	rows := eval[int](t, ctx, `[...document.querySelectorAll('[data-session]')].filter(r => {
	  const a = r.querySelector('[data-field="agent"]'); return a && a.textContent.includes('1001');
	}).length`)
	if rows != 1 {
		t.Errorf("after the failover the page has %d session rows for agent 1001, want 1", rows)
	}

	// The surviving member and the supervisor hold the same session.
	st, raw := memberStatus(t, sec, survivor.addr)
	if st == nil || !slices.ContainsFunc(st.Sessions, func(s status.SessionStatus) bool {
		return s.ID == session && slices.Contains(s.CapturedBy, survivor.name)
	}) {
		t.Errorf("%s's status does not show session %s captured by %s after the failover:\n%s", survivor.name, session, survivor.name, raw)
	}
	var after service.SupervisorStatus
	raw = supStatus(t, sec, supAddr, &after)
	c0, l0 := concealedLost(before, session)
	c1, l1 := concealedLost(after, session)
	t.Logf("the supervisor's player of session %s across the kill: %d packets concealed, %d lost (both directions)", session, c1-c0, l1-l0)
	open := 0
	for _, s := range after.Sessions {
		if s.Agent == "1001" && s.State == "open" {
			open++
			if s.ID != session {
				t.Errorf("the supervisor has session %s open for agent 1001, want only %s", s.ID, session)
			}
		}
	}
	if open != 1 {
		t.Errorf("the supervisor has %d open sessions for agent 1001 after the failover, want 1 (%s):\n%s", open, session, raw)
	}

	// No errors on the page or in the browser's console.
	if pe := eval[[]any](t, ctx, `(window.silentmon && window.silentmon.errors) || []`); len(pe) > 0 {
		t.Errorf("the page caught errors: %v", pe)
	}
	if banner := eval[string](t, ctx, `(() => { const e = document.querySelector('#error'); return e && !e.hidden ? e.textContent : ''; })()`); banner != "" {
		t.Errorf("the page shows the error banner %q after the failover", banner)
	}
	var bad2 []string
	for _, e := range errs.list() {
		if strings.Contains(e, "404") && strings.Contains(e, url+"/favicon.ico") {
			continue
		}
		bad2 = append(bad2, e)
	}
	if len(bad2) > 0 {
		t.Errorf("the browser's console has errors:\n%s", strings.Join(bad2, "\n"))
	}
}

// sessionOf1001JS gives the id of the page's session row for agent 1001,
// or "".
const sessionOf1001JS = `(() => {
  for (const r of document.querySelectorAll('[data-session]')) {
    const a = r.querySelector('[data-field="agent"]');
    if (a && a.textContent.includes('1001')) return r.dataset.session;
  }
  return '';
})()`

// captureServerJS gives the capture server the page shows for session.
func captureServerJS(session string) string {
	return fmt.Sprintf(`(() => {
	  const c = document.querySelector('[data-session=%q] [data-field="capture-server"]');
	  return c ? c.textContent : '';
	})()`, session)
}

// memberStatus returns a capture server's smctl status --json (nil when
// it does not answer) and what smctl printed.
func memberStatus(t *testing.T, sec, addr string) (*status.ServerStatus, string) {
	t.Helper()
	so, se, code := runCmd(t, nil, "smctl", "status", "--json", "--server", addr, "--security-dir", sec, "--timeout", "3s")
	if code != 0 {
		return nil, se
	}
	var st status.ServerStatus
	if err := json.Unmarshal([]byte(so), &st); err != nil {
		return nil, err.Error() + ": " + so
	}
	return &st, so
}

// supStatus decodes the supervisor's smctl status --json into v and
// returns the JSON.
func supStatus(t *testing.T, sec, addr string, v *service.SupervisorStatus) string {
	t.Helper()
	return (&replay{sec: sec, supAddr: addr}).supervisorStatus(t, v)
}

// formatReadings lists the analyser's readings, one a line.
func formatReadings(rs []failoverReading) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  +%v %.1f Hz at %.1f dB %v\n", r.at.Round(time.Millisecond), r.hz, r.peak, r.ok)
	}
	return b.String()
}

// concealedLost sums the concealed and lost packets of session's streams
// in the supervisor's status.
func concealedLost(st service.SupervisorStatus, session string) (concealed, lost int64) {
	for _, s := range st.Sessions {
		if s.ID == session {
			for _, x := range s.Streams {
				concealed += int64(x.Concealed)
				lost += int64(x.Lost)
			}
		}
	}
	return concealed, lost
}
