package supervisor

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/silentmon/silentmon/internal/testutil"

	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/playout/audiotest"
	"github.com/silentmon/silentmon/relay"
)

// TestOutputCheck: a wav output is ready while its directory exists and
// is writable, named with the output spec when not; null is always
// ready; a portaudio output is ready while its device is open.
func TestOutputCheck(t *testing.T) {
	dir := t.TempDir()
	r := newRig(t, Config{Output: "wav:" + dir + "/{session}.wav"})
	var unwritable bool
	r.sup.writable = func(d string) error {
		if unwritable {
			return errors.New("directory " + filepath.Clean(d) + " is not writable: permission denied")
		}
		return dirWritable(d)
	}
	check := r.sup.OutputCheck()
	if err := check.Check(); err != nil {
		t.Fatalf("writable directory: %v", err)
	}
	unwritable = true
	want := "wav:" + dir + "/{session}.wav: directory " + dir + " is not writable: permission denied"
	if err := check.Check(); err == nil || err.Error() != want {
		t.Fatalf("unwritable: %v, want %q", err, want)
	}
	unwritable = false
	gone := dir + "/gone"
	r2 := newRig(t, Config{Output: "wav:" + t.TempDir() + "/x.wav"})
	r2.sup.names.dir = gone
	if err := r2.sup.OutputCheck().Check(); err == nil || !strings.HasSuffix(err.Error(), "directory "+gone+" does not exist") {
		t.Fatalf("missing directory: %v", err)
	}
	if err := newRig(t, Config{Output: "null"}).sup.OutputCheck().Check(); err != nil {
		t.Fatalf("null: %v", err)
	}
	pa := newRig(t, Config{Output: "portaudio", OpenDevice: func(string) (playout.Sink, error) { return playout.NewNullSink(1), nil }})
	c := pa.sup.OutputCheck()
	if err := c.Check(); err != nil {
		t.Fatalf("open device: %v", err)
	}
	pa.sup.Close()
	if err := c.Check(); err == nil || err.Error() != "portaudio: the device is closed" {
		t.Fatalf("closed device: %v", err)
	}
}

// TestHealthPlayerClock: Health names an open session whose Player clock
// has not ticked for more than 10 s, and is nil while it ticks.
func TestHealthPlayerClock(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	clock, players := audiotest.NewClock(start), audiotest.NewClock(start)
	sup, err := New(Config{Output: "null", Logger: quiet(), Clock: clock, Playout: playout.Config{Clock: players}})
	if err != nil {
		t.Fatal(err)
	}
	defer sup.Close()
	r := &rig{t: t, clock: clock, sup: sup, peer: &relay.Peer{Hello: relay.Hello{Role: relay.RoleCapture, Name: "capture-1"}}}
	c := newCall("a", 1000, 1)
	for i := 0; i < 5; i++ {
		if err := r.media("a", c); err != nil {
			t.Fatal(err)
		}
		players.Advance(20 * time.Millisecond)
	}
	waitTick := time.Now().Add(5 * time.Second)
	for sup.table.Load() == nil || (*sup.table.Load())["a"].player.LastTick().IsZero() {
		if time.Now().After(waitTick) {
			t.Fatal("the Player never ticked")
		}
		time.Sleep(time.Millisecond)
	}
	if err := sup.Health(); err != nil {
		t.Fatalf("playing: %v", err)
	}
	// The Players' clock stops; the supervisor's runs on.
	clock.Advance(11 * time.Second)
	err = sup.Health()
	if err == nil || !strings.Contains(err.Error(), "loop player of session a has not ticked for 11s (bound 10s)") {
		t.Fatalf("clock stopped: %v", err)
	}
}

// TestMetricsConventions: the registry passes promlint; jitter and
// targets are in seconds; the playout counters end in _total and keep
// what closed sessions counted; per-session series (session and agent
// labels) exist while the session is open and are gone once it closes.
func TestMetricsConventions(t *testing.T) {
	r := newRig(t, Config{Output: "null"})
	reg := prometheus.NewRegistry()
	if err := r.sup.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := r.notice("a", "1001", relay.SessionStarted); err != nil {
		t.Fatal(err)
	}
	c := newCall("a", 1000, 1)
	for i := 0; i < 50; i++ {
		if i%10 == 3 {
			c.next() // lost
			continue
		}
		if err := r.media("a", c); err != nil {
			t.Fatal(err)
		}
		r.clock.Advance(20 * time.Millisecond)
	}
	r.settle()
	gather := func() map[string]float64 {
		mfs := testutil.LintMetrics(t, reg)
		got := map[string]float64{}
		for _, mf := range mfs {
			if strings.HasSuffix(mf.GetName(), "_ms") {
				t.Errorf("%s: times are in seconds", mf.GetName())
			}
			for _, m := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					name += " " + l.GetName() + "=" + l.GetValue()
				}
				got[name] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
		return got
	}
	open := gather()
	lost := open["silentmon_playout_lost_packets_total direction=from-agent"]
	if lost < 4 || open["silentmon_playout_session_mos agent=1001 session=a"] <= 0 {
		t.Fatalf("open session: lost %v; metrics %v", lost, open)
	}
	if _, ok := open["silentmon_playout_session_jitter_seconds agent=1001 session=a"]; !ok {
		t.Fatalf("no session jitter series: %v", open)
	}
	if tgt := open["silentmon_playout_target_seconds direction=from-agent"]; tgt <= 0 || tgt > 1 {
		t.Fatalf("target %v s, want a fraction of a second", tgt)
	}
	if err := r.notice("a", "1001", relay.SessionStopped); err != nil {
		t.Fatal(err)
	}
	closed := gather()
	for name := range closed {
		if strings.Contains(name, "session=") {
			t.Errorf("series %s outlives its session", name)
		}
	}
	if got := closed["silentmon_playout_lost_packets_total direction=from-agent"]; got != lost {
		t.Errorf("lost after the session closed: %v, want %v kept", got, lost)
	}
	if closed["silentmon_supervisor_audio_written_seconds_total"] < open["silentmon_supervisor_audio_written_seconds_total"] ||
		closed["silentmon_supervisor_audio_written_seconds_total"] == 0 {
		t.Errorf("audio written went from %v to %v", open["silentmon_supervisor_audio_written_seconds_total"],
			closed["silentmon_supervisor_audio_written_seconds_total"])
	}
}
