package tls

import (
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// CertExpiry is when one certificate a Store holds stops being valid.
type CertExpiry struct {
	File     string // file name in the security directory: CtiosServer.pem
	Role     Role   // the role it is used under; "ca" for the CA
	Subject  string // its subject's common name
	NotAfter time.Time
}

// RoleCA labels the CA's certificates in CertExpiry and the expiry metric.
const RoleCA Role = "ca"

// Expiries returns the expiry of every certificate the Store uses now:
// each CA of CtiosRootCert.pem, then each link's certificate (once per
// file), sorted by file then subject. The health check compares them
// with the time (for example: ready while all are valid for 14 days).
func (s *Store) Expiries() []CertExpiry {
	m := s.cur.Load()
	out := make([]CertExpiry, 0, len(m.roots)+len(m.pairs))
	for _, c := range m.roots {
		out = append(out, CertExpiry{File: RootCertFile, Role: RoleCA, Subject: c.Subject.CommonName, NotAfter: c.NotAfter})
	}
	for _, p := range m.pairs {
		out = append(out, CertExpiry{File: p.file, Role: p.role, Subject: p.cert.Leaf.Subject.CommonName, NotAfter: p.cert.Leaf.NotAfter})
	}
	slices.SortFunc(out, func(a, b CertExpiry) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return strings.Compare(a.Subject, b.Subject)
	})
	// The peer link may present CtiosClient.pem that a client link
	// presents too: one entry.
	return slices.CompactFunc(out, func(a, b CertExpiry) bool {
		return a.File == b.File && a.Subject == b.Subject && a.NotAfter.Equal(b.NotAfter)
	})
}

// StoreCollector exports a Store's certificates as Prometheus metrics:
//
//	silentmon_certificate_expiry_timestamp_seconds{file,role}   gauge: NotAfter as a Unix time (alert on it minus time())
//	silentmon_tls_reload_failures_total                          reloads refused, the certificates in use kept
//	silentmon_tls_last_reload_success_timestamp_seconds          gauge: when the certificates in use were read
//
// It reads the Store at scrape time and is safe for concurrent use.
type StoreCollector struct {
	s                        *Store
	expiry, failures, lastOK *prometheus.Desc
}

var _ prometheus.Collector = (*StoreCollector)(nil)

// NewStoreCollector returns a StoreCollector for s.
func NewStoreCollector(s *Store) *StoreCollector {
	return &StoreCollector{
		s: s,
		expiry: prometheus.NewDesc("silentmon_certificate_expiry_timestamp_seconds",
			"When a certificate this program uses expires, as a Unix time, by file of the security directory and role (ca for the CA).",
			[]string{"file", "role"}, nil),
		failures: prometheus.NewDesc("silentmon_tls_reload_failures_total",
			"Certificate reloads refused (a bad new file); the certificates in use were kept.", nil, nil),
		lastOK: prometheus.NewDesc("silentmon_tls_last_reload_success_timestamp_seconds",
			"When the certificates in use were read (start or last successful reload), as a Unix time.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *StoreCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.expiry
	ch <- c.failures
	ch <- c.lastOK
}

// Collect implements prometheus.Collector.
func (c *StoreCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[[2]string]bool{}
	for _, e := range c.s.Expiries() {
		k := [2]string{e.File, string(e.Role)}
		if seen[k] {
			continue // two CAs in one file: the first to expire is reported
		}
		seen[k] = true
		ch <- prometheus.MustNewConstMetric(c.expiry, prometheus.GaugeValue, float64(c.s.earliest(e.File, e.Role).Unix()), e.File, string(e.Role))
	}
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(c.s.ReloadFailures()))
	ch <- prometheus.MustNewConstMetric(c.lastOK, prometheus.GaugeValue, float64(c.s.lastOK.Load()))
}

// earliest returns the first NotAfter among the certificates of file
// used under role.
func (s *Store) earliest(file string, role Role) time.Time {
	var t time.Time
	for _, e := range s.Expiries() {
		if e.File == file && e.Role == role && (t.IsZero() || e.NotAfter.Before(t)) {
			t = e.NotAfter
		}
	}
	return t
}
