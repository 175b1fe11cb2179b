package captureserver

import (
	"context"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/relay"
)

// TestStartWithoutEndpoint: a start that names no endpoint for an agent
// nothing is known about is refused with a sentence saying what is
// missing, unless it waits for the agent's next call; extensions are
// validated and kept on the session.
func TestStartWithoutEndpoint(t *testing.T) {
	ts := newTestServer(t, t.TempDir())
	ctx := context.Background()
	peer := peerWithCert(t, "alice")
	req := startReq
	req.Endpoints = nil
	req.Extensions = []string{"5001"}
	_, err := ts.StartMonitor(ctx, peer, &req)
	if !isCode(err, relay.CodeBadRequest) || !strings.Contains(err.Error(), "nothing is known about agent 1001 (extensions 5001)") ||
		!strings.Contains(err.Error(), "--wait") {
		t.Fatalf("start without endpoint: %v", err)
	}
	req.Extensions = []string{"50 01"}
	if _, err := ts.StartMonitor(ctx, peer, &req); !isCode(err, relay.CodeBadRequest) || !strings.Contains(err.Error(), `extension "50 01"`) {
		t.Fatalf("bad extension: %v", err)
	}
	req.Extensions, req.Wait = []string{"5001", "+33155550100"}, true
	st, err := ts.StartMonitor(ctx, peer, &req)
	if err != nil {
		t.Fatalf("start with --wait: %v", err)
	}
	sess, ok := ts.filter.Session(st.Session)
	if !ok || !sess.Wait || len(sess.Extensions) != 2 || len(sess.Endpoints) != 0 {
		t.Fatalf("session %+v", sess)
	}
}
