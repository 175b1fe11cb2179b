package captureserver

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/silentmon/silentmon/relay"
)

// Defaults of the limits of Config.
const (
	DefaultMaxSessions  = 2000
	DefaultMaxEndpoints = 64
)

// Configuration keys of the limits, named in refusals.
const (
	KeyMaxSessions  = "limits.max_sessions"
	KeyMaxEndpoints = "limits.max_endpoints"
)

// maxSessions and maxEndpoints return the configured limits, or their
// defaults.
func (c *Config) maxSessions() int {
	if c.MaxSessions > 0 {
		return c.MaxSessions
	}
	return DefaultMaxSessions
}

func (c *Config) maxEndpoints() int {
	if c.MaxEndpoints > 0 {
		return c.MaxEndpoints
	}
	return DefaultMaxEndpoints
}

// refusals counts the starts refused by a limit or the supervisor check,
// by reason (silentmon_starts_refused_total). The zero value is ready.
type refusals struct {
	maxSessions, maxEndpoints, supervisor atomic.Uint64
}

// Reasons of silentmon_starts_refused_total.
const (
	reasonMaxSessions  = "max_sessions"
	reasonMaxEndpoints = "max_endpoints"
	reasonSupervisor   = "supervisor_address"
)

// count counts err's refusal if it is one of a limit or of the supervisor
// check, and returns the relay error code for it.
func (r *refusals) count(err error) string {
	switch {
	case errors.Is(err, errMaxSessions):
		r.maxSessions.Add(1)
		return relay.CodeLimit
	case errors.Is(err, errMaxEndpoints):
		r.maxEndpoints.Add(1)
		return relay.CodeLimit
	case errors.Is(err, errSupervisor):
		r.supervisor.Add(1)
	}
	return relay.CodeBadRequest
}

// register adds silentmon_starts_refused_total{reason} to reg.
func (r *refusals) register(reg prometheus.Registerer) {
	for reason, v := range map[string]*atomic.Uint64{reasonMaxSessions: &r.maxSessions,
		reasonMaxEndpoints: &r.maxEndpoints, reasonSupervisor: &r.supervisor} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Name: "starts_refused_total",
			Help:        "Monitor starts refused by a limit (max_sessions, max_endpoints) or because the supervisor address cannot be dialed (supervisor_address).",
			ConstLabels: prometheus.Labels{"reason": reason}},
			func() float64 { return float64(v.Load()) }))
	}
}

// checkSessionCount refuses a new session when the sessions of the
// cluster, as this member sees them, already reach the limit. Called
// under startMu, so the starts this member takes never exceed it.
func (s *server) checkSessionCount() error {
	limit := s.cfg.maxSessions()
	if n := len(s.allSessions()); n >= limit {
		return fmt.Errorf("%w: this server holds %d sessions, its limit (%s = %d); stop a session first or raise the limit",
			errMaxSessions, n, KeyMaxSessions, limit)
	}
	return nil
}
