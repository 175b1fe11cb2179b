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

	"github.com/silentmon/silentmon/internal/captureserver"
	"github.com/silentmon/silentmon/internal/cli"
)

// parse runs the command line through validation only.
func parse(t *testing.T, env map[string]string, args ...string) (*captureserver.Config, int, string) {
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
	var got *captureserver.Config
	cmd := newRootCmdWith(func(_ context.Context, c *captureserver.Config, _, _ io.Writer) error { got = c; return nil })
	var stderr bytes.Buffer
	code := cli.Run(cmd, args, io.Discard, &stderr)
	return got, code, stderr.String()
}

func pcapFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.pcap")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigPrecedence(t *testing.T) {
	pc := pcapFile(t)
	yaml := filepath.Join(t.TempDir(), "sm.yaml")
	os.WriteFile(yaml, []byte("heartbeat:\n  interval_ms: 3000\n  retries: 7\nmedia:\n  tos: 0x28\nlisten: 127.0.0.1:1000\n"), 0o600)

	c, code, se := parse(t, nil, "--pcap", pc)
	if code != 0 {
		t.Fatalf("defaults: exit %d: %s", code, se)
	}
	if c.HeartbeatIntv != 5*time.Second || c.HeartbeatRetry != 5 || c.HeartbeatTmo != 15*time.Second ||
		c.MediaTOS != 0xB8 || c.Listen != ":42228" || c.ClusterListen != ":42029" ||
		c.MetricsListen != "127.0.0.1:9228" || c.LockThreshold != 3 || c.LockDuration != 15*time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	c, _, _ = parse(t, nil, "--pcap", pc, "--config", yaml)
	if c.HeartbeatIntv != 3*time.Second || c.HeartbeatRetry != 7 || c.MediaTOS != 0x28 || c.Listen != "127.0.0.1:1000" {
		t.Fatalf("file: %+v", c)
	}
	c, _, _ = parse(t, map[string]string{"SILENTMON_HEARTBEAT_INTERVAL_MS": "2000", "SILENTMON_LISTEN": "127.0.0.1:2000"},
		"--pcap", pc, "--config", yaml)
	if c.HeartbeatIntv != 2*time.Second || c.HeartbeatRetry != 7 || c.Listen != "127.0.0.1:2000" {
		t.Fatalf("env over file: %+v", c)
	}
	c, _, _ = parse(t, map[string]string{"SILENTMON_LISTEN": "127.0.0.1:2000"},
		"--pcap", pc, "--config", yaml, "--listen", "127.0.0.1:3000")
	if c.Listen != "127.0.0.1:3000" {
		t.Fatalf("flag over env: %+v", c)
	}
	c, _, _ = parse(t, map[string]string{"SILENTMON_MEDIA_TOS": "0x2E"}, "--pcap", pc)
	if c.MediaTOS != 0x2E {
		t.Fatalf("hex ToS from env: %#x", c.MediaTOS)
	}
	c, _, _ = parse(t, map[string]string{"SILENTMON_CLUSTER_PEERS": "10.0.0.1:42029, 10.0.0.2:42029"}, "--pcap", pc)
	if strings.Join(c.Peers, " ") != "10.0.0.1:42029 10.0.0.2:42029" {
		t.Fatalf("peers from env: %q", c.Peers)
	}
}

// TestExampleConfig checks that the shipped example file is valid and
// holds the defaults.
func TestExampleConfig(t *testing.T) {
	c, code, se := parse(t, nil, "--pcap", pcapFile(t), "--config", exampleFile)
	if code != 0 {
		t.Fatalf("example config: exit %d: %s", code, se)
	}
	d, _, _ := parse(t, nil, "--pcap", pcapFile(t))
	c.Pcap, d.Pcap = "", ""
	if c.HeartbeatIntv != d.HeartbeatIntv || c.MediaTOS != d.MediaTOS || c.Live != d.Live || c.QueueLen != d.QueueLen ||
		c.Listen != d.Listen || c.ClusterListen != d.ClusterListen || c.RecordDir != d.RecordDir || c.Cluster != d.Cluster ||
		c.SupervisorGrace != d.SupervisorGrace || c.DebugListen != d.DebugListen || c.MetricsListen != d.MetricsListen || d.SupervisorGrace != 10*time.Minute || len(c.Admins) != len(d.Admins) {
		t.Fatalf("example config differs from the defaults:\n%+v\n%+v", c, d)
	}
}

