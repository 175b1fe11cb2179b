package main

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestReload checks smsupervisor's reload: a new log.level applies at
// once (a debug line appears) and is named in the summary, a changed
// listen address is logged as needing a restart and kept, and a refused
// configuration keeps the one in use with one error line.
func TestReload(t *testing.T) {
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	cur := &config{file: "/etc/silentmon/silentmon.yaml"}
	cur.Listen, cur.LogLevel = ":42228", "info"
	next := *cur
	next.Listen, next.LogLevel = ":42300", "debug"
	cur.reload = func() (*config, error) { return &next, nil }
	r := &reloader{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level})), level: level, cur: cur}

	if sum := r.reload(); sum != "reloaded: configuration: log.level debug" {
		t.Errorf("summary %q", sum)
	}
	if level.Level() != slog.LevelDebug || !strings.Contains(logs.String(), "level=DEBUG") {
		t.Errorf("log.level debug not applied:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `level=WARN msg="configuration key listen changed in /etc/silentmon/silentmon.yaml but needs a restart`) {
		t.Errorf("no restart warning for listen:\n%s", logs.String())
	}
	if r.cur.Listen != ":42228" {
		t.Errorf("listen in use %q, want the old one kept", r.cur.Listen)
	}

	logs.Reset()
	r.cur.reload = func() (*config, error) {
		return nil, errors.New("configuration key log.level has value \"loud\"; use debug, info, warn or error")
	}
	if sum := r.reload(); sum != "reloaded: configuration: refused, the one in use kept" {
		t.Errorf("summary %q", sum)
	}
	if n := strings.Count(logs.String(), "level=ERROR"); n != 1 || !strings.Contains(logs.String(), "loud") {
		t.Errorf("want one error line naming the value:\n%s", logs.String())
	}
	if level.Level() != slog.LevelDebug {
		t.Error("a refused configuration changed the log level")
	}
}
