package relay

import (
	"errors"
	"fmt"
	"net"
	"time"

	smtls "github.com/silentmon/silentmon/tls"
)

// UnreachableLogInterval is how often a supervisor that stays unreachable
// is logged again: the first failed attempt of an outage is logged as a
// warning at once, later ones at most once per interval, and the
// connection that ends the outage as information.
const UnreachableLogInterval = time.Minute

// explain turns the error of an attempt to reach the supervisor into one
// sentence naming its address and the reason: a refused or unreachable
// connection, a TLS handshake the certificates failed (as
// tls.ExplainHandshake says), or a TLS supervisor reached in plaintext
// (tls.ExplainPlaintext). The result wraps err.
func (s *sender) explain(err error) error {
	if err == nil {
		return nil
	}
	if s.f.cfg.Dial.TLS == nil {
		if ex := smtls.ExplainPlaintext(err, s.addr); ex != err {
			return ex
		}
	} else if ex := smtls.ExplainHandshake(err, s.addr); ex != err {
		return ex
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" && oe.Err != nil {
		reason := oe.Err.Error()
		var se interface{ Unwrap() error }
		if errors.As(oe.Err, &se) && se.Unwrap() != nil {
			reason = se.Unwrap().Error() // "connection refused", not "connect: connection refused"
		}
		return fmt.Errorf("cannot connect to the supervisor at %s: %s%.0w", s.addr, reason, err)
	}
	return fmt.Errorf("the supervisor at %s: %w", s.addr, err)
}

// unreachable logs a failed attempt to reach the supervisor: a warning
// for the first of an outage, then at most one per
// UnreachableLogInterval. Called by run only.
func (s *sender) unreachable(err error) {
	now := s.f.clock.Now()
	s.failures++
	if !s.warned.IsZero() && now.Sub(s.warned) < UnreachableLogInterval {
		return
	}
	s.warned = now
	s.mu.Lock()
	since := s.downSince
	s.mu.Unlock()
	s.f.log.Warn("supervisor unreachable", "supervisor", s.addr, "err", err.Error(),
		"since", since, "attempts", s.failures)
}

// reached logs the connection that ends an outage (or the first one) and
// starts the count of failures again. Called by run only, before the
// state is set connected.
func (s *sender) reached() {
	s.mu.Lock()
	since := s.downSince
	s.mu.Unlock()
	if s.failures > 0 {
		s.f.log.Info("connected to supervisor", "supervisor", s.addr,
			"after", s.f.clock.Now().Sub(since).Round(time.Millisecond), "failed_attempts", s.failures)
	} else {
		s.f.log.Info("connected to supervisor", "supervisor", s.addr)
	}
	s.failures = 0
	s.warned = time.Time{}
}

// lostLink logs a connection that ended (a warning) and counts it as the
// first failure of the outage, so that the attempts that follow within
// UnreachableLogInterval add no warning. Called by run only.
func (s *sender) lostLink(err error) {
	s.f.log.Warn("supervisor connection lost", "supervisor", s.addr, "err", s.explain(err).Error())
	s.warned = s.f.clock.Now()
}