func TestConfigErrors(t *testing.T) {
	pc := pcapFile(t)
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--pcap", pc, "--listen", "nope"}, `listen has value "nope"`},
		{map[string]string{"SILENTMON_MEDIA_TOS": "300"}, []string{"--pcap", pc}, "media.tos has value 300"},
		{map[string]string{"SILENTMON_HEARTBEAT_RETRIES": "many"}, []string{"--pcap", pc}, `heartbeat.retries has value "many"`},
		{map[string]string{"SILENTMON_LOCKOUT_DURATION": "forever"}, []string{"--pcap", pc}, `lockout.duration has value "forever"`},
		{map[string]string{"SILENTMON_LOG_LEVEL": "loud"}, []string{"--pcap", pc}, `log.level has value "loud"`},
		{map[string]string{"SILENTMON_CAPTURE_BLOCK_SIZE": "5000"}, []string{"--pcap", pc}, "capture.block_size has value 5000"},
		{nil, []string{"--pcap", pc, "--peer", "justahost"}, `cluster.peers has value "justahost"`},
		{nil, []string{"--pcap", pc, "--interface", "eth0"}, "not both"},
		{nil, []string{"--interface", "nosuchif9"}, `"nosuchif9" does not exist`},
		{nil, nil, "--interface IF"},
		{nil, []string{"--pcap", pc, "--pcap-speed", "-1"}, "pcap_speed"},
		{nil, []string{"--pcap", pc, "--supervisor-grace", "10"}, "session.supervisor_grace_ms has value 10"},
		{nil, []string{"--pcap", pc, "--admin", "AB:CD"}, `security.admins has value "AB:CD"`},
	} {
		t.Run(tc.want, func(t *testing.T) {
			_, code, se := parse(t, tc.env, tc.args...)
			if code != 2 || !strings.Contains(se, tc.want) || strings.Count(strings.TrimSpace(se), "\n") != 0 {
				t.Errorf("%v %v: exit %d, stderr %q; want 2 and one line naming %q", tc.env, tc.args, code, se, tc.want)
			}
		})
	}
}

// exampleFile is the shipped example of smserver's configuration.
const exampleFile = "../../docs/smserver.example.yaml"

// TestExampleHasEveryKey checks that the shipped example holds every key
// smserver knows and no other, so that it cannot drift from the program.
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
			t.Errorf("%s has key %s, which smserver does not know", exampleFile, k)
		}
	}
}

// TestUnknownKeys checks that a misspelt key in the file, a key of
// smsupervisor's and a SILENTMON_ variable that names no key each exit 2
// with one sentence naming it and the nearest key smserver knows (the
// whole sentence is compared where the nearest key is the obvious one).
func TestUnknownKeys(t *testing.T) {
	pc := pcapFile(t)
	conf := func(yaml string) string {
		p := filepath.Join(t.TempDir(), "sm.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	misspelt, other := conf("lockout:\n  treshold: 5\n"), conf("output: null\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"misspelt key", nil, []string{"--pcap", pc, "--config", misspelt},
			`smserver: Configuration file "` + misspelt + `" has unknown key lockout.treshold; did you mean lockout.threshold?`},
		{"smsupervisor's key", nil, []string{"--pcap", pc, "--config", other},
			`smserver: Configuration file "` + other + `" has unknown key output; did you mean `},
		{"misspelt variable", map[string]string{"SILENTMON_LOCKOUT_TRESHOLD": "5"}, []string{"--pcap", pc},
			"smserver: Environment variable SILENTMON_LOCKOUT_TRESHOLD names no configuration key; did you mean SILENTMON_LOCKOUT_THRESHOLD?"},
		{"misspelt nested variable", map[string]string{"SILENTMON_CAPTURE_WORKER": "2"}, []string{"--pcap", pc, "--config", misspelt},
			"smserver: Environment variable SILENTMON_CAPTURE_WORKER names no configuration key; did you mean SILENTMON_CAPTURE_WORKERS?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, se := parse(t, tc.env, tc.args...)
			if code != 2 || !strings.HasPrefix(se, tc.want) || strings.Count(se, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line %q", code, se, tc.want)
			}
		})
	}
	// A known variable and a key with only a default are accepted.
	c, code, se := parse(t, map[string]string{"SILENTMON_CAPTURE_SNAPLEN": "1500"}, "--pcap", pc,
		"--config", conf("capture:\n  num_blocks: 32\n"))
	if code != 0 || c.Live.SnapLen != 1500 || c.Live.NumBlocks != 32 {
		t.Fatalf("exit %d %s: %+v", code, se, c.Live)
	}
}

