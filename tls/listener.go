package tls

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Defaults of ListenOptions.
const (
	DefaultHandshakeTimeout       = 5 * time.Second
	DefaultMaxHandshakes          = 256
	DefaultMaxHandshakesPerSource = 8
)

// ListenOptions tune a Listener. Zero fields take their defaults.
type ListenOptions struct {
	// HandshakeTimeout bounds each TLS handshake from the moment the
	// connection is accepted, however slowly the client sends; default
	// 5 s (DefaultHandshakeTimeout, the original product's
	// HandShakeTime). A client that sends nothing, or trickles its
	// ClientHello, is closed when it passes.
	HandshakeTimeout time.Duration
	// MaxHandshakes bounds the handshakes in progress at once, from all
	// sources; default 256 (DefaultMaxHandshakes). A connection beyond
	// it is closed at once (counted); the client may retry.
	MaxHandshakes int
	// MaxHandshakesPerSource bounds the handshakes in progress at once
	// from one source (an IPv4 address or an IPv6 /64); default 8
	// (DefaultMaxHandshakesPerSource). With a Lockout the bound is also
	// at most its threshold minus the failures the source already has,
	// so a source can never have more failures under way than it has
	// left. A connection beyond it is closed at once (counted).
	MaxHandshakesPerSource int
	// VerifyPeer, if set, is called after a handshake completed with a
	// verified client certificate, with the connection's state; it
	// checks what the CA cannot, such as the role the certificate
	// carries. A non-nil error closes the connection, is logged once as
	// a warning with the source, and counts as a failed authentication.
	// It runs on the handshake's goroutine, for many connections at once.
	VerifyPeer func(*tls.ConnectionState) error
	// OnAuthFailure, if set, is called for every failed client
	// authentication (what the Lockout counts), with the source, the
	// subject of the certificate when one was shown and passed the CA
	// check, the reason (the auth_failures_total label) and the error;
	// the capture server audits it. It runs on the handshake's goroutine
	// and must not block for long.
	OnAuthFailure func(source net.Addr, subject, reason string, err error)
	// Logger receives a line per failed authentication (info), per
	// refusal by VerifyPeer (warning) and per other unsuccessful
	// handshake (debug); nil discards. Refusals before TLS are counted,
	// not logged, so a flood cannot fill the log; the Lockout logs each
	// lockout.
	Logger *slog.Logger
}

// ListenerStats are cumulative counters of a Listener, and a gauge.
//
// Every accepted TCP connection ends in exactly one counter. Only the
// failed authentications (NoCertificate, UnknownCA, Expired,
// BadCertificate, WrongRole; their sum is Failed) are reported to the
// Lockout.
type ListenerStats struct {
	Accepted uint64 // handshakes completed with a verified client certificate that VerifyPeer accepted

	Failed         uint64 // failed client authentications: the sum of the next five
	NoCertificate  uint64 // the client sent no certificate
	UnknownCA      uint64 // the client's certificate is not signed by a trusted CA
	Expired        uint64 // the client's certificate is expired or not yet valid
	BadCertificate uint64 // the client's certificate is otherwise invalid (usage, key proof)
	WrongRole      uint64 // refused by VerifyPeer or the configuration's verification callbacks

	Refused            uint64 // closed at once, before TLS: the sum of the next four
	RefusedLocked      uint64 // the source is locked out
	RefusedSourceLimit uint64 // the source has as many handshakes in progress as it may
	RefusedTotalLimit  uint64 // MaxHandshakes handshakes in progress
	RefusedTableFull   uint64 // a new source while the lockout's table is full

	Probes uint64 // closed (FIN or RST) before a whole ClientHello arrived: port scans, health checks
	NotTLS uint64 // the first bytes are not a TLS ClientHello

	PeerAlerts     uint64 // the client ended the handshake with an alert: it refused our certificate
	Aborted        uint64 // the client closed after its ClientHello, without an alert
	Timeouts       uint64 // the handshake did not finish within HandshakeTimeout
	ProtocolErrors uint64 // anything else before the client's certificate (no common version or cipher suite, a malformed message)

	InProgress int // handshakes in progress now
}

// outcome is how a connection ended; each has a counter.
type outcome int

const (
	outAccepted outcome = iota
	outNoCertificate
	outUnknownCA
	outExpired
	outBadCertificate
	outWrongRole
	outRefusedLocked
	outRefusedSource
	outRefusedTotal
	outRefusedTable
	outProbe
	outNotTLS
	outPeerAlert
	outAborted
	outTimeout
	outProtocol
	numOutcomes
)

