package supervisor

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/silentmon/silentmon/relay"
)

// TestTwoSessionsTwoFiles: two agents' sessions, announced with their
// agents, each go to their own file named from the template, holding
// exactly that agent's audio; files are 0600.
func TestTwoSessionsTwoFiles(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{agent}-{session}.wav")})
	a, b := newCall("sa", 1000, 1), newCall("sb", 1400, 2)
	if err := r.notice("sa", "1001", relay.SessionStarted); err != nil {
		t.Fatal(err)
	}
	if err := r.notice("sb", "1002", relay.SessionStarted); err != nil {
		t.Fatal(err)
	}
	r.play(100, a, b)
	r.settle()
	st := r.sup.Snapshot()
	if len(st.Sessions) != 2 || len(st.Streams) != 2 {
		t.Fatalf("status: %d sessions, %d streams; want 2 and 2: %+v", len(st.Sessions), len(st.Streams), st)
	}
	for _, s := range st.Sessions {
		if s.State != "open" || len(s.Streams) != 1 || s.Streams[0].Packets != 100 || s.Streams[0].Codec != "PCMU" ||
			s.Streams[0].VLAN != 85 || !strings.HasPrefix(s.Streams[0].Src, "10.10.0.") || s.WorstMOS < 4 ||
			!slices.Equal(s.Servers, []string{"capture-1"}) {
			t.Errorf("session status %+v", s)
		}
	}
	if err := r.sup.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		call  *call
		file  string
		other float64
	}{{a, "1001-sa.wav", 1400}, {b, "1002-sb.wav", 1000}} {
		path := filepath.Join(dir, c.file)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", c.file, fi.Mode().Perm())
		}
		wavSizes(t, path)
		got := readWAV(t, path)
		checkTone(t, c.file, got, c.call.hz, c.other)
		checkExact(t, c.file, got, c.call.sent)
	}
	if n, _ := filepath.Glob(filepath.Join(dir, "*")); len(n) != 2 {
		t.Fatalf("files %v, want 2", n)
	}
	if tot := r.sup.Totals(); tot.Packets != 200 || tot.SessionsOpened != 2 || tot.Seconds < 3.9 {
		t.Fatalf("totals %+v", tot)
	}
}

// TestPlainPathNaming: a plain PATH goes to the first session, later
// ones get their id before the extension; an existing file is never
// truncated, the next free numbered name is taken; without a notice the
// agent is "unknown".
func TestPlainPathNaming(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "out.wav")
	os.WriteFile(keep, []byte("an earlier recording"), 0o644)
	os.WriteFile(filepath.Join(dir, "unknown-s3.wav"), []byte("x"), 0o644)
	r := newRig(t, Config{Output: "wav:" + keep})
	a, b := newCall("s1", 1000, 1), newCall("s2", 1400, 2)
	r.play(20, a, b)
	r.settle()
	st := r.sup.Snapshot()
	outs := map[string]string{}
	for _, s := range st.Sessions {
		outs[s.ID] = s.Output
		if s.Agent != "unknown" {
			t.Errorf("session %s agent %q, want unknown", s.ID, s.Agent)
		}
	}
	if outs["s1"] != filepath.Join(dir, "out-1.wav") || outs["s2"] != filepath.Join(dir, "out-s2.wav") {
		t.Fatalf("outputs %v", outs)
	}
	r.sup.Close()
	if b, _ := os.ReadFile(keep); string(b) != "an earlier recording" {
		t.Fatalf("existing file now holds %q", b)
	}
	checkTone(t, "out-1.wav", readWAV(t, outs["s1"]), 1000, 1400)
	checkTone(t, "out-s2.wav", readWAV(t, outs["s2"]), 1400, 1000)

	// A template whose name exists.
	r2 := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{agent}-{session}.wav")})
	r2.play(5, newCall("s3", 1000, 3))
	if o := r2.sup.Snapshot().Sessions[0].Output; o != filepath.Join(dir, "unknown-s3-1.wav") {
		t.Fatalf("output %s, want unknown-s3-1.wav", o)
	}
}

