package captureserver

import (
	"fmt"
	"strings"

	"github.com/silentmon/silentmon/filter"
)

// checkKnown refuses a session that names no endpoint for an agent
// nothing is known about (no registration or call of its id or
// extensions in the SIP this server has seen), unless it waits for the
// agent's next call.
func (s *server) checkKnown(sess *filter.Session) error {
	if len(sess.Endpoints) > 0 || sess.Wait || s.knowsAgent(sess) {
		return nil
	}
	what := "agent " + sess.Agent
	if len(sess.Extensions) > 0 {
		what += " (extensions " + strings.Join(sess.Extensions, ", ") + ")"
	}
	return fmt.Errorf("nothing is known about %s: the request names no endpoint and the SIP seen on this capture server's SPAN shows no registration or call of it; give --endpoint or --extension, or --wait to capture its next call", what)
}

// knowsAgent reports whether SIP tracking knows sess's agent.
func (s *server) knowsAgent(sess *filter.Session) bool { return s.agents.known(sess) }