// failure reports whether o is a failed client authentication, the only
// outcome the Lockout counts.
func (o outcome) failure() bool { return o >= outNoCertificate && o <= outWrongRole }

// Listener wraps a TCP listener: Accept returns only *tls.Conn values
// whose handshake completed with a verified client certificate (and that
// VerifyPeer accepted). Handshakes run on their own goroutines with a
// deadline, so one slow client cannot hold up others.
//
// Before any TLS, a connection is closed at once, and counted, when its
// source (an IPv4 address or an IPv6 /64) is locked out, already has as
// many handshakes in progress as it may (MaxHandshakesPerSource, and no
// more than the failures it has left before a lockout), when
// MaxHandshakes handshakes are in progress, or when its source is new
// and the Lockout's table is full. So silent or slow connections from a
// few sources cannot take the slots of others.
//
// The Lockout counts only failed client authentication: no certificate,
// a certificate not signed by a trusted CA, expired, otherwise invalid
// (usage; a client unable to prove it holds the key), or refused by
// VerifyPeer or the configuration's VerifyPeerCertificate or
// VerifyConnection (wrong role). It does not count a connection closed
// before a whole ClientHello arrived (a port scan, a load balancer's
// health check), bytes that are not TLS, a client that ends the handshake
// with an alert because it refused our certificate (it dialed a name our
// certificate does not cover, or does not trust our CA), a client that
// closes mid-handshake, a handshake deadline passed, nor a protocol
// mismatch. Each is counted in ListenerStats. A success resets the
// source's count.
//
// The Listener always asks for a client certificate and verifies it
// against the configuration's ClientCAs, whatever its ClientAuth; a
// client without one learns it by a "bad certificate" alert.
//
// Accept, Addr, Stats and Close are safe for concurrent use. Close stops
// every goroutine the Listener started and waits for them; after it
// returns, Accept returns an error wrapping net.ErrClosed.
type Listener struct {
	inner net.Listener
	cfg   *tls.Config
	lo    *Lockout // the caller's, reported failures; may be nil
	tab   *Lockout // per-source reservations: lo, or a private table
	opts  ListenOptions
	log   *slog.Logger

	ready    chan *tls.Conn
	done     chan struct{}
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	closeErr error
	once     sync.Once

	errMu   sync.Mutex
	loopErr error // why the accept loop ended, if not Close

	inProgress atomic.Int64
	counts     [numOutcomes]atomic.Uint64
}

var _ net.Listener = (*Listener)(nil)

// Listen returns a Listener over inner with the TLS configuration cfg
// (normally from ServerConfig) and lockout lo (nil: none), with default
// ListenOptions. It starts the accept goroutine at once.
func Listen(inner net.Listener, cfg *tls.Config, lo *Lockout) *Listener {
	return ListenWith(inner, cfg, lo, ListenOptions{})
}

