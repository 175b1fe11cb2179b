package relay

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"
)

// conn is a framed connection: one reader goroutine, writers serialised by
// a mutex.
type conn struct {
	nc  net.Conn
	r   *Reader
	wmu sync.Mutex
	wb  []byte
}

func newConn(nc net.Conn, maxFrame int) *conn {
	return &conn{nc: nc, r: NewReader(nc, maxFrame)}
}

// writeJSON sends one control frame.
func (c *conn) writeJSON(t MsgType, v any, timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	c.wb, err = AppendJSON(c.wb[:0], t, v)
	if err != nil {
		return err
	}
	return c.writeLocked(c.wb, timeout)
}

// writeRaw sends already framed bytes.
func (c *conn) writeRaw(b []byte, timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b, timeout)
}

func (c *conn) writeLocked(b []byte, timeout time.Duration) error {
	if timeout > 0 {
		c.nc.SetWriteDeadline(time.Now().Add(timeout))
	}
	_, err := c.nc.Write(b)
	return err
}

func (c *conn) close() error { return c.nc.Close() }

// DialConfig says how to reach a peer on 42228.
type DialConfig struct {
	// TLS is the client configuration; nil dials plaintext (--insecure).
	TLS *tls.Config
	// TOS, if not zero, is set as the IP ToS / traffic class of the socket
	// before connecting (0xB8, DSCP EF, for media).
	TOS int
	// Timeout bounds the TCP connect and the TLS handshake (default 5 s).
	Timeout time.Duration
}

func dial(ctx context.Context, addr string, dc DialConfig) (net.Conn, error) {
	timeout := dc.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	d := net.Dialer{Timeout: timeout}
	if dc.TOS != 0 {
		tos := dc.TOS
		d.Control = func(network, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = setTOS(network, fd, tos) })
			if err != nil {
				return err
			}
			return serr
		}
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dc.TLS == nil {
		return nc, nil
	}
	cfg := dc.TLS.Clone()
	if cfg.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err == nil {
			cfg.ServerName = host
		}
	}
	tc := tls.Client(nc, cfg)
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	return tc, nil
}

// clientHello sends our hello (this version, role and name, no features)
// and reads the peer's.
func clientHello(c *conn, role, name string, timeout time.Duration) (Hello, error) {
	return helloWith(c, Hello{Versions: []int{Version}, Role: role, Name: name}, timeout)
}
