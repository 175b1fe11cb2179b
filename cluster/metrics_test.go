package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCollector(t *testing.T) {
	tr := newTrio(t, 5*time.Second, time.Second)
	tr.waitMesh(t)
	a := tr.nodes[0]
	if err := a.Announce(session("m1", "1001", "10.0.0.5")); err != nil {
		t.Fatal(err)
	}
	if err := tr.nodes[1].Announce(session("m2", "1002", "10.0.0.6")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "both sessions on A", func() bool { return ids(a.Sessions()) == "m1,m2" })
	waitFor(t, 3*time.Second, "A to hear B and C", func() bool {
		up := 0
		for _, m := range a.Status().Members {
			if m.State == "up" {
				up++
			}
		}
		return up == 2
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a.Collector())
	got := gather(t, reg)
	for series, want := range map[string]float64{
		`silentmon_cluster_members{state="self"}`:              1,
		`silentmon_cluster_members{state="up"}`:                2,
		`silentmon_cluster_members{state="unreachable"}`:       0,
		`silentmon_cluster_routes`:                             2,
		`silentmon_cluster_sessions`:                           2,
		`silentmon_cluster_sessions_owned`:                     1,
		`silentmon_cluster_events_total{event="announced"}`:    1,
		`silentmon_cluster_slow_consumers_total{kind="route"}`: 0,
	} {
		if v, ok := got[series]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", series, v, ok, want)
		}
	}
	for _, peer := range []string{"B", "C"} {
		for _, dir := range []string{"in", "out"} {
			s := `silentmon_cluster_route_bytes_total{direction="` + dir + `",peer="` + peer + `"}`
			if got[s] <= 0 {
				t.Errorf("%s = %v, want > 0", s, got[s])
			}
		}
	}
}

// gather returns every series of reg as "name{label="v",...}" → value.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+`="`+lp.GetValue()+`"`)
			}
			key := mf.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			out[key] = v
		}
	}
	return out
}