// TestNames covers the id check and the agent's file-name form.
func TestNames(t *testing.T) {
	for id, ok := range map[string]bool{"9f2c61d04be3a871": true, "a.b_c-D": true, strings.Repeat("x", 64): true,
		"": false, ".": false, "..": false, "../x": false, "a/b": false, strings.Repeat("x", 65): false,
		"a b": false, "é": false, "a\x00": false} {
		if filter.ValidID(id) != ok {
			t.Errorf("filter.ValidID(%q) = %v", id, !ok)
		}
	}
	for in, want := range map[string]string{"1001": "1001", "": "unknown", "..": "unknown", "../../etc": ".._.._etc",
		"a/b": "a_b", strings.Repeat("y", 80): strings.Repeat("y", 64), "jo smith": "jo_smith"} {
		if got := pathAgent(in); got != want {
			t.Errorf("pathAgent(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"out.wav": "out-x.wav", "out": "out-x", ".wav": ".wav-x", "a.b.wav": "a.b-x.wav"} {
		if got := insertSuffix(in, "-x"); got != want {
			t.Errorf("insertSuffix(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestHostileSessionIDs: media and notices with ids that are not safe are
// dropped and counted, and no file is created anywhere.
func TestHostileSessionIDs(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "out")
	os.Mkdir(dir, 0o700)
	r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{agent}-{session}.wav")})
	c := newCall("x", 1000, 1)
	bad := []string{"../x", "..", ".", "a/b", strings.Repeat("a", 255), "a\x00b"}
	for _, id := range bad {
		if err := r.media(id, c); err != nil {
			t.Fatalf("media of %q: %v", id, err)
		}
	}
	for _, id := range []string{"", "../x", strings.Repeat("a", 300)} {
		if err := r.notice(id, "1001", relay.SessionStarted); err != nil {
			t.Fatalf("notice of %q: %v", id, err)
		}
	}
	// A valid session with a hostile agent stays in its directory.
	r.notice("ok", "../../evil", relay.SessionStarted)
	r.play(5, newCall("ok", 1000, 2))
	r.sup.Close()
	var files []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if want := filepath.Join(dir, ".._.._evil-ok.wav"); !slices.Equal(files, []string{want}) {
		t.Fatalf("files %q, want only %s", files, want)
	}
	if tot := r.sup.Totals(); tot.BadSessionIDs != uint64(len(bad)+3) || tot.SessionsOpened != 1 {
		t.Fatalf("totals %+v, want %d bad ids and 1 session", tot, len(bad)+3)
	}
}

// TestSessionLimit: beyond MaxSessions a new session's media is dropped
// and counted; once one closes, a new one opens.
func TestSessionLimit(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{session}.wav"), MaxSessions: 2})
	a, b, c := newCall("a", 1000, 1), newCall("b", 1200, 2), newCall("c", 1400, 3)
	r.play(10, a, b, c)
	if tot := r.sup.Totals(); tot.Refused != 10 || tot.SessionsOpened != 2 {
		t.Fatalf("totals %+v, want 10 refused packets and 2 sessions", tot)
	}
	if _, err := os.Stat(filepath.Join(dir, "c.wav")); err == nil {
		t.Fatal("a refused session has a file")
	}
	r.notice("a", "", relay.SessionStopped)
	r.play(10, c)
	if st := r.sup.Snapshot(); len(st.Sessions) != 3 || st.Sessions[0].ID != "c" || st.Sessions[2].State != "closed" {
		t.Fatalf("sessions %+v", st.Sessions)
	}
}

// TestIdleAndStoppedSessionsClose: a session without media for
// IdleTimeout, and one its capture server says stopped, are closed with
// their files finalised; a stop from a server that did not announce the
// session does not close it.
func TestIdleAndStoppedSessionsClose(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, "{session}.wav"), IdleTimeout: 2 * time.Second})
	idle, stopped := newCall("idle", 1000, 1), newCall("stopped", 1400, 2)
	r.notice("stopped", "1002", relay.SessionStarted)
	r.play(25, idle, stopped)
	other := &relay.Peer{Hello: relay.Hello{Role: relay.RoleCapture, Name: "capture-2"}}
	r.sup.Session(other, &relay.SessionNotice{Session: "stopped", State: relay.SessionStopped})
	if n := len(r.sup.Snapshot().Sessions); n != 2 || r.sup.Snapshot().Sessions[0].State != "open" {
		t.Fatal("a stop from a server that did not announce the session closed it")
	}
	r.notice("stopped", "1002", relay.SessionStopped)
	r.play(100, stopped) // keeps it open if it were not closed: it reopens below instead
	r.clock.Advance(3 * time.Second)
	st := r.sup.Snapshot()
	reasons := map[string][]string{}
	for _, s := range st.Sessions {
		reasons[s.ID] = append(reasons[s.ID], s.State+"/"+s.Closed)
	}
	if !slices.Equal(reasons["idle"], []string{"closed/idle"}) || !slices.Contains(reasons["stopped"], "closed/stopped") {
		t.Fatalf("sessions %v", reasons)
	}
	for _, f := range []string{"idle.wav", "stopped.wav"} {
		wavSizes(t, filepath.Join(dir, f))
	}
	checkTone(t, "idle.wav", readWAV(t, filepath.Join(dir, "idle.wav")), 1000, 1400)
	// Media after the stop opened the session again, in a new file.
	if _, err := os.Stat(filepath.Join(dir, "stopped-1.wav")); err != nil {
		t.Fatalf("media after the stop: %v", err)
	}
}

// TestPortAudioPlaysMostRecent: with a device output the most recently
// started session plays; when it stops the other takes over; both are
// buffered and counted all along.
func TestPortAudioPlaysMostRecent(t *testing.T) {
	var dev *audiotest.Sink
	var clock *audiotest.Clock
	open := func(spec string) (playout.Sink, error) {
		if spec != "portaudio:Fake Card" {
			t.Errorf("device spec %q", spec)
		}
		dev = audiotest.NewSink(1, true, clock)
		return dev, nil
	}
	clock = audiotest.NewClock(time.Unix(1_700_000_000, 0))
	sup, err := New(Config{Output: "portaudio:Fake Card", OpenDevice: open, Clock: clock,
		Playout: playout.Config{Clock: clock}, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	r := &rig{t: t, clock: clock, sup: sup, peer: &relay.Peer{Hello: relay.Hello{Role: relay.RoleCapture, Name: "capture-1"}}}
	a, b := newCall("a", 1000, 1), newCall("b", 1400, 2)
	r.play(50, a)
	mark1 := len(dev.Samples())
	r.play(100, a, b)
	mark2 := len(dev.Samples())
	st := sup.Snapshot()
	if st.Playing != "b" || !st.Sessions[0].Playing || st.Sessions[0].ID != "b" || st.Sessions[1].Playing {
		t.Fatalf("status: playing %q, sessions %+v", st.Playing, st.Sessions)
	}
	if st.Sessions[1].Streams[0].Packets != 150 {
		t.Fatalf("the session not playing was not buffered and counted: %+v", st.Sessions[1])
	}
	r.notice("b", "", relay.SessionStopped)
	r.play(100, a)
	mark3 := len(dev.Samples())
	if st := sup.Snapshot(); st.Playing != "a" {
		t.Fatalf("after b stopped, playing %q", st.Playing)
	}
	s := dev.Samples()
	checkTone(t, "device before b", s[400:mark1], 1000, 1400)
	checkTone(t, "device while b plays", s[mark1+800:mark2], 1400, 1000)
	checkTone(t, "device after b stopped", s[mark2+800:mark3], 1000, 1400)
	if err := sup.Close(); err != nil {
		t.Fatal(err)
	}
	if !dev.Closed() {
		t.Fatal("device not closed")
	}
}

// TestOnlyCaptureMaySend: media and notices from a peer without the
// capture role are refused with CodeUnauthorized and counted.
func TestOnlyCaptureMaySend(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	r.peer = &relay.Peer{Hello: relay.Hello{Role: relay.RoleClient}}
	var e *relay.Error
	if err := r.media("s", newCall("s", 1000, 1)); !errors.As(err, &e) || e.Code != relay.CodeUnauthorized {
		t.Fatalf("media from a client: %v", err)
	}
	if err := r.notice("s", "1", relay.SessionStarted); !errors.As(err, &e) || e.Code != relay.CodeUnauthorized {
		t.Fatalf("notice from a client: %v", err)
	}
	if tot := r.sup.Totals(); tot.Unauthorized != 2 || tot.SessionsOpened != 0 {
		t.Fatalf("totals %+v", tot)
	}
}

// TestBadOutputs: New refuses specs it cannot honour, naming them.
func TestBadOutputs(t *testing.T) {
	dir := t.TempDir()
	for _, spec := range []string{"speaker", "wav:", "wav:" + dir + "/nodir/x.wav", "wav:" + dir + "/{agent}/x.wav", "null:x"} {
		_, err := New(Config{Output: spec, Logger: quiet()})
		if !errors.Is(err, ErrBadOutput) || !strings.Contains(err.Error(), spec) {
			t.Errorf("New(%q): %v", spec, err)
		}
	}
	_, err := New(Config{Output: "portaudio", OpenDevice: func(string) (playout.Sink, error) { return nil, playout.ErrPortAudioNotBuilt }})
	if !errors.Is(err, playout.ErrPortAudioNotBuilt) {
		t.Errorf("device error: %v", err)
	}
}

// TestMetrics: the metrics carry the session count and per-direction
// figures; the only labels are the direction and, on per-session series,
// the session id and agent.
func TestMetrics(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	r.play(20, newCall("a", 1000, 1), newCall("b", 1400, 2))
	reg := prometheus.NewRegistry()
	if err := r.sup.Register(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				if n := l.GetName(); n != "direction" && n != "session" && n != "agent" {
					t.Errorf("metric %s has label %s", name, l.GetName())
				}
				name += "/" + l.GetValue()
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			got[name] = v
		}
	}
	if got["silentmon_supervisor_sessions"] != 2 || got["silentmon_supervisor_media_packets_total"] != 40 ||
		got["silentmon_playout_mos/from-agent"] < 4 || got["silentmon_playout_worst_mos"] < 4 {
		t.Fatalf("metrics %v", got)
	}
}

// TestLoopbackTwoSessions: two sessions pushed by a relay.Forwarder
// through a relay.Server over loopback, announced with their agents, at
// the real pace: two files, each with its agent's tone only.
func TestLoopbackTwoSessions(t *testing.T) {
	dir := t.TempDir()
	sup, err := New(Config{Output: "wav:" + filepath.Join(dir, "{agent}-{session}.wav"), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := relay.NewServer(relay.ServerConfig{Handler: sup, Logger: quiet(), Role: relay.RoleSupervisor})
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	fw := relay.NewForwarder(relay.ForwarderConfig{Logger: quiet(), Name: "capture-1"})
	addr := ln.Addr().String()
	sa := &filter.Session{ID: "sa", Agent: "1001", Supervisor: addr}
	sb := &filter.Session{ID: "sb", Agent: "1002", Supervisor: addr}
	a, b := newCall("sa", 1000, 1), newCall("sb", 1400, 2)
	tick := time.NewTicker(20 * time.Millisecond)
	for i := 0; i < 50; i++ {
		<-tick.C
		for _, x := range []struct {
			s *filter.Session
			c *call
		}{{sa, a}, {sb, b}} {
			fw.Forward(x.s, &relay.MediaPacket{Direction: filter.FromAgent, Time: time.Now().UnixNano(),
				Src: x.c.src, Dst: x.c.dst, Data: x.c.next()})
		}
	}
	tick.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fw.Flush(ctx)
	fw.Sync(nil) // both sessions stop: the supervisor closes them
	deadline := time.Now().Add(5 * time.Second)
	for len(sup.Outputs()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	fw.Close()
	srv.Close()
	<-done
	outs := sup.Outputs()
	if err := sup.Close(); err != nil {
		t.Fatal(err)
	}
	if len(outs) != 2 {
		t.Fatalf("closed sessions %+v, want both closed by their stop notices", outs)
	}
	checkTone(t, "1001-sa.wav", readWAV(t, filepath.Join(dir, "1001-sa.wav")), 1000, 1400)
	checkTone(t, "1002-sb.wav", readWAV(t, filepath.Join(dir, "1002-sb.wav")), 1400, 1000)
	wavSizes(t, filepath.Join(dir, "1001-sa.wav"))
}

// TestStreamingServerNamedFirst: two capture servers with overlapping
// SPAN ports push the same session; status names first the one whose
// packets are played (the other's are duplicates), and after a failover
// (the first stops sending) the one that took over, so a page or status
// never names a dead member as the session's capture server.
func TestStreamingServerNamedFirst(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	a, b := r.peer, &relay.Peer{Hello: relay.Hello{Role: relay.RoleCapture, Name: "capture-2"}}
	c := newCall("s1", 1000, 1)
	servers := func() []string {
		for _, s := range r.sup.Snapshot().Sessions {
			if s.ID == "s1" {
				return s.Servers
			}
		}
		return nil
	}
	for i := 0; i < 10; i++ { // a first, then b with the same packet: a duplicate
		pkt := c.next()
		for _, p := range []*relay.Peer{a, b} {
			f := frame(t, "s1", c, pkt)
			if err := r.sup.Media(p, &f); err != nil {
				t.Fatal(err)
			}
		}
		r.clock.Advance(20 * time.Millisecond)
	}
	if got := servers(); !slices.Equal(got, []string{"capture-1", "capture-2"}) {
		t.Fatalf("servers while capture-1 streams: %v", got)
	}
	for i := 0; i < 10; i++ { // capture-1 is gone: only capture-2's packets
		f := frame(t, "s1", c, c.next())
		if err := r.sup.Media(b, &f); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(20 * time.Millisecond)
	}
	if got := servers(); !slices.Equal(got, []string{"capture-2", "capture-1"}) {
		t.Fatalf("servers after the failover: %v, want capture-2 first", got)
	}
}
