package captureserver

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/directory"
	smtls "github.com/silentmon/silentmon/tls"
)

// ReloadableKeys are the configuration keys a reload (SIGHUP) applies;
// a change to any other key is logged as needing a restart.
var ReloadableKeys = []string{"log.level", KeyRules, "security.admins", "directory.file"}

// restartKeys name the configuration keys that take effect at start only,
// with how to read each from a Config, to tell which of them a new file
// changes.
var restartKeys = []cli.RestartKey[*Config]{
	{Key: "interface", Get: func(c *Config) any { return c.Interfaces }},
	{Key: "pcap", Get: func(c *Config) any { return c.Pcap }},
	{Key: "pcap_speed", Get: func(c *Config) any { return c.PcapSpeed }},
	{Key: "heartbeat.interval_ms", Get: func(c *Config) any { return c.HeartbeatIntv }},
	{Key: "heartbeat.retries", Get: func(c *Config) any { return c.HeartbeatRetry }},
	{Key: KeyMaxSessions, Get: func(c *Config) any { return c.MaxSessions }},
	{Key: KeyMaxEndpoints, Get: func(c *Config) any { return c.MaxEndpoints }},
	{Key: "cluster.enabled", Get: func(c *Config) any { return c.Cluster }},
	{Key: "cluster.listen", Get: func(c *Config) any { return c.ClusterListen }},
	{Key: "cluster.peers", Get: func(c *Config) any { return c.Peers }},
	{Key: "media.tos", Get: func(c *Config) any { return c.MediaTOS }},
	{Key: "media.queue_len", Get: func(c *Config) any { return c.QueueLen }},
	{Key: "audit.file", Get: func(c *Config) any { return c.AuditFile }},
	{Key: "record.dir", Get: func(c *Config) any { return c.RecordDir }},
	{Key: "capture.track_all_streams", Get: func(c *Config) any { return c.TrackAllStreams }},
	{Key: "capture (one of its keys)", Get: func(c *Config) any { return c.Live }},
	{Key: "session.supervisor_grace_ms", Get: func(c *Config) any { return c.SupervisorGrace }},
	{Key: "sip.enabled", Get: func(c *Config) any { return c.SIP }},
	{Key: "sip.ports", Get: func(c *Config) any { return c.SIPPorts }},
}

// reloader does what SIGHUP asks of the capture server, in this order:
// the configuration file is read anew and its reloadable keys applied,
// then the certificates, the agent directory and the audit file. One
// summary line says how each went; each failure is one ERROR line too.
// Its methods are serialised by mu.
type reloader struct {
	s     *server
	log   *slog.Logger
	level *slog.LevelVar
	store *smtls.Store // nil with --insecure

	mu      sync.Mutex
	cur     *Config            // the configuration in use, reloadable keys included
	dir     *directory.Watcher // nil without directory.file
	dirFile string
}

// newReloader returns the reloader of s; level is the logger's.
func newReloader(s *server, level *slog.LevelVar, store *smtls.Store) *reloader {
	return &reloader{s: s, log: s.log, level: level, store: store, cur: s.cfg, dirFile: s.cfg.DirectoryFile}
}

// openDirectory starts watching the agent directory at path instead of
// the one watched before, if any.
func (r *reloader) openDirectory(path string) error {
	w, err := directory.NewWatcher(path, r.log.With("component", "directory"), func(d *directory.Directory) {
		r.log.Info("agent directory loaded", "file", path, "agents", d.Len(), "teams", len(d.Teams()))
		r.s.agents.setDirectory(d)
		r.s.updateWatches()
	})
	if err != nil {
		return err
	}
	if r.dir != nil {
		r.dir.Close()
	}
	r.dir, r.dirFile = w, path
	return nil
}

// close stops watching the directory.
func (r *reloader) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dir != nil {
		r.dir.Close()
		r.dir = nil
	}
}

