package service

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	smtls "github.com/silentmon/silentmon/tls"
)

// ListenConfig describes the 42228 listener.
type ListenConfig struct {
	Addr        string
	SecurityDir string
	Insecure    bool
	Strict      bool // refuse key files readable by others
	// Roles are the roles this program's certificate must carry and
	// PeerRoles those accepted from the other side (smtls.Options).
	Roles, PeerRoles []smtls.Role
	Lockout          smtls.LockoutConfig
	// Listen tunes the handshakes (limits, deadline); its Logger is
	// Logger's.
	Listen smtls.ListenOptions
	Logger *slog.Logger
	// Store, if set, holds the certificates the listener presents and
	// verifies clients against, so that reloading it applies to new
	// handshakes; nil: Listen makes one from SecurityDir and Strict
	// (Listener.Store).
	Store *smtls.Store
}

// Listener is the 42228 listener with what it needs to report.
type Listener struct {
	net.Listener
	TLS     *smtls.Listener // nil with Insecure
	Lockout *smtls.Lockout
	// Store holds the certificates in use (nil with Insecure): its
	// Reload puts new ones to work for new handshakes.
	Store *smtls.Store
	stop  chan struct{}
	wg    sync.WaitGroup
}

// Listen opens the listener: mutual TLS with lockout from the security
// directory, or plaintext when Insecure, logging a warning now and every
// hour.
func Listen(cfg ListenConfig) (*Listener, error) {
	var tcfg *tls.Config
	store := cfg.Store
	if !cfg.Insecure {
		var err error
		if store == nil {
			if store, err = smtls.NewStore(cfg.SecurityDir, smtls.Options{Strict: cfg.Strict, Logger: cfg.Logger}); err != nil {
				return nil, err
			}
		}
		if tcfg, err = store.ServerConfig(cfg.Roles, cfg.PeerRoles); err != nil {
			return nil, err
		}
	}
	inner, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, listenError(cfg.Addr, "--listen", err)
	}
	l := &Listener{Listener: inner, stop: make(chan struct{})}
	if cfg.Insecure {
		warn := func() {
			cfg.Logger.Warn("INSECURE: --insecure is set; port accepts plaintext connections without client certificates, anyone who reaches it can start a monitor session", "addr", inner.Addr().String())
		}
		warn()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			t := time.NewTicker(time.Hour)
			defer t.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-t.C:
					warn()
				}
			}
		}()
		return l, nil
	}
	l.Store = store
	l.Lockout = smtls.NewLockout(cfg.Lockout)
	lo := cfg.Listen
	lo.Logger = cfg.Logger
	l.TLS = smtls.ListenWith(inner, tcfg, l.Lockout, lo)
	l.Listener = l.TLS
	return l, nil
}

// Close closes the listener and stops the warning goroutine.
func (l *Listener) Close() error {
	select {
	case <-l.stop:
		return nil
	default:
	}
	close(l.stop)
	err := l.Listener.Close()
	l.wg.Wait()
	return err
}

// DialTLS returns the client configuration for links this program dials
// (a capture server to a supervisor, smctl to a server), or nil with
// insecure.
func DialTLS(dir string, insecure, strict bool, log *slog.Logger) (*tls.Config, error) {
	if insecure {
		return nil, nil
	}
	return smtls.ClientConfig(dir, smtls.Options{Strict: strict, Logger: log})
}

// DialTLSFrom is DialTLS with the certificates of store, which a reload
// replaces for new links; nil with insecure. It presents CtiosClient.pem
// (role client or admin) and expects a capture server or supervisor.
func DialTLSFrom(store *smtls.Store, insecure bool) (*tls.Config, error) {
	if insecure {
		return nil, nil
	}
	return store.ClientConfig(smtls.ClientFile, nil, nil)
}

// inUseError is a listen address another process holds: its sentence
// says what to do, and it unwraps to the system's error.
type inUseError struct {
	addr, flag string
	err        error
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("listen address %q is taken by another process (on one host smserver and smsupervisor cannot share a port): give %s another address, or stop that process", e.addr, e.flag)
}

func (e *inUseError) Unwrap() error { return e.err }

// listenError names addr in err; an address in use says what to do.
func listenError(addr, flag string, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return &inUseError{addr: addr, flag: flag, err: err}
	}
	return fmt.Errorf("listen address %q: %w", addr, err)
}
