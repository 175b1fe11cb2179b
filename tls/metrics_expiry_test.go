package tls

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestExpiryCollector: the quickstart set's certificates are reported
// with their end of validity (Unix seconds, by file), a missing file
// with its error and no series; the names pass promlint.
func TestExpiryCollector(t *testing.T) {
	dir := t.TempDir()
	if err := Quickstart(dir, QuickstartOptions{}); err != nil {
		t.Fatal(err)
	}
	list := ReadFileExpiries(dir, RootCertFile, ServerFile, "missing.pem")
	if len(list) != 3 || list[0].Err != nil || list[1].Err != nil || list[0].NotAfter.IsZero() || list[2].Err == nil {
		t.Fatalf("expiries: %+v", list)
	}
	certs, err := ReadCertificates(dir + "/" + ServerFile)
	if err != nil {
		t.Fatal(err)
	}
	if !list[1].NotAfter.Equal(certs[0].NotAfter) {
		t.Fatalf("server file's end %v, want %v", list[1].NotAfter, certs[0].NotAfter)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewExpiryCollector(func() []FileExpiry { return list }))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "silentmon_tls_certificate_expiry_timestamp_seconds" || len(mfs[0].Metric) != 2 {
		t.Fatalf("families: %v", mfs)
	}
	for _, m := range mfs[0].Metric {
		file := m.Label[0].GetValue()
		want := list[0].NotAfter
		if file == ServerFile {
			want = list[1].NotAfter
		}
		if got := m.Gauge.GetValue(); int64(got) != want.Unix() || !strings.HasSuffix(file, ".pem") {
			t.Errorf("%s: %v, want %d", file, got, want.Unix())
		}
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil || len(problems) > 0 {
		t.Fatalf("promlint: %v %v", problems, err)
	}
}
