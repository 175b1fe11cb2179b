package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// clearEnv removes every SILENTMON_ variable for the test's duration, so
// that the tests see only what they set.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, EnvPrefix+"_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
}

// runService runs a command with the shared service flags through
// validation, with env set and a configuration file holding yaml (none if
// empty). It returns what validation produced, the exit code, stderr and
// the file's path.
func runService(t *testing.T, yaml string, env map[string]string, args ...string) (Service, int, string, string) {
	t.Helper()
	clearEnv(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	path := ""
	if yaml != "" {
		path = filepath.Join(t.TempDir(), "sm.yaml")
		if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	c := &cobra.Command{Use: "smtest", Args: cobra.NoArgs}
	cfg := NewConfig()
	AddServiceFlags(c.Flags(), cfg, "listen", "127.0.0.1:9228")
	var got Service
	c.RunE = LoadAndRun(cfg, ReadService, func(_ context.Context, s Service, _, _ io.Writer) error { got = s; return nil })
	var stderr bytes.Buffer
	code := Run(c, args, io.Discard, &stderr)
	return got, code, stderr.String(), path
}

// TestUnknownFileKey checks that a key of the file the program does not
// know, at any depth, exits 2 with one sentence naming the key, the file
// and the nearest known key.
func TestUnknownFileKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, key, suggest string
	}{
		{"nested", "lockout:\n  treshold: 5\n", "lockout.treshold", "lockout.threshold"},
		{"nested with a known sibling", "lockout:\n  duration: 10m\n  treshhold: 5\n", "lockout.treshhold", "lockout.threshold"},
		{"top level", "lisen: 127.0.0.1:42228\n", "lisen", "listen"},
		{"misspelt group", "heartbeet:\n  timeout_ms: 20000\n", "heartbeet.timeout_ms", "heartbeat.timeout_ms"},
		{"flat dotted key", "metrics.listn: 127.0.0.1:1\n", "metrics.listn", "metrics.listen"},
		{"under a value", "listen:\n  port: 1\n", "listen.port", "listen_port"},
		{"three levels", "tls:\n  strict:\n    really: true\n", "tls.strict.really", "tls.strict"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, se, path := runService(t, tc.yaml, nil)
			want := `smtest: Configuration file "` + path + `" has unknown key ` + tc.key + "; did you mean " + tc.suggest + "?\n"
			if code != ExitUsage || se != want {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, se, want)
			}
		})
	}
}

// TestKnownFileKeys checks that keys bound to flags, keys with only a
// default, keys in any case and groups left empty are accepted, and that
// their values are read.
func TestKnownFileKeys(t *testing.T) {
	s, code, se, _ := runService(t, "Lockout:\n  Threshold: 7\ntls:\n  strict: true\nheartbeat:\nmetrics: {}\ndebug:\n  listen: 127.0.0.1:6060\nlog:\n  level: debug\n", nil)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	if s.LockThreshold != 7 || !s.StrictKeys || s.DebugListen != "127.0.0.1:6060" || s.LogLevel != "debug" || s.MetricsListen != "127.0.0.1:9228" {
		t.Fatalf("read %+v", s)
	}
}

// TestGroupGivenValue checks that a value given to a group of keys is an
// error naming the group and its keys.
func TestGroupGivenValue(t *testing.T) {
	_, code, se, path := runService(t, "lockout: 3\n", nil)
	want := `smtest: Configuration file "` + path + `" gives lockout a value, but lockout is a group of keys (lockout.duration, lockout.max_sources, lockout.threshold).` + "\n"
	if code != ExitUsage || se != want {
		t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, se, want)
	}
}