// TestDebugListen checks that profiling is off unless --debug-listen (or
// debug.listen) names an address.
func TestDebugListen(t *testing.T) {
	pc := pcapFile(t)
	c, code, se := parse(t, nil, "--pcap", pc)
	if code != 0 || c.DebugListen != "" {
		t.Fatalf("default: exit %d %s: debug.listen %q", code, se, c.DebugListen)
	}
	c, code, se = parse(t, map[string]string{"SILENTMON_DEBUG_LISTEN": "127.0.0.1:6060"}, "--pcap", pc)
	if code != 0 || c.DebugListen != "127.0.0.1:6060" {
		t.Fatalf("from env: exit %d %s: debug.listen %q", code, se, c.DebugListen)
	}
	c, code, se = parse(t, nil, "--pcap", pc, "--debug-listen", "127.0.0.1:6061")
	if code != 0 || c.DebugListen != "127.0.0.1:6061" {
		t.Fatalf("flag: exit %d %s: debug.listen %q", code, se, c.DebugListen)
	}
}

// TestAuthorizationRules: authorization.rules is read from the file as a
// list of rules and from SILENTMON_AUTHORIZATION_RULES as YAML text; none
// is the default; a bad rule, or rules with --insecure, exit 2 with one
// sentence naming the rule and the value.
func TestAuthorizationRules(t *testing.T) {
	pc := pcapFile(t)
	conf := func(yaml string) string {
		p := filepath.Join(t.TempDir(), "sm.yaml")
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, code, se := parse(t, nil, "--pcap", pc)
	if code != 0 || len(c.Rules) != 0 {
		t.Fatalf("default: exit %d %s, rules %+v", code, se, c.Rules)
	}
	c, code, se = parse(t, nil, "--pcap", pc, "--config",
		conf("authorization:\n  rules:\n    - identities: [\"CN=desk-sales\"]\n      teams: [sales]\n    - identities: [role:admin]\n      all: true\n"))
	if code != 0 || len(c.Rules) != 2 || c.Rules[0].Identities[0] != "CN=desk-sales" || c.Rules[0].Teams[0] != "sales" || !c.Rules[1].All {
		t.Fatalf("file: exit %d %s, rules %+v", code, se, c.Rules)
	}
	c, code, se = parse(t, map[string]string{"SILENTMON_AUTHORIZATION_RULES": `[{"identities":["desk-2"],"agents":["1001"]}]`}, "--pcap", pc)
	if code != 0 || len(c.Rules) != 1 || c.Rules[0].Agents[0] != "1001" {
		t.Fatalf("environment: exit %d %s, rules %+v", code, se, c.Rules)
	}
	for _, tc := range []struct {
		yaml string
		args []string
		want string
	}{
		{"authorization:\n  rules:\n    - identities: [x]\n      team: [sales]\n", nil, `authorization.rules, rule 1: unknown key "team"`},
		{"authorization:\n  rules:\n    - identities: [\"\"]\n      all: true\n", nil, "authorization.rules, rule 1: an identity is empty"},
		{"authorization:\n  rules:\n    - identities: [x]\n      all: true\n    - identities: [y]\n      teams: [\"sales team\"]\n", nil, `authorization.rules, rule 2: team "sales team" is not`},
		{"authorization:\n  rules:\n    - identities: [x]\n      all: true\n", []string{"--insecure"}, "cannot be enforced with --insecure"},
	} {
		_, code, se := parse(t, nil, append([]string{"--pcap", pc, "--config", conf(tc.yaml)}, tc.args...)...)
		if code != 2 || !strings.Contains(se, tc.want) || strings.Count(strings.TrimSpace(se), "\n") != 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and one line with %q", tc.yaml, code, se, tc.want)
		}
	}
}
