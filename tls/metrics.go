package tls

import "github.com/prometheus/client_golang/prometheus"

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
