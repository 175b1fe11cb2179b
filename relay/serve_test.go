package relay

import (
	"errors"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// errListener is a listener whose Accept returns errs in turn, then the
// last one for ever; it counts the calls.
type errListener struct {
	errs   []error
	calls  atomic.Int32
	closed chan struct{}
}

func (l *errListener) Accept() (net.Conn, error) {
	n := int(l.calls.Add(1))
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	return nil, l.errs[min(n, len(l.errs))-1]
}

func (l *errListener) Close() error {
	select {
	case <-l.closed:
	default:
		close(l.closed)
	}
	return nil
}

func (l *errListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// TestServeAcceptErrors: Serve returns a permanent accept error at once
// (without retrying it), retries temporary ones with a back-off, and
// returns nil once the listener is closed.
func TestServeAcceptErrors(t *testing.T) {
	permanent := &net.OpError{Op: "accept", Net: "tcp", Err: errors.New("inner listener failed")}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	for _, tc := range []struct {
		name      string
		errs      []error
		want      error // nil: Serve returns nil
		wantCalls int32
	}{
		{"permanent", []error{permanent}, permanent, 1},
		{"temporary then permanent", []error{emfile, emfile, emfile, permanent}, permanent, 4},
		{"closed", []error{net.ErrClosed}, nil, 1},
		{"wrapped closed", []error{&net.OpError{Op: "accept", Err: net.ErrClosed}}, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := &errListener{errs: tc.errs, closed: make(chan struct{})}
			srv := NewServer(ServerConfig{Handler: &testHandler{}, Logger: quiet()})
			defer srv.Close()
			done := make(chan error, 1)
			go func() { done <- srv.Serve(ln) }()
			select {
			case err := <-done:
				if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Fatalf("Serve = %v, want %v", err, tc.want)
				}
			case <-time.After(2 * time.Second):
				srv.Close()
				<-done
				t.Fatalf("Serve still running after 2 s and %d Accept calls", ln.calls.Load())
			}
			if n := ln.calls.Load(); n != tc.wantCalls {
				t.Errorf("Accept called %d times, want %d", n, tc.wantCalls)
			}
		})
	}
}

// TestServeRetryStopsOnClose: Close ends Serve during the back-off after
// a temporary error.
func TestServeRetryStopsOnClose(t *testing.T) {
	ln := &errListener{errs: []error{&net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}}, closed: make(chan struct{})}
	srv := NewServer(ServerConfig{Handler: &testHandler{}, Logger: quiet()})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	for ln.calls.Load() < 3 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	srv.Close()
	if err := <-done; err != nil {
		t.Fatalf("Serve after Close = %v, want nil", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Close took %v", d)
	}
}
