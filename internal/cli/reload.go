package cli

import (
	"strings"

	"fmt"
	smtls "github.com/silentmon/silentmon/tls"
	"log/slog"
	"os"
	"os/signal"
	"reflect"
	"sync"
	"syscall"
)

// RestartKey is a configuration key that takes effect at start only,
// with how to read its value from a program's configuration C.
type RestartKey[C any] struct {
	Key string
	Get func(C) any
}

// ServiceRestartKeys are the keys of Service (both services have them)
// that a reload cannot apply; log.level is the one key of Service that it
// can.
var ServiceRestartKeys = []RestartKey[*Service]{
	{"listen", func(s *Service) any { return s.Listen }},
	{"security_dir", func(s *Service) any { return s.SecurityDir }},
	{"insecure", func(s *Service) any { return s.Insecure }},
	{"tls.strict", func(s *Service) any { return s.StrictKeys }},
	{"name", func(s *Service) any { return s.Name }},
	{"metrics.listen", func(s *Service) any { return s.MetricsListen }},
	{"debug.listen", func(s *Service) any { return s.DebugListen }},
	{"log.format", func(s *Service) any { return s.LogFormat }},
	{"heartbeat.timeout_ms", func(s *Service) any { return s.HeartbeatTmo }},
	{"lockout.threshold", func(s *Service) any { return s.LockThreshold }},
	{"lockout.duration", func(s *Service) any { return s.LockDuration }},
	{"lockout.max_sources", func(s *Service) any { return s.LockMaxSources }},
	{"tls.handshake_timeout_ms", func(s *Service) any { return s.HandshakeTimeout }},
	{"limits.handshakes", func(s *Service) any { return s.MaxHandshakes }},
	{"limits.handshakes_per_source", func(s *Service) any { return s.MaxHandshakesPerSource }},
}

// ChangedKeys returns, in the order of keys, the keys whose value differs
// between cur and next.
func ChangedKeys[C any](keys []RestartKey[C], cur, next C) []string {
	var changed []string
	for _, k := range keys {
		if !reflect.DeepEqual(k.Get(cur), k.Get(next)) {
			changed = append(changed, k.Key)
		}
	}
	return changed
}

// OnSIGHUP calls reload whenever the process receives SIGHUP, one call at
// a time, until stop; stop waits for a call under way and may be called
// more than once.
func OnSIGHUP(reload func()) (stop func()) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ch:
				reload()
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			wg.Wait()
		})
	}
}

// WarnRestart logs one warning for each key in changed: the file
// changed it, and the value in use is kept until a restart.
func WarnRestart(log *slog.Logger, file string, changed []string) {
	for _, k := range changed {
		log.Warn(fmt.Sprintf("configuration key %s changed in %s but needs a restart; the value in use is kept", k, file))
	}
}

// ReloadCertificates reloads the certificates of st (nil: --insecure,
// nothing to do) and returns the words of the reload summary; a refused
// set is one ERROR line naming the file, and the set in use is kept.
func ReloadCertificates(st *smtls.Store, log *slog.Logger) []string {
	if st == nil {
		return nil
	}
	if err := st.Reload(); err != nil {
		log.Error(Sentence(err))
		return []string{"certificates refused, the ones in use kept"}
	}
	return []string{"certificates ok"}
}

// LogReload logs and returns the summary line of a reload: "reloaded: "
// and parts.
func LogReload(log *slog.Logger, parts []string) string {
	summary := "reloaded: " + strings.Join(parts, ", ")
	log.Info(summary)
	return summary
}
