package tls

import "github.com/prometheus/client_golang/prometheus"

// Collector exports the counters of a Lockout and a Listener as
// Prometheus metrics (namespace silentmon, subsystem tls):
//
//	silentmon_tls_handshakes_total{result="accepted|failed|refused|probe"}
//	silentmon_tls_auth_failures_total
//	silentmon_tls_lockouts_total
//	silentmon_tls_locked_sources
//
// It reads the counters at scrape time and is safe for concurrent use.
type Collector struct {
	lo *Lockout
	ln *Listener

	handshakes, failures, lockouts, locked *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector for lo and ln; either may be nil.
func NewCollector(lo *Lockout, ln *Listener) *Collector {
	return &Collector{
		lo: lo,
		ln: ln,
		handshakes: prometheus.NewDesc("silentmon_tls_handshakes_total",
			"TLS connections on the listener by outcome: accepted (verified client certificate), failed, refused (source locked out), probe (closed before sending anything).",
			[]string{"result"}, nil),
		failures: prometheus.NewDesc("silentmon_tls_auth_failures_total",
			"Failed authentications counted by the lockout.", nil, nil),
		lockouts: prometheus.NewDesc("silentmon_tls_lockouts_total",
			"Times a source address was locked out after repeated failed authentications.", nil, nil),
		locked: prometheus.NewDesc("silentmon_tls_locked_sources",
			"Source addresses locked out now.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.handshakes
	ch <- c.failures
	ch <- c.lockouts
	ch <- c.locked
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	if c.ln != nil {
		st := c.ln.Stats()
		for _, v := range []struct {
			label string
			n     uint64
		}{{"accepted", st.Accepted}, {"failed", st.Failed}, {"refused", st.Refused}, {"probe", st.Probes}} {
			ch <- prometheus.MustNewConstMetric(c.handshakes, prometheus.CounterValue, float64(v.n), v.label)
		}
	}
	if c.lo != nil {
		st := c.lo.Stats()
		ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(st.Failures))
		ch <- prometheus.MustNewConstMetric(c.lockouts, prometheus.CounterValue, float64(st.Lockouts))
		ch <- prometheus.MustNewConstMetric(c.locked, prometheus.GaugeValue, float64(st.Locked))
	}
}
