package captureserver

import (
	"net/netip"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/quality"
	"github.com/silentmon/silentmon/internal/status"
)

func TestStreamMOS(t *testing.T) {
	tests := []struct {
		name string
		x    capture.StreamStats
		want float64
	}{
		{"clean G.711 20 ms", capture.StreamStats{Codec: "PCMU", Packets: 500, Expected: 500, Bytes: 500 * 160}, quality.StreamMOS("PCMU", 0, 0, 20)},
		{"G.711 2% network loss, 4 ms jitter", capture.StreamStats{Codec: "PCMA", Packets: 490, Expected: 500, Lost: 10, LostNetwork: 10, Jitter: 4, Bytes: 490 * 160},
			quality.StreamMOS("PCMA", 2, 4, 20)},
		{"capture loss does not count", capture.StreamStats{Codec: "PCMA", Packets: 490, Expected: 500, Lost: 10, LostCapture: 10, Bytes: 490 * 160},
			quality.StreamMOS("PCMA", 0, 0, 20)},
		{"G.729 30 ms", capture.StreamStats{Codec: "G729", Packets: 100, Expected: 100, Bytes: 100 * 30, Jitter: 1}, quality.StreamMOS("G729", 0, 1, 30)},
		{"odd payload size takes 20 ms", capture.StreamStats{Codec: "PCMU", Packets: 10, Expected: 10, Bytes: 10}, quality.StreamMOS("PCMU", 0, 0, 20)},
		{"unknown codec", capture.StreamStats{Codec: "dynamic-96", Packets: 10, Expected: 10}, 0},
		{"nothing expected", capture.StreamStats{Codec: "PCMU"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := float64(int(tt.want*100+0.5)) / 100
			if got := streamMOS(tt.x); got != want {
				t.Errorf("streamMOS = %v, want %v", got, want)
			}
		})
	}
}

// TestSessionStreamsMOS checks that the status gives each monitored
// stream its MOS and the session its worst, and that the metrics export
// both.
func TestSessionStreamsMOS(t *testing.T) {
	f := filter.New()
	ep, err := filter.ParseEndpoint("10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	f.Set([]*filter.Session{{ID: "s1", Agent: "1001", Endpoints: []filter.Endpoint{ep}, Supervisor: "127.0.0.1:42228"}})
	a, b := netip.MustParseAddrPort("10.0.0.1:20000"), netip.MustParseAddrPort("10.0.0.2:30000")
	w := &worker{
		snap: map[streamKey]uint64{
			{session: "s1", dir: filter.FromAgent, ssrc: 1, src: a, dst: b}: 500,
			{session: "s1", dir: filter.ToAgent, ssrc: 2, src: b, dst: a}:   480,
		},
		stats: map[capture.StreamKey]capture.StreamStats{
			{VLAN: capture.NoVLAN, Src: a, Dst: b, SSRC: 1}: {Codec: "PCMU", Packets: 500, Expected: 500, Bytes: 500 * 160},
			{VLAN: capture.NoVLAN, Src: b, Dst: a, SSRC: 2}: {Codec: "PCMU", Packets: 480, Expected: 500, Lost: 20, LostNetwork: 20, Jitter: 12, Bytes: 480 * 160},
		},
	}
	s := &server{filter: f, workers: []*worker{w}}
	sessions := s.sessionStreams()
	if len(sessions) != 1 || len(sessions[0].Streams) != 2 {
		t.Fatalf("sessions %+v, want one with two streams", sessions)
	}
	clean, lossy := streamMOS(w.stats[capture.StreamKey{VLAN: capture.NoVLAN, Src: a, Dst: b, SSRC: 1}]),
		streamMOS(w.stats[capture.StreamKey{VLAN: capture.NoVLAN, Src: b, Dst: a, SSRC: 2}])
	if !(lossy < clean) || lossy < 1 {
		t.Fatalf("MOS clean %v, lossy %v", clean, lossy)
	}
	got := map[string]float64{}
	for _, y := range sessions[0].Streams {
		got[y.Src] = y.MOS
	}
	if got[a.String()] != clean || got[b.String()] != lossy || sessions[0].WorstMOS != lossy {
		t.Errorf("stream MOS %v, worst %v; want %v and %v, worst %v", got, sessions[0].WorstMOS, clean, lossy, lossy)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(newMOSCollector(s.sessionStreams))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]float64{}
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			values[mf.GetName()] = append(values[mf.GetName()], gauge(m))
		}
	}
	if len(values["silentmon_session_mos"]) != 2 || len(values["silentmon_session_worst_mos"]) != 1 || values["silentmon_session_worst_mos"][0] != lossy {
		t.Errorf("metrics %v, want the MOS of both directions and the session's worst %v", values, lossy)
	}
}

func gauge(m *dto.Metric) float64 { return m.GetGauge().GetValue() }

func TestWorstMOS(t *testing.T) {
	tests := []struct {
		mos  []float64
		want float64
	}{
		{nil, 0}, {[]float64{0}, 0}, {[]float64{4.4, 0, 3.2, 4.1}, 3.2}, {[]float64{4.4}, 4.4},
	}
	for _, tt := range tests {
		var ss []status.StreamStatus
		for _, m := range tt.mos {
			ss = append(ss, status.StreamStatus{MOS: m})
		}
		if got := worstMOS(ss); got != tt.want {
			t.Errorf("worstMOS(%v) = %v, want %v", tt.mos, got, tt.want)
		}
	}
}
