package captureserver

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/audit"
	smtls "github.com/silentmon/silentmon/tls"
)

// reloadSetup is a capture server built for reloads, logging to logs, whose
// configuration file reads as next returns.
type reloadSetup struct {
	s     *server
	r     *reloader
	level *slog.LevelVar
	logs  *lockedBuffer
	next  func() (*Config, error)
}

func newReloadSetup(t *testing.T, cfg *Config, store *smtls.Store) *reloadSetup {
	t.Helper()
	rs := &reloadSetup{level: new(slog.LevelVar), logs: &lockedBuffer{}}
	log := slog.New(slog.NewTextHandler(rs.logs, &slog.HandlerOptions{Level: rs.level}))
	cfg.ConfigFile = "/etc/silentmon/silentmon.yaml"
	cfg.Reload = func() (*Config, error) { return rs.next() }
	rs.s = newServer(cfg, log)
	rs.r = newReloader(rs.s, rs.level, store)
	t.Cleanup(rs.r.close)
	return rs
}

// changed returns a copy of cfg changed by f, as a new file would read.
func changed(cfg *Config, f func(*Config)) func() (*Config, error) {
	return func() (*Config, error) {
		c := *cfg
		c.Reload = nil
		f(&c)
		return &c, nil
	}
}

func lines(s, sub string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			n++
		}
	}
	return n
}

// TestReloadLogLevelAndRestartKeys checks that a reload applies a new
// log.level at once (a debug line appears), names it in the summary, and
// logs a change to listen as needing a restart while keeping the address
// in use.
func TestReloadLogLevelAndRestartKeys(t *testing.T) {
	cfg := &Config{}
	cfg.Listen, cfg.LogLevel = "127.0.0.1:42228", "info"
	rs := newReloadSetup(t, cfg, nil)
	rs.next = changed(cfg, func(c *Config) { c.LogLevel = "debug"; c.Listen = "127.0.0.1:42999" })
	sum := rs.r.reload()
	if want := "reloaded: configuration: log.level debug"; sum != want {
		t.Errorf("summary %q, want %q", sum, want)
	}
	if rs.level.Level() != slog.LevelDebug {
		t.Errorf("log level %v after the reload, want debug", rs.level.Level())
	}
	logs := rs.logs.String()
	if lines(logs, "level=DEBUG") == 0 {
		t.Errorf("no debug line after log.level debug:\n%s", logs)
	}
	if lines(logs, `level=WARN msg="configuration key listen changed in /etc/silentmon/silentmon.yaml but needs a restart`) != 1 {
		t.Errorf("no restart warning naming listen and the file:\n%s", logs)
	}
	if rs.r.cur.Listen != "127.0.0.1:42228" || rs.r.cur.LogLevel != "debug" {
		t.Errorf("configuration in use: listen %s, log.level %s; want the old listen and the new level", rs.r.cur.Listen, rs.r.cur.LogLevel)
	}
	// Unchanged the second time: no warning again for listen? It is
	// still different from the one in use, so it is warned again.
	rs.next = changed(rs.r.cur, func(*Config) {})
	if sum := rs.r.reload(); sum != "reloaded: configuration: unchanged" {
		t.Errorf("second summary %q", sum)
	}
}

// TestReloadRefusedConfiguration checks that a configuration refused by
// validation keeps the whole configuration in use with one error line.
func TestReloadRefusedConfiguration(t *testing.T) {
	cfg := &Config{}
	cfg.LogLevel = "warn"
	rs := newReloadSetup(t, cfg, nil)
	rs.level.Set(slog.LevelWarn)
	rs.next = func() (*Config, error) {
		return nil, errors.New(`configuration file "/etc/silentmon/silentmon.yaml" has unknown key smserver.lisen; did you mean smserver.listen?`)
	}
	sum := rs.r.reload()
	if !strings.HasSuffix(sum, "configuration: refused, the one in use kept") {
		t.Errorf("summary %q", sum)
	}
	logs := rs.logs.String()
	if lines(logs, "level=ERROR") != 1 || !strings.Contains(logs, "smserver.lisen") {
		t.Errorf("want one error line naming the key:\n%s", logs)
	}
	if rs.r.cur != cfg || rs.level.Level() != slog.LevelWarn {
		t.Error("the configuration in use changed")
	}
	// Rules that do not compile are refused the same way.
	rs.next = changed(cfg, func(c *Config) {
		c.LogLevel = "debug"
		c.Rules = []Rule{{Identities: []string{"role:nonsense"}, All: true}}
	})
	rs.r.reload()
	if rs.level.Level() != slog.LevelWarn || rs.r.cur != cfg {
		t.Errorf("a configuration with bad rules was applied:\n%s", rs.logs.String())
	}
}