// TestUnknownEnv checks that a SILENTMON_ variable that names no key exits
// 2 naming the variable and the nearest known key's variable, with or
// without a configuration file, and that known variables still work.
func TestUnknownEnv(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, variable, suggest string
	}{
		{"misspelt", "", "SILENTMON_LOCKOUT_TRESHOLD", "SILENTMON_LOCKOUT_THRESHOLD"},
		{"with a file", "listen: 127.0.0.1:1\n", "SILENTMON_METRICS_LISTN", "SILENTMON_METRICS_LISTEN"},
		{"top level", "", "SILENTMON_INSECUR", "SILENTMON_INSECURE"},
		{"empty value", "", "SILENTMON_DEBUG_LISTN", "SILENTMON_DEBUG_LISTEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, se, _ := runService(t, tc.yaml, map[string]string{tc.variable: ""})
			want := "smtest: Environment variable " + tc.variable + " names no configuration key; did you mean " + tc.suggest + "?\n"
			if code != ExitUsage || se != want {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, se, want)
			}
		})
	}
	if _, code, se, _ := runService(t, "", map[string]string{"SILENTMON_CA_PASSWORD": "x"}); code != ExitUsage || !strings.Contains(se, "does not belong on a server") {
		t.Errorf("SILENTMON_CA_PASSWORD: exit %d, stderr %q", code, se)
	}
	s, code, se, _ := runService(t, "", map[string]string{"SILENTMON_LOCKOUT_THRESHOLD": "9", "SILENTMON_TLS_STRICT": "true", "SILENTMON_DEBUG_LISTEN": "127.0.0.1:6061"})
	if code != 0 || s.LockThreshold != 9 || !s.StrictKeys || s.DebugListen != "127.0.0.1:6061" {
		t.Fatalf("known variables: exit %d %s: %+v", code, se, s)
	}
}

// TestDebugListen checks that profiling is off by default and that a bad
// address is a usage error naming the key.
func TestDebugListen(t *testing.T) {
	s, code, se, _ := runService(t, "", nil)
	if code != 0 || s.DebugListen != "" {
		t.Fatalf("default: exit %d %s, debug.listen %q; want off", code, se, s.DebugListen)
	}
	s, code, _, _ = runService(t, "", nil, "--debug-listen", "127.0.0.1:6060")
	if code != 0 || s.DebugListen != "127.0.0.1:6060" {
		t.Fatalf("flag: exit %d, %q", code, s.DebugListen)
	}
	_, code, se, _ = runService(t, "", nil, "--debug-listen", "6060")
	if code != ExitUsage || !strings.Contains(se, `debug.listen has value "6060"`) {
		t.Fatalf("bad address: exit %d, %q", code, se)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3}, {"treshold", "threshold", 1},
		{"kitten", "sitting", 3}, {"lockout.threshold", "lockout.threshold", 0}, {"ab", "ba", 2},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
	if got := nearest("lockout.treshold", []string{"listen", "lockout.duration", "lockout.threshold"}); got != "lockout.threshold" {
		t.Errorf("nearest: %s", got)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("heartbeat.interval_ms"); got != "SILENTMON_HEARTBEAT_INTERVAL_MS" {
		t.Fatal(got)
	}
}

// runProgram is runService for a program named prog, whose section of the
// file applies.
func runProgram(t *testing.T, prog, yaml string, args ...string) (Service, int, string, string) {
	t.Helper()
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "silentmon.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	args = append(args, "--config", path)
	c := &cobra.Command{Use: prog + " [flags]", Args: cobra.NoArgs}
	cfg := NewConfig()
	AddServiceFlags(c.Flags(), cfg, "listen", "127.0.0.1:9228")
	var got Service
	c.RunE = LoadAndRun(cfg, ReadService, func(_ context.Context, s Service, _, _ io.Writer) error { got = s; return nil })
	var stderr bytes.Buffer
	code := Run(c, args, io.Discard, &stderr)
	return got, code, stderr.String(), path
}

const sectionsYAML = `security_dir: /etc/silentmon/security
log:
  level: warn
lockout:
  threshold: 4
smserver:
  listen: 127.0.0.1:42228
  metrics:
    listen: 127.0.0.1:9228
  log:
    level: debug
  interface: [eth1]
smsupervisor:
  listen: 127.0.0.1:42229
  metrics:
    listen: 127.0.0.1:9229
  output: wav:/var/lib/silentmon/{session}.wav
smctl:
  server: 127.0.0.1:42228
smnic:
  vlan: 85
`

// TestSections checks that each program reads the top-level keys and its
// own section, whose keys win, and skips the other programs' sections
// (their keys are unknown to it) without an error.
func TestSections(t *testing.T) {
	for _, tc := range []struct {
		prog, listen, metrics, level string
	}{
		{"smsupervisor", "127.0.0.1:42229", "127.0.0.1:9229", "warn"},
		{"smother", ":42228", "127.0.0.1:9228", "warn"},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			yaml := sectionsYAML
			if tc.prog != "smsupervisor" {
				// smserver's interface key is unknown to this test's
				// service flags, so only programs that skip its section
				// can read the whole file.
				yaml = strings.Replace(yaml, "  interface: [eth1]\n", "", 1)
			}
			s, code, se, _ := runProgram(t, tc.prog, strings.Replace(yaml, "  output: wav:/var/lib/silentmon/{session}.wav\n", "", 1))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, se)
			}
			if s.Listen != tc.listen || s.MetricsListen != tc.metrics || s.LogLevel != tc.level || s.LockThreshold != 4 || s.SecurityDir != "/etc/silentmon/security" {
				t.Fatalf("read %+v; want listen %s, metrics %s, log level %s, lockout 4", s, tc.listen, tc.metrics, tc.level)
			}
		})
	}
	t.Run("smserver", func(t *testing.T) {
		yaml := strings.Replace(sectionsYAML, "  interface: [eth1]\n", "", 1)
		s, code, se, _ := runProgram(t, "smserver", strings.Replace(yaml, "  output: wav:/var/lib/silentmon/{session}.wav\n", "", 1))
		if code != 0 {
			t.Fatalf("exit %d: %s", code, se)
		}
		if s.Listen != "127.0.0.1:42228" || s.LogLevel != "debug" || s.LockThreshold != 4 {
			t.Fatalf("read %+v; want smserver's section over the top level", s)
		}
	})
	t.Run("flag over section", func(t *testing.T) {
		s, code, se, _ := runProgram(t, "smserver", "smserver:\n  log:\n    level: debug\n", "--log-level", "error")
		if code != 0 || s.LogLevel != "error" {
			t.Fatalf("exit %d %s, log level %q; want the flag's error", code, se, s.LogLevel)
		}
	})
}

