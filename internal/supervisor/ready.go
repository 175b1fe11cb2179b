package supervisor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/silentmon/silentmon/internal/service"
	smtls "github.com/silentmon/silentmon/tls"
)

// playerBound is how long an open session's Player may go without a
// tick (every 20 ms) before /healthz names it.
const playerBound = service.MinHeartbeatBound

// dirWritable returns nil when dir is a directory this process may create
// files in, else why not.
func dirWritable(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("directory %s does not exist", dir)
	case err != nil:
		return fmt.Errorf("directory %s cannot be read: %v", dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	}
	if err := syscall.Access(dir, 2 /* W_OK */); err != nil {
		return fmt.Errorf("directory %s is not writable: %v", dir, err)
	}
	return nil
}

// OutputCheck is /readyz's "output" check: a wav output's directory
// exists and is writable, a portaudio output's device is open, null is
// always ready. The line names the output, as "output wav:/x/{session}.wav:
// directory /x is not writable".
func (s *Supervisor) OutputCheck() service.Check {
	return service.Check{Name: "output", Check: func() error {
		switch s.kind {
		case "wav":
			if err := s.writable(filepath.Clean(s.names.dir)); err != nil {
				return fmt.Errorf("%s: %w", s.cfg.Output, err)
			}
		case "portaudio":
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed || s.dev == nil {
				return fmt.Errorf("%s: the device is closed", s.cfg.Output)
			}
		}
		return nil
	}}
}

// Health is /healthz's check of the Supervisor's loops: the session
// reaper turns (every second at most), and every open session's Player
// clock ticked within the last 10 s. Each failure is one line naming the
// loop.
func (s *Supervisor) Health() error {
	err := s.beats.Check()
	now := s.clock.Now()
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	open := *s.table.Load()
	ids := make([]string, 0, len(open))
	for id := range open {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		last := open[id].player.LastTick()
		if ago := now.Sub(last); !last.IsZero() && ago > playerBound {
			errs = append(errs, fmt.Errorf("loop player of session %s has not ticked for %s (bound %s)",
				id, ago.Round(time.Second), playerBound))
		}
	}
	return errors.Join(errs...)
}

// HealthOptions say what smsupervisor's /readyz checks besides the
// output.
type HealthOptions struct {
	// Listener is the address capture servers connect to; Stopped closes
	// when it no longer accepts.
	Listener string
	Stopped  <-chan struct{}
	// SecurityDir holds the certificates in use, checked unless
	// Insecure; Client adds CtiosClient.pem (the console dials capture
	// servers with it).
	SecurityDir string
	Insecure    bool
	Client      bool
	// Store, if set, holds the certificates in use (reloaded on SIGHUP):
	// they are checked instead of the files.
	Store *smtls.Store
}

// AddChecks gives ms's /healthz the Supervisor's loops (Health, and the
// listener's accept loop) and its
// /readyz the checks "output" (OutputCheck), "listener" (accepting) and,
// over TLS, "certificate" (valid for more than 14 days).
func (s *Supervisor) AddChecks(ms *service.Metrics, o HealthOptions) {
	ms.AddHealth(service.Check{Name: "loops", Check: s.Health}, service.Check{Name: "listener", Check: func() error {
		select {
		case <-o.Stopped:
			return fmt.Errorf("loop relay accept loop on %s stopped", o.Listener)
		default:
			return nil
		}
	}})
	ms.AddReady(s.OutputCheck(), service.Check{Name: "listener", Check: func() error {
		select {
		case <-o.Stopped:
			return fmt.Errorf("%s no longer accepts capture servers", o.Listener)
		default:
			return nil
		}
	}})
	if !o.Insecure {
		files := []string{smtls.RootCertFile, smtls.ServerFile}
		if o.Client {
			files = append(files, smtls.ClientFile)
		}
		expiries := func() []service.Expiry { return service.FileExpiries(o.SecurityDir, files...) }
		if o.Store != nil {
			expiries = service.StoreExpiries(o.Store)
		}
		ms.AddReady(service.CertificateCheck(nil, 0, expiries))
	}
}