// reload does one reload and returns its summary, also logged.
func (r *reloader) reload() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	conf := r.reloadConfig()
	parts := cli.ReloadCertificates(r.store, r.log)
	if r.dir != nil {
		if err := r.dir.Reload(); err != nil {
			r.log.Error("agent directory not reloaded, the one in use is kept", "file", r.dirFile, "err", err.Error())
			parts = append(parts, "directory refused, the one in use kept")
		} else {
			parts = append(parts, fmt.Sprintf("directory ok (%d agents)", r.dir.Current().Len()))
		}
	}
	if r.s.audit != nil {
		if err := r.s.audit.Reopen(); err != nil {
			r.log.Error("audit file not reopened", "file", r.cur.AuditFile, "err", err.Error())
			parts = append(parts, "audit file not reopened")
		} else {
			parts = append(parts, "audit file reopened")
		}
	}
	return cli.LogReload(r.log, append(parts, "configuration: "+conf))
}

// reloadConfig reads the configuration file anew through cfg.Reload and
// applies its reloadable keys, or keeps the whole configuration in use
// when the new one is refused. It returns the summary's words.
func (r *reloader) reloadConfig() string {
	if r.cur.Reload == nil {
		return "no file"
	}
	next, err := r.cur.Reload()
	if err == nil {
		err = checkRules(next)
	}
	var pol *policy
	if err == nil {
		pol, err = compilePolicy(next.Rules)
	}
	if err != nil {
		r.log.Error("configuration not reloaded, the one in use is kept: "+cli.Sentence(err), "file", r.cur.ConfigFile)
		return "refused, the one in use kept"
	}
	cli.WarnRestart(r.log, r.cur.ConfigFile, append(cli.ChangedKeys(cli.ServiceRestartKeys, &r.cur.Service, &next.Service),
		cli.ChangedKeys(restartKeys, r.cur, next)...))
	var changed []string
	if next.LogLevel != r.cur.LogLevel {
		lv, _ := cli.ParseLevel(next.LogLevel) // validated by Reload
		r.level.Set(lv)
		changed = append(changed, "log.level "+strings.ToLower(next.LogLevel))
	}
	if !reflect.DeepEqual(next.Rules, r.cur.Rules) || !reflect.DeepEqual(next.Admins, r.cur.Admins) {
		r.s.setAccess(pol, next.Admins)
		if !reflect.DeepEqual(next.Rules, r.cur.Rules) {
			changed = append(changed, fmt.Sprintf("%s (%d rules)", KeyRules, len(next.Rules)))
		}
		if !reflect.DeepEqual(next.Admins, r.cur.Admins) {
			changed = append(changed, fmt.Sprintf("security.admins (%d)", len(next.Admins)))
		}
	}
	switch {
	case next.DirectoryFile == r.dirFile:
	case next.DirectoryFile == "":
		r.log.Warn(fmt.Sprintf("configuration key directory.file removed in %s but a directory in use is dropped only by a restart; %s is kept", r.cur.ConfigFile, r.dirFile))
		next.DirectoryFile = r.dirFile
	default:
		if err := r.openDirectory(next.DirectoryFile); err != nil {
			r.log.Error("directory.file not changed, the directory in use is kept: "+cli.Sentence(err), "file", next.DirectoryFile)
			next.DirectoryFile = r.dirFile
		} else {
			changed = append(changed, "directory.file "+quoteEmpty(next.DirectoryFile))
		}
	}
	// The keys that need a restart keep their values in use.
	kept := *r.cur
	kept.LogLevel, kept.Rules, kept.Admins, kept.DirectoryFile = next.LogLevel, next.Rules, next.Admins, next.DirectoryFile
	r.cur = &kept
	r.log.Debug("configuration reloaded", "file", r.cur.ConfigFile, "log.level", r.cur.LogLevel)
	if len(changed) == 0 {
		return "unchanged"
	}
	return strings.Join(changed, ", ")
}

// checkRules refuses rules that cannot be enforced, as Run does at start.
func checkRules(c *Config) error {
	if len(c.Rules) > 0 && c.Insecure {
		return cli.Usagef("%s cannot be enforced with --insecure: clients present no certificate to match; remove the rules or --insecure", KeyRules)
	}
	return nil
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}
