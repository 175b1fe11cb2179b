// Package service holds the plumbing smserver and smsupervisor share: the
// loopback metrics and health endpoint, the opt-in profiling endpoint on
// an address of its own, and the 42228 listener (mutual TLS with lockout,
// or plaintext with --insecure and a warning every hour).
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/silentmon/silentmon/internal/version"
)

// Metrics serves /metrics, /healthz and /readyz over HTTP, and nothing
// else: the profiles are on Debug's address, so opening the metrics port
// to a Prometheus server exposes no profile. Its methods are safe for
// concurrent use.
//
// /healthz says the process is alive and its loops turn: 200 "ok", or
// 503 with one line "not ok: REASON" per failure (the health function of
// ListenMetrics, the checks of AddHealth, typically Heartbeats.Check).
// /readyz says it is ready to do its job: one line "NAME: ready" or
// "NAME: REASON" per check of AddReady, failures first, 503 when one
// fails.
type Metrics struct {
	Registry *prometheus.Registry
	srv      *http.Server
	ln       net.Listener
	log      *slog.Logger
	wg       sync.WaitGroup
	once     sync.Once
	health   checkList
	ready    checkList
}

// StartMetrics listens on addr (loopback by default) and serves the
// registry; /healthz answers "ok" while the process serves, until
// AddHealth adds checks.
func StartMetrics(addr string, reg *prometheus.Registry, log *slog.Logger) (*Metrics, error) {
	m, err := ListenMetrics(addr, reg, log, nil)
	if err != nil {
		return nil, err
	}
	m.Serve()
	return m, nil
}

// ListenMetrics listens on addr (loopback by default) but serves nothing
// until Serve: a program opens the address early, to fail before it starts
// anything, and serves once everything the metrics read is in place.
// Connections made in between wait in the listen queue. health, if not
// nil, is asked at every /healthz request: nil is healthy (200 "ok"), an
// error makes the answer 503 with the error's text.
func ListenMetrics(addr string, reg *prometheus.Registry, log *slog.Logger, health func() error) (*Metrics, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listen address %q: %w", addr, err)
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfo())
	m := &Metrics{Registry: reg, ln: ln, log: log}
	if health != nil {
		m.AddHealth(Check{Name: "health", Check: health})
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		var lines []string
		for _, c := range m.health.list() {
			if err := c.Check(); err != nil {
				for _, l := range strings.Split(err.Error(), "\n") {
					lines = append(lines, "not ok: "+l)
				}
			}
		}
		if len(lines) > 0 {
			http.Error(w, strings.Join(lines, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { serveReady(w, m.ready.list()) })
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return m, nil
}

// AddHealth adds checks to /healthz.
func (m *Metrics) AddHealth(checks ...Check) { m.health.add(checks...) }

// AddReady adds checks to /readyz, in the order of its lines.
func (m *Metrics) AddReady(checks ...Check) { m.ready.add(checks...) }

// Serve starts serving in a goroutine that Close stops; calls after the
// first do nothing.
func (m *Metrics) Serve() {
	m.once.Do(func() {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			if err := m.srv.Serve(m.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.log.Warn("metrics server stopped", "err", err)
			}
		}()
		m.log.Info("metrics and health", "addr", m.ln.Addr().String())
	})
}

// Addr returns the listening address.
func (m *Metrics) Addr() net.Addr { return m.ln.Addr() }

// Close stops the server (or closes the listener if Serve was not called)
// and waits.
func (m *Metrics) Close() error {
	m.once.Do(func() {}) // a later Serve does nothing
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	m.ln.Close() // not closed by Shutdown if Serve never ran
	m.wg.Wait()
	return err
}

// Debug serves the Go runtime's profiles (/debug/pprof/) on an address of
// their own, for an operator who turned them on (--debug-listen). A nil
// *Debug serves nothing and its Close does nothing. Close is safe for
// concurrent use.
type Debug struct {
	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup
	once sync.Once
	err  error
}

// StartDebug serves the profiles on addr until Close. An empty addr
// serves nothing and returns nil, nil. An address that is not loopback is
// allowed but logged as a warning: profiles show memory and the program's
// internals, and cost CPU while they run.
func StartDebug(addr string, log *slog.Logger) (*Debug, error) {
	if addr == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("debug listen address %q: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	d := &Debug{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, ln: ln}
	if !isLoopback(ln.Addr()) {
		log.Warn("profiling endpoints listen on an address that is not loopback: anyone who reaches it can read the process's profiles", "addr", ln.Addr().String())
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("profiling server stopped", "err", err)
		}
	}()
	log.Info("profiling", "addr", ln.Addr().String())
	return d, nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// Addr returns the listening address.
func (d *Debug) Addr() net.Addr { return d.ln.Addr() }

// Close stops the server and waits for it.
func (d *Debug) Close() error {
	if d == nil {
		return nil
	}
	d.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		d.err = d.srv.Shutdown(ctx)
		d.wg.Wait()
	})
	return d.err
}

// buildInfo is silentmon_build_info: 1, labelled with the program's
// version, commit, commit date and Go release (internal/version).
func buildInfo() prometheus.Collector {
	in := version.Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "silentmon", Name: "build_info",
		Help:        "The build of this program: always 1, with its version, commit, commit date and Go release as labels.",
		ConstLabels: prometheus.Labels{"version": in.Version, "commit": in.Commit, "date": in.Date, "goversion": in.Go}})
	g.Set(1)
	return g
}
