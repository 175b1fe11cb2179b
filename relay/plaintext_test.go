package relay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
)

// TestTLSClientOnPlaintextPort: a TLS client (a supervisor or smctl
// without --insecure) reaching an --insecure server is refused with a
// warning that says what to change, not an INFO line about a frame of
// 369 MB; the reader reports it as ErrTLSOnPlaintext, still a frame too
// large.
func TestTLSClientOnPlaintextPort(t *testing.T) {
	var logs testutil.SyncBuffer
	_, addr := startServer(t, &testHandler{}, ServerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err == nil {
		t.Fatal("a TLS handshake with a plaintext server succeeded")
	}
	want := "level=WARN msg=\"connection refused: " + ErrTLSOnPlaintext.Error() + "\""
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the server logged:\n%s\nwant a line with %s", logs.String(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// The reader alone: a TLS record header is named; another huge
	// length is a plain frame too large.
	_, _, err = NewReader(bytes.NewReader([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 1, 2}), 0).Next()
	if !errors.Is(err, ErrTLSOnPlaintext) || !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("a TLS record header: %v, want ErrTLSOnPlaintext and ErrFrameTooLarge", err)
	}
	_, _, err = NewReader(bytes.NewReader([]byte{0x7f, 0x03, 0x01, 0x02, 0x00, 1, 2}), 0).Next()
	if errors.Is(err, ErrTLSOnPlaintext) || !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("a huge length: %v, want only ErrFrameTooLarge", err)
	}
}
