package main

import (
	"log/slog"
	"strings"
	"sync"

	"github.com/silentmon/silentmon/internal/cli"
	smtls "github.com/silentmon/silentmon/tls"
)

// reloadableKeys are the configuration keys SIGHUP applies to a running
// smsupervisor; a change to any other is logged as needing a restart.
var reloadableKeys = []string{"log.level"}

// restartKeys name the keys that take effect at start only, with how to
// read each from a config.
var restartKeys = []cli.RestartKey[*config]{
	{Key: "output", Get: func(c *config) any { return c.Supervisor.Output }},
	{Key: "playout (one of its keys)", Get: func(c *config) any { return c.Supervisor.Playout }},
	{Key: "supervisor.max_sessions", Get: func(c *config) any { return c.Supervisor.MaxSessions }},
	{Key: "supervisor.idle_timeout_ms", Get: func(c *config) any { return c.Supervisor.IdleTimeout }},
	{Key: "supervisor.narrowband", Get: func(c *config) any { return c.Supervisor.Narrowband }},
	{Key: "console (one of its keys)", Get: func(c *config) any { return c.Console }},
}

// reloader does what SIGHUP asks of smsupervisor: the configuration file
// read anew (log.level applied; other changes logged as needing a
// restart; a refused file keeps the whole configuration in use), then
// the certificates of the 42228 listener, the console's HTTPS and the
// console's links to capture servers. One summary line says how each
// went; each failure is one ERROR line too. Its methods are serialised.
type reloader struct {
	log   *slog.Logger
	level *slog.LevelVar
	store *smtls.Store // nil with --insecure

	mu  sync.Mutex
	cur *config
}

// reload does one reload and returns its summary, also logged.
func (r *reloader) reload() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	conf := r.reloadConfig()
	parts := cli.ReloadCertificates(r.store, r.log)
	return cli.LogReload(r.log, append(parts, "configuration: "+conf))
}

func (r *reloader) reloadConfig() string {
	if r.cur.reload == nil {
		return "no file"
	}
	next, err := r.cur.reload()
	if err != nil {
		r.log.Error("configuration not reloaded, the one in use is kept: "+cli.Sentence(err), "file", r.cur.file)
		return "refused, the one in use kept"
	}
	cli.WarnRestart(r.log, r.cur.file, append(cli.ChangedKeys(cli.ServiceRestartKeys, &r.cur.Service, &next.Service),
		cli.ChangedKeys(restartKeys, r.cur, next)...))
	if next.LogLevel == r.cur.LogLevel {
		return "unchanged"
	}
	lv, _ := cli.ParseLevel(next.LogLevel) // validated by reload
	r.level.Set(lv)
	kept := *r.cur
	kept.LogLevel = next.LogLevel
	r.cur = &kept
	r.log.Debug("configuration reloaded", "file", r.cur.file, "log.level", r.cur.LogLevel)
	return "log.level " + strings.ToLower(next.LogLevel)
}

// withReload returns validate that also gives the configuration its file
// and the reload SIGHUP does: the file read anew, with the environment and
// the flags, through the same validation as at start.
func withReload(cfg *cli.Config) func(*cli.Config) (*config, error) {
	return func(cfg *cli.Config) (*config, error) {
		c, err := validate(cfg)
		if err != nil {
			return nil, err
		}
		c.file = cfg.String("config")
		if c.file == "" {
			return c, nil // nothing to read anew
		}
		c.reload = func() (*config, error) {
			if err := cfg.Load(c.file); err != nil {
				return nil, err
			}
			return validate(cfg)
		}
		return c, nil
	}
}