// ListenWith is Listen with options. Without a Lockout nothing is locked
// out, but the per-source and total limits still apply.
func ListenWith(inner net.Listener, cfg *tls.Config, lo *Lockout, opts ListenOptions) *Listener {
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if opts.MaxHandshakes <= 0 {
		opts.MaxHandshakes = DefaultMaxHandshakes
	}
	if opts.MaxHandshakesPerSource <= 0 {
		opts.MaxHandshakesPerSource = DefaultMaxHandshakesPerSource
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tab := lo
	if tab == nil {
		// Reservations only: no failure is ever reported to it, so it
		// holds at most MaxHandshakes entries.
		tab = NewLockout(LockoutConfig{Threshold: math.MaxInt})
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Listener{
		inner:  inner,
		cfg:    serverConfig(cfg),
		lo:     lo,
		tab:    tab,
		opts:   opts,
		log:    log,
		ready:  make(chan *tls.Conn),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// hsState is what one handshake's callbacks learnt, read after the
// handshake returns. The callbacks run on the handshake's goroutine.
type hsState struct {
	subject string  // the client certificate's subject, when it reached our checks
	hello   bool    // a whole ClientHello arrived
	certOK  bool    // the client's certificate passed every check
	failure outcome // set by a callback that refused the certificate
	err     error   // that callback's error
}

type hsStateKey struct{}

// serverConfig returns a copy of cfg whose GetConfigForClient gives each
// handshake its own copy with callbacks that record, in the handshake's
// hsState (from its context), that a ClientHello arrived and whether the
// client's certificate was refused. The shared copy keeps its session
// ticket keys (crypto/tls uses the original configuration's).
func serverConfig(cfg *tls.Config) *tls.Config {
	base := cfg.Clone()
	inner := base.GetConfigForClient
	base.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		st, _ := hi.Context().Value(hsStateKey{}).(*hsState)
		if st == nil {
			st = new(hsState) // not from our Listener: same checks, nothing recorded
		}
		st.hello = true
		src := base
		if inner != nil {
			c, err := inner(hi)
			if err != nil {
				return nil, err
			}
			if c != nil {
				src = c
			}
		}
		return perHandshake(src, st), nil
	}
	return base
}

// perHandshake returns a copy of src for one handshake. It asks for a
// client certificate and verifies it when given
// (VerifyClientCertIfGiven), and refuses a missing one itself, so that
// this refusal is told apart from a protocol error; src's own callbacks
// run after, for a certificate only.
func perHandshake(src *tls.Config, st *hsState) *tls.Config {
	c := src.Clone()
	c.GetConfigForClient = nil
	c.ClientAuth = tls.VerifyClientCertIfGiven
	vpc, vc := src.VerifyPeerCertificate, src.VerifyConnection
	refuse := func(o outcome, err error) error {
		st.failure, st.err, st.certOK = o, err, false
		return err
	}
	c.VerifyPeerCertificate = func(raw [][]byte, chains [][]*x509.Certificate) error {
		if len(raw) == 0 || len(chains) == 0 {
			return refuse(outNoCertificate, errNoClientCertificate)
		}
		st.subject = chains[0][0].Subject.String()
		if vpc != nil {
			if err := vpc(raw, chains); err != nil {
				return refuse(outWrongRole, err)
			}
		}
		st.certOK = true
		return nil
	}
	// VerifyConnection also runs on a resumed session, where
	// VerifyPeerCertificate does not.
	c.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || len(cs.VerifiedChains) == 0 {
			return refuse(outNoCertificate, errNoClientCertificate)
		}
		st.subject = cs.PeerCertificates[0].Subject.String()
		if vc != nil {
			if err := vc(cs); err != nil {
				return refuse(outWrongRole, err)
			}
		}
		st.certOK = true
		return nil
	}
	return c
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
	n := func(o outcome) uint64 { return l.counts[o].Load() }
	st := ListenerStats{
		Accepted:           n(outAccepted),
		NoCertificate:      n(outNoCertificate),
		UnknownCA:          n(outUnknownCA),
		Expired:            n(outExpired),
		BadCertificate:     n(outBadCertificate),
		WrongRole:          n(outWrongRole),
		RefusedLocked:      n(outRefusedLocked),
		RefusedSourceLimit: n(outRefusedSource),
		RefusedTotalLimit:  n(outRefusedTotal),
		RefusedTableFull:   n(outRefusedTable),
		Probes:             n(outProbe),
		NotTLS:             n(outNotTLS),
		PeerAlerts:         n(outPeerAlert),
		Aborted:            n(outAborted),
		Timeouts:           n(outTimeout),
		ProtocolErrors:     n(outProtocol),
		InProgress:         int(l.inProgress.Load()),
	}
	st.Failed = st.NoCertificate + st.UnknownCA + st.Expired + st.BadCertificate + st.WrongRole
	st.Refused = st.RefusedLocked + st.RefusedSourceLimit + st.RefusedTotalLimit + st.RefusedTableFull
	return st
}

func (l *Listener) acceptLoop() {
	defer l.wg.Done()
	var backoff time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
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
		// Only this goroutine adds, so the check cannot be overtaken.
		if l.inProgress.Load() >= int64(l.opts.MaxHandshakes) {
			l.counts[outRefusedTotal].Add(1)
			c.Close()
			continue
		}
		k, e, err := l.tab.begin(AddrOf(c.RemoteAddr()), l.opts.MaxHandshakesPerSource)
		if err != nil {
			switch {
			case errors.Is(err, ErrLockedOut):
				l.counts[outRefusedLocked].Add(1)
			case errors.Is(err, errSourceBusy):
				l.counts[outRefusedSource].Add(1)
			default:
				l.counts[outRefusedTable].Add(1)
			}
			c.Close()
			continue
		}
		l.inProgress.Add(1)
		l.wg.Add(1)
		go l.handshake(c, func(result int) { l.tab.end(k, e, result) })
	}
}

func isTemporary(err error) bool {
	var ne interface{ Temporary() bool }
	return errors.As(err, &ne) && ne.Temporary()
}

func (l *Listener) handshake(c net.Conn, end func(result int)) {
	defer l.wg.Done()
	st := new(hsState)
	tc := tls.Server(c, l.cfg)
	ctx, cancel := context.WithTimeout(context.WithValue(l.ctx, hsStateKey{}, st), l.opts.HandshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	var cs tls.ConnectionState
	if err == nil {
		cs = tc.ConnectionState()
		switch {
		case len(cs.VerifiedChains) == 0:
			st.failure, err = outNoCertificate, errNoClientCertificate // cannot happen: perHandshake refuses it
		case l.opts.VerifyPeer != nil:
			if verr := l.opts.VerifyPeer(&cs); verr != nil {
				st.failure, err = outWrongRole, verr
			}
		}
	}
	l.inProgress.Add(-1)
	if err == nil {
		end(endSuccess) // resets the source's count
		l.counts[outAccepted].Add(1)
		select {
		case l.ready <- tc:
		case <-l.done:
			tc.Close()
		}
		return
	}
	tc.Close()
	if l.ctx.Err() != nil {
		end(endNeutral) // listener closing: not the client's fault
		return
	}
	o := classify(err, st)
	result := endNeutral
	if o.failure() && l.lo != nil {
		result = endFailure
	}
	end(result)
	l.counts[o].Add(1)
	src := c.RemoteAddr().String()
	switch {
	case o == outWrongRole:
		l.log.Warn("TLS client refused after its certificate was verified", "source", src, "reason", o.String(), "err", err.Error())
	case o.failure():
		l.log.Info("TLS client authentication failed", "source", src, "reason", o.String(), "err", err.Error())
	default:
		l.log.Debug("TLS handshake ended without authentication", "source", src, "reason", o.String(), "err", err.Error())
		return
	}
	if l.opts.OnAuthFailure != nil {
		l.opts.OnAuthFailure(c.RemoteAddr(), st.subject, o.String(), err)
	}
}

// classify says how a handshake that returned err ended; st holds what
// its callbacks saw.
func classify(err error, st *hsState) outcome {
	if st.failure != 0 {
		return st.failure
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return outTimeout
	}
	if !st.hello {
		if closedByPeer(err) {
			return outProbe
		}
		return outNotTLS
	}
	// crypto/tls returns a received alert, and only that, as a
	// *net.OpError whose Op is "remote error" (conn.go, readRecordOrCCS);
	// an alert it sends itself has Op "local error" or no OpError.
	if ope, ok := errors.AsType[*net.OpError](err); ok && ope.Op == "remote error" {
		return outPeerAlert
	}
	if cve, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		if _, ok := errors.AsType[x509.UnknownAuthorityError](cve.Err); ok {
			return outUnknownCA
		}
		if ci, ok := errors.AsType[x509.CertificateInvalidError](cve.Err); ok && ci.Reason == x509.Expired {
			return outExpired
		}
		return outBadCertificate
	}
	if closedByPeer(err) {
		return outAborted
	}
	if st.certOK {
		// The certificate passed, then the handshake failed: in practice
		// a CertificateVerify that does not prove the key.
		return outBadCertificate
	}
	return outProtocol
}

// closedByPeer reports whether err is the client closing its end (FIN or
// RST) rather than something it sent.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// String names the outcome as the metrics label it is counted under.
func (o outcome) String() string {
	if o >= 0 && o < numOutcomes {
		return outcomeNames[o]
	}
	return "unknown"
}

var outcomeNames = [numOutcomes]string{
	outAccepted:       "accepted",
	outNoCertificate:  "no_certificate",
	outUnknownCA:      "unknown_ca",
	outExpired:        "expired",
	outBadCertificate: "bad_certificate",
	outWrongRole:      "wrong_role",
	outRefusedLocked:  "locked",
	outRefusedSource:  "source_limit",
	outRefusedTotal:   "total_limit",
	outRefusedTable:   "table_full",
	outProbe:          "closed_before_hello",
	outNotTLS:         "not_tls",
	outPeerAlert:      "peer_alert",
	outAborted:        "aborted",
	outTimeout:        "timeout",
	outProtocol:       "protocol",
}
