package cluster

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
)

// natsLogger hands the embedded NATS server's log lines to slog, tagged
// component=nats. It is safe for concurrent use.
type natsLogger struct {
	l *slog.Logger
	// starting demotes the server's start-up banner to debug; the node
	// logs one line of its own when it has started.
	starting atomic.Bool
	fatal    atomic.Pointer[string] // last fatal message, to explain a failed start
}

func (n *natsLogger) lastFatal() string {
	if p := n.fatal.Load(); p != nil {
		return *p
	}
	return ""
}

func (n *natsLogger) Noticef(format string, v ...any) {
	if n.starting.Load() {
		n.l.Debug(fmt.Sprintf(format, v...))
		return
	}
	n.l.Info(fmt.Sprintf(format, v...))
}
func (n *natsLogger) Warnf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.Contains(msg, "will not be verified") {
		// The server sees InsecureSkipVerify on the route configuration;
		// the chain is verified by routeTLS instead.
		n.l.Info("route certificates are verified against the site CA; host names are not compared")
		return
	}
	n.l.Warn(msg)
}
func (n *natsLogger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	n.fatal.Store(&msg)
	n.l.Error(msg)
}
func (n *natsLogger) Errorf(format string, v ...any) { n.l.Error(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Debugf(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
func (n *natsLogger) Tracef(format string, v ...any) { n.l.Debug(fmt.Sprintf(format, v...)) }
