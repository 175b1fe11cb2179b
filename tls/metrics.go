package tls

import (
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the counters of a Lockout and a Listener as
// Prometheus metrics (namespace silentmon, subsystem tls). From the
// Listener (ListenerStats; every accepted TCP connection lands in exactly
// one of the first five):
//
//	silentmon_tls_accepted_total                      verified client certificate, VerifyPeer passed
//	silentmon_tls_auth_failures_total{reason}         failed client authentications, the only ones the lockout counts:
//	    no_certificate, unknown_ca, expired, bad_certificate, wrong_role
//	silentmon_tls_refused_total{reason}               closed at once, before TLS:
//	    locked, source_limit, total_limit, table_full
//	silentmon_tls_probes_total{kind}                  not an authentication attempt, not counted:
//	    closed_before_hello (FIN or RST before a whole ClientHello), not_tls
//	silentmon_tls_handshake_errors_total{reason}      other handshakes without authentication, not counted:
//	    peer_alert (the client refused our certificate), aborted, timeout, protocol
//	silentmon_tls_handshakes_in_progress              gauge
//
// From the Lockout:
//
//	silentmon_tls_lockouts_total                      sources locked out
//	silentmon_tls_locked_sources                      gauge: sources locked out now
//	silentmon_tls_tracked_sources                     gauge: entries in the lockout's table (bounded by MaxSources)
//	silentmon_tls_lockout_table_full_total            new sources refused, or failures not recorded, because the table was full
//
// It reads the counters at scrape time and is safe for concurrent use.
type Collector struct {
	lo *Lockout
	ln *Listener

	accepted, failures, refused, probes, errs, inProgress *prometheus.Desc
	lockouts, locked, tracked, tableFull                  *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector for lo and ln; either may be nil.
func NewCollector(lo *Lockout, ln *Listener) *Collector {
	return &Collector{
		lo: lo,
		ln: ln,
		accepted: prometheus.NewDesc("silentmon_tls_accepted_total",
			"TLS connections accepted: a verified client certificate that the role check passed.", nil, nil),
		failures: prometheus.NewDesc("silentmon_tls_auth_failures_total",
			"Failed client authentications, counted by the lockout, by reason: no_certificate, unknown_ca, expired, bad_certificate, wrong_role.",
			[]string{"reason"}, nil),
		refused: prometheus.NewDesc("silentmon_tls_refused_total",
			"Connections closed at once before TLS, by reason: locked (source locked out), source_limit (handshakes in progress from the source), total_limit (handshakes in progress in all), table_full (new source while the lockout table is full).",
			[]string{"reason"}, nil),
		probes: prometheus.NewDesc("silentmon_tls_probes_total",
			"Connections that were not authentication attempts, not counted by the lockout: closed_before_hello (closed before a whole ClientHello), not_tls.",
			[]string{"kind"}, nil),
		errs: prometheus.NewDesc("silentmon_tls_handshake_errors_total",
			"Handshakes that ended without authentication and are not counted by the lockout: peer_alert (the client refused our certificate), aborted (closed mid-handshake), timeout, protocol.",
			[]string{"reason"}, nil),
		inProgress: prometheus.NewDesc("silentmon_tls_handshakes_in_progress",
			"TLS handshakes in progress now.", nil, nil),
		lockouts: prometheus.NewDesc("silentmon_tls_lockouts_total",
			"Times a source was locked out after repeated failed authentications.", nil, nil),
		locked: prometheus.NewDesc("silentmon_tls_locked_sources",
			"Sources (IPv4 addresses, IPv6 /64 prefixes) locked out now.", nil, nil),
		tracked: prometheus.NewDesc("silentmon_tls_tracked_sources",
			"Sources in the lockout's table now (failures counted, locked out, or a handshake in progress).", nil, nil),
		tableFull: prometheus.NewDesc("silentmon_tls_lockout_table_full_total",
			"New sources refused, or failures not recorded, because the lockout's table was full.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.accepted, c.failures, c.refused, c.probes, c.errs, c.inProgress,
		c.lockouts, c.locked, c.tracked, c.tableFull} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, label ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), label...)
	}
	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	if c.ln != nil {
		for o := outcome(0); o < numOutcomes; o++ {
			v := c.ln.counts[o].Load()
			switch {
			case o == outAccepted:
				counter(c.accepted, v)
			case o.failure():
				counter(c.failures, v, o.String())
			case o >= outRefusedLocked && o <= outRefusedTable:
				counter(c.refused, v, o.String())
			case o == outProbe || o == outNotTLS:
				counter(c.probes, v, o.String())
			default:
				counter(c.errs, v, o.String())
			}
		}
		gauge(c.inProgress, int(c.ln.inProgress.Load()))
	}
	if c.lo != nil {
		st := c.lo.Stats()
		counter(c.lockouts, st.Lockouts)
		gauge(c.locked, st.Locked)
		gauge(c.tracked, st.Sources)
		counter(c.tableFull, st.TableFull)
	}
}

// FileExpiry is the end of validity of the first certificate in a
// security file, or why the file could not be read.
type FileExpiry struct {
	File     string // base name, as CtiosServer.pem
	NotAfter time.Time
	Err      error
}

// ReadFileExpiries reads the first certificate of each of files in dir
// (base names such as ServerFile). It reads the files at every call: what
// it reports is what a restart would load.
func ReadFileExpiries(dir string, files ...string) []FileExpiry {
	out := make([]FileExpiry, 0, len(files))
	for _, f := range files {
		x := FileExpiry{File: f}
		certs, err := ReadCertificates(filepath.Join(dir, f))
		switch {
		case err != nil:
			x.Err = err
		case len(certs) == 0:
			x.Err = newErr(ErrBadPEM, "%s holds no certificate", f)
		default:
			x.NotAfter = certs[0].NotAfter
		}
		out = append(out, x)
	}
	return out
}

// ExpiryCollector exports, for every certificate expiries lists,
//
//	silentmon_tls_certificate_expiry_timestamp_seconds{file}   gauge: the end of its validity, Unix seconds
//
// (days left: (x - time()) / 86400). A file that cannot be read has no
// series. Safe for concurrent use if expiries is.
type ExpiryCollector struct {
	expiries func() []FileExpiry
	desc     *prometheus.Desc
}

var _ prometheus.Collector = (*ExpiryCollector)(nil)

// NewExpiryCollector returns an ExpiryCollector reading expiries at every
// scrape.
func NewExpiryCollector(expiries func() []FileExpiry) *ExpiryCollector {
	return &ExpiryCollector{expiries: expiries, desc: prometheus.NewDesc("silentmon_tls_certificate_expiry_timestamp_seconds",
		"End of validity of the certificate of a security file, Unix seconds.", []string{"file"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *ExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *ExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	for _, x := range c.expiries() {
		if x.Err == nil {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(x.NotAfter.UnixNano())/1e9, x.File)
		}
	}
}
