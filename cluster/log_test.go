package cluster

import (
	"log/slog"
	"strings"
	"testing"
)

func TestNatsLogger(t *testing.T) {
	tests := []struct {
		name     string
		starting bool
		log      func(n *natsLogger)
		want     string // substring of the output; "" = nothing at info level
		fatal    string
	}{
		{"banner while starting is debug", true, func(n *natsLogger) { n.Noticef("  Version:  %s", "2.x") }, "", ""},
		{"route events are info", false, func(n *natsLogger) { n.Noticef("%s - Route connection created", "10.0.0.2:42029") },
			`level=INFO msg="10.0.0.2:42029 - Route connection created"`, ""},
		{"insecure warning explained", false, func(n *natsLogger) {
			n.Warnf("TLS certificate chain and hostname of solicited routes will not be verified. DO NOT USE IN PRODUCTION!")
		}, "route certificates are verified against the site CA", ""},
		{"errors are errors", false, func(n *natsLogger) { n.Errorf("TLS route handshake error: %v", "x") },
			`level=ERROR msg="TLS route handshake error: x"`, ""},
		{"fatal is kept to explain a failed start", true, func(n *natsLogger) { n.Fatalf("Error listening on router port: %d", 42029) },
			"level=ERROR", "Error listening on router port: 42029"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			n := &natsLogger{l: slog.New(slog.NewTextHandler(&b, nil))}
			n.starting.Store(tc.starting)
			tc.log(n)
			out := b.String()
			if tc.want == "" && out != "" {
				t.Fatalf("logged %q, want nothing at info level", out)
			}
			if tc.want != "" && !strings.Contains(out, tc.want) {
				t.Fatalf("logged %q, want %q", out, tc.want)
			}
			if strings.Contains(out, "DO NOT USE IN PRODUCTION") {
				t.Fatalf("the misleading warning reached the log: %q", out)
			}
			if got := n.lastFatal(); got != tc.fatal {
				t.Fatalf("lastFatal = %q, want %q", got, tc.fatal)
			}
		})
	}
}