// TestSectionUnknownKey checks that a misspelt key in the program's own
// section is refused with the sentence naming the section, and that the
// top level is still checked.
func TestSectionUnknownKey(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"own section", "smserver:\n  lisen: 127.0.0.1:1\nsmsupervisor:\n  output: null\n",
			"has unknown key smserver.lisen; did you mean smserver.listen?"},
		{"own section nested", "smserver:\n  lockout:\n    treshold: 5\n",
			"has unknown key smserver.lockout.treshold; did you mean smserver.lockout.threshold?"},
		{"top level with sections", "smsupervisor:\n  output: null\nlisen: 127.0.0.1:1\n",
			"has unknown key lisen; did you mean listen?"},
		{"group given a value", "smserver:\n  lockout: 3\n",
			"gives smserver.lockout a value, but smserver.lockout is a group of keys (smserver.lockout.duration, smserver.lockout.max_sources, smserver.lockout.threshold)."},
		{"section given a value", "smserver: 3\n",
			"gives smserver a value, but smserver is the section of smserver's keys."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, se, path := runProgram(t, "smserver", tc.yaml)
			want := `smserver: Configuration file "` + path + `" ` + tc.want
			if code != ExitUsage || !strings.HasPrefix(se, want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, se, want)
			}
		})
	}
}

// TestLoadAgain checks that a second Load reads the file anew: a changed
// value is seen, and a key removed from the file falls back to its
// default.
func TestLoadAgain(t *testing.T) {
	clearEnv(t)
	path := filepath.Join(t.TempDir(), "silentmon.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &cobra.Command{Use: "smserver"}
	cfg := NewConfig()
	cfg.Program = "smserver"
	AddServiceFlags(c.Flags(), cfg, "listen", "127.0.0.1:9228")
	write("lockout:\n  threshold: 7\nsmserver:\n  log:\n    level: debug\n")
	if err := cfg.Load(path); err != nil {
		t.Fatal(err)
	}
	if cfg.String("log.level") != "debug" || cfg.V.GetInt("lockout.threshold") != 7 {
		t.Fatalf("first load: log.level %q, lockout.threshold %d", cfg.String("log.level"), cfg.V.GetInt("lockout.threshold"))
	}
	write("smserver:\n  log:\n    level: warn\n")
	if err := cfg.Load(path); err != nil {
		t.Fatal(err)
	}
	if cfg.String("log.level") != "warn" || cfg.V.GetInt("lockout.threshold") != 3 {
		t.Fatalf("second load: log.level %q, lockout.threshold %d; want warn and the default 3", cfg.String("log.level"), cfg.V.GetInt("lockout.threshold"))
	}
	write("smserver:\n  log:\n    levl: warn\n")
	if err := cfg.Load(path); err == nil || !strings.Contains(err.Error(), "smserver.log.levl") {
		t.Fatalf("a bad key on the second load: %v", err)
	}
}
