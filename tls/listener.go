package tls

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// ListenOptions tune a Listener. Zero fields take their defaults.
type ListenOptions struct {
	// HandshakeTimeout bounds each TLS handshake; default 5 s (the
	// original product's HandShakeTime).
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the handshakes in progress at once; default
	// 256. When all are busy, new connections wait in the kernel's
	// backlog.
	MaxHandshakes int
	// Logger receives handshake failures at debug level; nil discards.
	Logger *slog.Logger
}

// ListenerStats are cumulative counters of a Listener.
type ListenerStats struct {
	Accepted uint64 // handshakes completed with a verified client certificate
	Failed   uint64 // handshakes that failed or presented no verified certificate
	Refused  uint64 // connections closed at once because the source was locked out
	Probes   uint64 // connections closed before sending anything (not counted as failures)
}

// Listener wraps a TCP listener: Accept returns only *tls.Conn values
// whose handshake completed with a verified client certificate. Handshakes
// run on their own goroutines with a deadline, so one slow client cannot
// hold up others; sources locked out by the Lockout are closed at once.
// A failed handshake counts against its source; a successful one resets
// its count.
//
// Accept, Addr, Stats and Close are safe for concurrent use. Close stops
// every goroutine the Listener started and waits for them.
type Listener struct {
	inner net.Listener
	cfg   *tls.Config
	lo    *Lockout
	opts  ListenOptions
	log   *slog.Logger

	ready    chan *tls.Conn
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	sem      chan struct{}
	closeErr error
	once     sync.Once

	errMu   sync.Mutex
	loopErr error // why the accept loop ended, if not Close

	accepted, failed, refused, probes atomic.Uint64
}

var _ net.Listener = (*Listener)(nil)

// Listen returns a Listener over inner with the TLS configuration cfg
// (normally from ServerConfig) and lockout lo (nil: none), with default
// ListenOptions. It starts the accept goroutine at once.
func Listen(inner net.Listener, cfg *tls.Config, lo *Lockout) *Listener {
	return ListenWith(inner, cfg, lo, ListenOptions{})
}

// ListenWith is Listen with options.
func ListenWith(inner net.Listener, cfg *tls.Config, lo *Lockout, opts ListenOptions) *Listener {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 5 * time.Second
	}
	if opts.MaxHandshakes <= 0 {
		opts.MaxHandshakes = 256
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		inner:  inner,
		cfg:    cfg,
		lo:     lo,
		opts:   opts,
		log:    log,
		ready:  make(chan *tls.Conn),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, opts.MaxHandshakes),
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept waits for the next authenticated connection; it returns a
// *tls.Conn. After Close it returns an error wrapping net.ErrClosed; if
// the inner listener fails, that error.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		l.errMu.Lock()
		err := l.loopErr
		l.errMu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.inner.Addr(), Err: err}
	}
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close closes the inner listener, aborts handshakes in progress, closes
// connections not yet accepted and waits for every goroutine to end.
func (l *Listener) Close() error {
	l.once.Do(func() {
		l.closeErr = l.inner.Close()
		l.cancel()
		l.shutdown(nil)
		l.wg.Wait()
	})
	return l.closeErr
}

func (l *Listener) shutdown(err error) {
	l.errMu.Lock()
	select {
	case <-l.done:
	default:
		l.loopErr = err
		close(l.done)
	}
	l.errMu.Unlock()
}

// Stats returns the counters.
func (l *Listener) Stats() ListenerStats {
	return ListenerStats{
		Accepted: l.accepted.Load(),
		Failed:   l.failed.Load(),
		Refused:  l.refused.Load(),
		Probes:   l.probes.Load(),
	}
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		select {
		case l.sem <- struct{}{}:
		case <-l.done:
			return
		}
		c, err := l.inner.Accept()
		if err != nil {
			<-l.sem
			select {
			case <-l.done:
				return
			default:
			}
			if isTemporary(err) {
				// out of file descriptors and the like: back off, as
				// net/http does, instead of spinning.
				if backoff == 0 {
					backoff = 5 * time.Millisecond
				} else if backoff *= 2; backoff > time.Second {
					backoff = time.Second
				}
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-l.done:
					t.Stop()
					return
				}
				continue
			}
			l.shutdown(err)
			return
		}
		backoff = 0
		src := AddrOf(c.RemoteAddr())
		if err := l.lo.Allow(src); err != nil {
			l.refused.Add(1)
			c.Close()
			<-l.sem
			continue
		}
		l.wg.Add(1)
		go l.handshake(c)
	}
}

func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}

func (l *Listener) handshake(c net.Conn) {
	defer l.wg.Done()
	src := AddrOf(c.RemoteAddr())
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(l.ctx, l.opts.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	<-l.sem
	if err == nil && len(tc.ConnectionState().VerifiedChains) == 0 {
		err = errors.New("the client presented no verified certificate")
	}
	if err != nil {
		tc.Close()
		if l.ctx.Err() != nil {
			return // listener closing: not the client's fault
		}
		if err == io.EOF {
			// closed before a single byte: a port probe or health check,
			// not an authentication attempt.
			l.probes.Add(1)
			return
		}
		l.failed.Add(1)
		l.lo.Fail(src)
		l.log.Debug("TLS handshake failed", "source", c.RemoteAddr().String(), "err", err.Error())
		return
	}
	l.lo.Succeed(src)
	l.accepted.Add(1)
	select {
	case l.ready <- tc:
	case <-l.done:
		tc.Close()
	}
}