// TestReloadAccess checks that security.admins and authorization.rules
// are replaced by a reload.
func TestReloadAccess(t *testing.T) {
	cfg := &Config{}
	rs := newReloadSetup(t, cfg, nil)
	fp := strings.Repeat("ab", 32)
	rs.next = changed(cfg, func(c *Config) {
		c.Admins = []string{fp}
		c.Rules = []Rule{{Identities: []string{"desk-1"}, Agents: []string{"1001"}}}
	})
	sum := rs.r.reload()
	norm, _ := NormalizeFingerprint(fp)
	rs.s.accessMu.RLock()
	admin, rules := rs.s.admins[norm], len(rs.s.policy.rules)
	rs.s.accessMu.RUnlock()
	if !admin || rules != 1 {
		t.Errorf("after the reload: admin %v, %d rules; want the new administrator and 1 rule", admin, rules)
	}
	if !strings.Contains(sum, KeyRules+" (1 rules)") || !strings.Contains(sum, "security.admins (1)") {
		t.Errorf("summary %q", sum)
	}
}

// TestReloadCertificatesAndAudit checks the certificate and audit parts:
// a bad new CtiosServer.pem is refused with one error line naming the
// file, and the audit file is reopened after a rotation.
func TestReloadCertificatesAndAudit(t *testing.T) {
	dir := t.TempDir()
	if err := smtls.Quickstart(dir, smtls.QuickstartOptions{Password: []byte("correct horse battery")}); err != nil {
		t.Fatal(err)
	}
	store, err := smtls.NewStore(dir, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.ServerConfig([]smtls.Role{smtls.RoleCapture}, nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "audit.log")
	cfg := &Config{AuditFile: path}
	rs := newReloadSetup(t, cfg, store)
	rs.s.audit, err = audit.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.s.audit.Close()
	rs.next = changed(cfg, func(*Config) {})

	if sum := rs.r.reload(); sum != "reloaded: certificates ok, audit file reopened, configuration: unchanged" {
		t.Errorf("summary %q", sum)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	server := filepath.Join(dir, smtls.ServerFile)
	if err := os.WriteFile(server, []byte("garbage\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := rs.r.reload()
	if sum != "reloaded: certificates refused, the ones in use kept, audit file reopened, configuration: unchanged" {
		t.Errorf("summary %q", sum)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the audit file was not reopened at its path: %v", err)
	}
	logs := rs.logs.String()
	if lines(logs, "level=ERROR") != 1 || lines(logs, server) != 1 {
		t.Errorf("want one error line naming %s:\n%s", server, logs)
	}
	if store.ReloadFailures() != 1 {
		t.Errorf("ReloadFailures = %d", store.ReloadFailures())
	}
}

// TestReloadDirectoryFile checks that a new directory.file is watched
// from the reload on (the summary counts its agents), that a path that
// cannot be loaded keeps the directory in use with one error line, and
// that removing the key is logged as needing a restart.
func TestReloadDirectoryFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, yaml string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	one := write("one.yaml", "agents:\n  - {id: \"1001\", name: Alice, phone_ip: 10.10.0.1}\n")
	two := write("two.yaml", "agents:\n  - {id: \"1001\", name: Alice, phone_ip: 10.10.0.1}\n  - {id: \"1002\", name: Bruno, phone_ip: 10.10.0.2}\n")
	cfg := &Config{DirectoryFile: one}
	rs := newReloadSetup(t, cfg, nil)
	if err := rs.r.openDirectory(one); err != nil {
		t.Fatal(err)
	}
	rs.next = changed(cfg, func(*Config) {})
	if sum := rs.r.reload(); sum != "reloaded: directory ok (1 agents), configuration: unchanged" {
		t.Errorf("summary %q", sum)
	}
	rs.next = changed(cfg, func(c *Config) { c.DirectoryFile = two })
	if sum := rs.r.reload(); sum != "reloaded: directory ok (2 agents), configuration: directory.file "+two {
		t.Errorf("summary %q", sum)
	}
	if got := rs.s.agents.dir.Load().Len(); got != 2 {
		t.Errorf("%d agents in use, want the new file's 2", got)
	}
	rs.next = changed(cfg, func(c *Config) { c.DirectoryFile = filepath.Join(dir, "missing.yaml") })
	if sum := rs.r.reload(); sum != "reloaded: directory ok (2 agents), configuration: unchanged" {
		t.Errorf("summary %q", sum)
	}
	if n := lines(rs.logs.String(), "level=ERROR"); n != 1 || !strings.Contains(rs.logs.String(), "missing.yaml") {
		t.Errorf("want one error line naming missing.yaml:\n%s", rs.logs.String())
	}
	rs.next = changed(cfg, func(c *Config) { c.DirectoryFile = "" })
	rs.r.reload()
	if lines(rs.logs.String(), "configuration key directory.file removed") != 1 || rs.r.dirFile != two {
		t.Errorf("removing directory.file: in use %q\n%s", rs.r.dirFile, rs.logs.String())
	}
}
