package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
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

// TestNarrowbandFlag: by default sessions play at their best rate;
// --narrowband plays them all at 8 kHz (supervisor.Config.Narrowband).
func TestNarrowbandFlag(t *testing.T) {
	c, code, se := parse(t, nil, "--output", "null")
	if code != 0 || c.Supervisor.Narrowband {
		t.Fatalf("default: exit %d %s, Narrowband %v; want false", code, se, c != nil && c.Supervisor.Narrowband)
	}
	c, code, se = parse(t, nil, "--output", "null", "--narrowband")
	if code != 0 || !c.Supervisor.Narrowband {
		t.Fatalf("--narrowband: exit %d %s; want Narrowband", code, se)
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

// TestConsoleKeys checks the console's flags and keys: defaults, values
// from flags and the environment, and bad values exiting 2 with one
// sentence naming them.
func TestConsoleKeys(t *testing.T) {
	d, code, se := parse(t, nil, "--security-dir", "/sec")
	if code != 0 || d.Console.Listen != "127.0.0.1:9230" || !d.Console.Default || d.Console.TokenFile != "/sec/console.token" || len(d.Console.Servers) != 0 {
		t.Fatalf("defaults: exit %d %s: %+v", code, se, d.Console)
	}
	c, code, se := parse(t, map[string]string{"SILENTMON_CONSOLE_SERVERS": "cap-a:42228,cap-b:42228"},
		"--console-listen", "127.0.0.1:9999", "--console-token-file", "/tmp/t", "--console-supervisor-address", "sup:42328")
	if code != 0 || c.Console.Listen != "127.0.0.1:9999" || c.Console.Default || c.Console.TokenFile != "/tmp/t" ||
		c.Console.SupervisorAddr != "sup:42328" || len(c.Console.Servers) != 2 || c.Console.Servers[1] != "cap-b:42228" {
		t.Fatalf("set: exit %d %s: %+v", code, se, c.Console)
	}
	c, code, _ = parse(t, nil, "--console-listen", "off", "--insecure")
	if code != 0 || c.Console.Listen != "" || c.Console.TokenFile != "console.token" {
		t.Fatalf("off: %+v", c.Console)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--console-listen", "nowhere"}, `smsupervisor: Configuration key console.listen has value "nowhere", which is not HOST:PORT.`},
		{[]string{"--console-listen", "127.0.0.1:99999"}, `smsupervisor: Configuration key console.listen has value "127.0.0.1:99999": port "99999" is not between 0 and 65535.`},
		{[]string{"--console-listen", "0.0.0.0:9230", "--insecure"}, `smsupervisor: Configuration key console.listen has value "0.0.0.0:9230", which is not a loopback address`},
		{[]string{"--console-server", "cap-a"}, `smsupervisor: Configuration key console.servers has value "cap-a", which is not HOST:PORT.`},
		{[]string{"--console-supervisor-address", "sup"}, `smsupervisor: Configuration key console.supervisor_address has value "sup", which is not HOST:PORT.`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, code, se := parse(t, nil, tc.args...)
			if code != 2 || !strings.HasPrefix(se, tc.want) || strings.Count(se, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line %q", code, se, tc.want)
			}
		})
	}
}

// TestConsoleStart runs the service with the console on a free loopback
// port: stderr carries the line with the URL and token, the token file
// holds the same token with mode 0600, the URL opens the console, and the
// next start writes another token.
func TestConsoleStart(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "console.token")
	start := func() string {
		c, code, se := parse(t, nil, "--insecure", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
			"--output", "null", "--console-listen", "127.0.0.1:0", "--console-token-file", tokenFile)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, se)
		}
		ctx, cancel := context.WithCancel(context.Background())
		stderr := &lineWriter{lines: make(chan string, 64)}
		done := make(chan error, 1)
		go func() { done <- run(ctx, c, io.Discard, stderr) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		}()
		var url string
		for url == "" {
			select {
			case l := <-stderr.lines:
				if u, ok := strings.CutPrefix(l, "console: "); ok {
					url = u
				}
			case err := <-done:
				t.Fatalf("run ended: %v", err)
			}
		}
		token, ok := strings.CutPrefix(url[strings.Index(url, "/?"):], "/?token=")
		if !strings.HasPrefix(url, "http://127.0.0.1:") || !ok || len(token) != 32 {
			t.Fatalf("start line %q", url)
		}
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(tokenFile)
		if string(b) != token+"\n" || fi.Mode().Perm() != 0o600 {
			t.Fatalf("token file %q mode %v, token %s", b, fi.Mode().Perm(), token)
		}
		cl := &http.Client{Jar: newJar(t)}
		res, err := cl.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d", url, res.StatusCode)
		}
		cl.CloseIdleConnections()
		return token
	}
	if a, b := start(), start(); a == b {
		t.Fatalf("two starts wrote the same token %s", a)
	}
}

// lineWriter sends each line written to it on lines.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		select {
		case w.lines <- string(w.buf[:i]):
		default:
		}
		w.buf = w.buf[i+1:]
	}
}

func newJar(t *testing.T) http.CookieJar {
	j, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return j
}
