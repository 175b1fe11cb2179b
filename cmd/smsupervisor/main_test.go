package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/supervisor"
)

func parse(t *testing.T, env map[string]string, args ...string) (*config, int, string) {
	t.Helper()
	for _, kv := range os.Environ() { // only what the test sets
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, cli.EnvPrefix+"_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
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
	c, code, se := parse(t, nil, "--config", exampleFile)
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

// exampleFile is the shipped example of smsupervisor's configuration.
const exampleFile = "../../docs/smsupervisor.example.yaml"

// TestExampleHasEveryKey checks that the shipped example holds every key
// smsupervisor knows and no other, so that it cannot drift from the
// program.
func TestExampleHasEveryKey(t *testing.T) {
	_, cfg := newCommand(nil)
	known := cfg.Keys()
	v := viper.New()
	v.SetConfigFile(exampleFile)
	v.SetConfigType("yaml")
	if err := v.ReadInConfig(); err != nil {
		t.Fatal(err)
	}
	inFile := v.AllKeys()
	for _, k := range known {
		if k != "config" && !slices.Contains(inFile, k) {
			t.Errorf("key %s is missing from %s", k, exampleFile)
		}
	}
	for _, k := range inFile {
		if !slices.Contains(known, k) {
			t.Errorf("%s has key %s, which smsupervisor does not know", exampleFile, k)
		}
	}
}

// TestUnknownKeys checks that a misspelt key in the file, a key of
// smserver's and a SILENTMON_ variable that names no key each exit 2 with
// one sentence naming it and the nearest key smsupervisor knows (the whole
// sentence is compared where the nearest key is the obvious one).
func TestUnknownKeys(t *testing.T) {
	conf := func(yaml string) string {
		p := filepath.Join(t.TempDir(), "sup.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	misspelt, other := conf("playout:\n  max_delay: 300\n"), conf("interface: [eth1]\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"misspelt key", nil, []string{"--config", misspelt},
			`smsupervisor: Configuration file "` + misspelt + `" has unknown key playout.max_delay; did you mean playout.max_delay_ms?`},
		{"smserver's key", nil, []string{"--config", other},
			`smsupervisor: Configuration file "` + other + `" has unknown key interface; did you mean `},
		{"misspelt variable", map[string]string{"SILENTMON_SUPERVISOR_MAX_SESSION": "5"}, nil,
			"smsupervisor: Environment variable SILENTMON_SUPERVISOR_MAX_SESSION names no configuration key; did you mean SILENTMON_SUPERVISOR_MAX_SESSIONS?"},
		{"misspelt lockout variable", map[string]string{"SILENTMON_LOCKOUT_TRESHOLD": "5"}, []string{"--config", misspelt},
			"smsupervisor: Environment variable SILENTMON_LOCKOUT_TRESHOLD names no configuration key; did you mean SILENTMON_LOCKOUT_THRESHOLD?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, se := parse(t, tc.env, tc.args...)
			if code != 2 || !strings.HasPrefix(se, tc.want) || strings.Count(se, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line %q", code, se, tc.want)
			}
		})
	}
	c, code, se := parse(t, map[string]string{"SILENTMON_PLAYOUT_MAX_DELAY_MS": "300"}, "--config", conf("playout:\n  initial_delay_ms: 60\n"))
	if code != 0 || c.Supervisor.Playout.MaxDelay != 300*time.Millisecond || c.Supervisor.Playout.InitialDelay != 60*time.Millisecond {
		t.Fatalf("exit %d %s: %+v", code, se, c.Supervisor.Playout)
	}
}

// TestDebugListen checks that profiling is off unless --debug-listen names
// an address.
func TestDebugListen(t *testing.T) {
	c, code, se := parse(t, nil)
	if code != 0 || c.DebugListen != "" {
		t.Fatalf("default: exit %d %s: debug.listen %q", code, se, c.DebugListen)
	}
	c, code, se = parse(t, nil, "--debug-listen", "127.0.0.1:6062")
	if code != 0 || c.DebugListen != "127.0.0.1:6062" {
		t.Fatalf("flag: exit %d %s: debug.listen %q", code, se, c.DebugListen)
	}
}
