package tls

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMissingFileHint: a missing security file is one sentence that
// names it and what makes it: the whole directory when it is missing
// (smctl certs quickstart, --security-dir, --insecure), and for each file
// of a security directory what it is and the smctl certs commands that
// make it; the error wraps ErrFileMissing. (Before: "security file PATH
// does not exist", for all of them.)
func TestMissingFileHint(t *testing.T) {
	dir := t.TempDir()
	gone := filepath.Join(dir, "gone")
	for _, tc := range []struct {
		path, want string
	}{
		{filepath.Join(gone, RootCertFile), "security directory " + gone + " does not exist: create a working set with `smctl certs quickstart --dir " + gone + "`, or give --security-dir DIR (or --insecure, for a lab only)"},
		{filepath.Join(gone, ServerFile), "security directory " + gone + " does not exist: create a working set with `smctl certs quickstart --dir " + gone + "`, or give --security-dir DIR (or --insecure, for a lab only)"},
		{filepath.Join(dir, RootCertFile), "security file " + filepath.Join(dir, RootCertFile) + " (the CA certificate) does not exist: copy it from the host where certificates are signed, or create a working set with `smctl certs quickstart --dir " + dir + "`"},
		{filepath.Join(dir, ServerFile), "security file " + filepath.Join(dir, ServerFile) + " (this server's certificate and key) does not exist: make it with `smctl certs quickstart --dir " + dir + " --role capture` (or --role supervisor; add --ca-dir CADIR to sign with an existing CA), or with `smctl certs request`, `smctl certs sign` and `smctl certs bundle`"},
		{filepath.Join(dir, PeerFile), "security file " + filepath.Join(dir, PeerFile) + " (the peer certificate and key for the cluster) does not exist: make it with `smctl certs quickstart --dir " + dir + " --role capture --ca-dir CADIR`, or with `smctl certs request --role peer`, `smctl certs sign` and `smctl certs bundle`"},
		{filepath.Join(dir, ClientFile), "security file " + filepath.Join(dir, ClientFile) + " (the client certificate and key) does not exist: make it with `smctl certs quickstart --dir " + dir + " --role client` (add --ca-dir CADIR to sign with an existing CA), or with `smctl certs request`, `smctl certs sign` and `smctl certs bundle`"},
		{filepath.Join(dir, RootKeyFile), "the CA key " + filepath.Join(dir, RootKeyFile) + " does not exist: give the CA directory that holds it, or create a CA with `smctl certs ca --dir " + dir + "`"},
		{filepath.Join(gone, "request.pem"), "file " + filepath.Join(gone, "request.pem") + " does not exist"},
	} {
		t.Run(filepath.Base(filepath.Dir(tc.path))+"/"+filepath.Base(tc.path), func(t *testing.T) {
			_, err := readFile(tc.path)
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrFileMissing) {
				t.Fatalf("got %v\nwant %q wrapping ErrFileMissing", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(gone); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("reading created the missing directory")
	}
}

// TestExplainWrongTransport: a TLS client that reaches a plaintext server
// is told to give --insecure (ErrNotTLS), and a plaintext client whose
// greeting the server ends (a TLS server: end of file, or a reset) is told
// to leave it out (ErrExpectsTLS); both wrap the original error, and
// ExplainHandshake gives back an explained error found inside a wrapped
// one. Other errors pass unchanged.
func TestExplainWrongTransport(t *testing.T) {
	// A plaintext server that answers a TLS client hello with a frame of
	// its own protocol.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte{0, 0, 0, 12, 7, '{', '"', 'e', '"', ':', '"', 'n', 'o', '"', '}', '\n'})
			c.Close()
		}
	}()
	addr := ln.Addr().String()
	dir := quickDir(t, QuickstartOptions{})
	_, ccfg, _ := configs(t, dir)
	_, derr := dialRead(ccfg, addr, nil)
	if derr == nil {
		t.Fatal("a TLS handshake with a plaintext server succeeded")
	}
	got := ExplainHandshake(fmt.Errorf("no server reachable: %w", derr), addr)
	want := "the server at " + addr + " does not speak TLS (started with --insecure?): give --insecure to talk to it in plaintext"
	if got.Error() != want || !errors.Is(got, ErrNotTLS) || !errors.Is(got, derr) {
		t.Fatalf("explained %q (from %v), want %q wrapping ErrNotTLS and the original", got, derr, want)
	}

	for _, cause := range []error{io.EOF, io.ErrUnexpectedEOF, &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}} {
		got := ExplainPlaintext(cause, "10.0.0.1:42228")
		want := "the server at 10.0.0.1:42228 closed the connection during the greeting: it expects TLS; leave out --insecure"
		if got.Error() != want || !errors.Is(got, ErrExpectsTLS) || !errors.Is(got, cause) {
			t.Errorf("%v explained as %q, want %q wrapping ErrExpectsTLS and the original", cause, got, want)
		}
		if again := ExplainHandshake(fmt.Errorf("no server reachable: tried [10.0.0.1:42228]: %w", got), "10.0.0.1:42228"); again.Error() != want {
			t.Errorf("ExplainHandshake of the wrapped explanation gave %q, want it back", again)
		}
	}
	other := errors.New("frame too large")
	if ExplainPlaintext(other, "x:1") != other || ExplainPlaintext(nil, "x:1") != nil {
		t.Error("ExplainPlaintext changed an error that is not a closed greeting, or nil")
	}
}
