package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/supervisor"
)

func parse(t *testing.T, env map[string]string, args ...string) (*config, int, string) {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	var got *config
	cmd := newRootCmdWith(func(_ context.Context, c *config, _, _ io.Writer) error { got = c; return nil })
	var stderr bytes.Buffer
	code := cli.Run(cmd, args, io.Discard, &stderr)
	return got, code, stderr.String()
}

// TestExampleConfig checks that the shipped example file parses to the
// defaults of smsupervisor's keys.
func TestExampleConfig(t *testing.T) {
	c, code, se := parse(t, nil, "--config", "../../docs/silentmon.example.yaml")
	if code != 0 {
		t.Fatalf("example config: exit %d: %s", code, se)
	}
	d, _, _ := parse(t, nil)
	if c.Supervisor.Output != d.Supervisor.Output || c.Supervisor.MaxSessions != d.Supervisor.MaxSessions ||
		c.Supervisor.IdleTimeout != d.Supervisor.IdleTimeout || c.Supervisor.Playout.MinDelay != d.Supervisor.Playout.MinDelay ||
		c.Supervisor.Playout.MaxDelay != d.Supervisor.Playout.MaxDelay || c.Supervisor.Playout.InitialDelay != d.Supervisor.Playout.InitialDelay {
		t.Fatalf("example config differs from the defaults:\n%+v\n%+v", c.Supervisor, d.Supervisor)
	}
	if d.Supervisor.MaxSessions != supervisor.DefaultMaxSessions || d.Supervisor.IdleTimeout != supervisor.DefaultIdleTimeout {
		t.Fatalf("defaults %d sessions, idle %v", d.Supervisor.MaxSessions, d.Supervisor.IdleTimeout)
	}
}

func TestSessionKeys(t *testing.T) {
	t.Run("from env and flag", func(t *testing.T) {
		c, code, se := parse(t, map[string]string{"SILENTMON_SUPERVISOR_MAX_SESSIONS": "8"}, "--idle-timeout-ms", "1500", "--output", "null")
		if code != 0 || c.Supervisor.MaxSessions != 8 || c.Supervisor.IdleTimeout != 1500*time.Millisecond {
			t.Fatalf("exit %d %s: %+v", code, se, c)
		}
	})
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"SILENTMON_SUPERVISOR_MAX_SESSIONS": "0"}, nil, "supervisor.max_sessions has value 0"},
		{nil, []string{"--idle-timeout-ms", "5"}, "supervisor.idle_timeout_ms has value 5"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, code, se := parse(t, tc.env, tc.args...)
			if code != 2 || !strings.Contains(se, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 naming %q", code, se, tc.want)
			}
		})
	}
}
