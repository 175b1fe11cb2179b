package captureserver

import (
	"fmt"
	"slices"
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
	return fmt.Errorf("nothing is known about %s: the request names no endpoint, the agent directory and the CTI bindings do not name it, and the SIP seen on the cluster's SPAN ports shows no registration or call of it; give --endpoint or --extension, or --wait to capture its next call", what)
}

// knowsAgent reports whether sess's agent is known: to the directory,
// a CTI binding or this member's SIP tracking, or else to another
// member's SIP tracking (the SPAN that sees the agent's signalling may be
// another member's).
func (s *server) knowsAgent(sess *filter.Session) bool {
	return s.agents.known(sess) || s.clusterKnows(sess)
}

// resolveAgent turns a start by extension alone (smctl monitor start
// --extension 5001: the agent is the extension) into a start for the
// agent the directory or a CTI binding gives that extension, so that the
// session carries the agent's id (status, audit, the supervisor's file
// names, the authorization rules) and follows all of its phones and
// extensions. Any other session is left as it is.
func (a *agents) resolveAgent(sess *filter.Session) {
	if a == nil || !slices.Contains(sess.Extensions, sess.Agent) {
		return
	}
	d := a.dir.Load()
	if d != nil {
		if _, ok := d.ByID(sess.Agent); ok {
			return
		}
	}
	if a.bound(sess.Agent) != nil {
		return
	}
	if d != nil {
		if ag, ok := d.ByExtension(sess.Agent); ok {
			sess.Agent = ag.ID
			return
		}
	}
	if t := a.binds.Load(); t != nil {
		if id, ok := t.byExt[sess.Agent]; ok {
			sess.Agent = id
		}
	}
}
