package gen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
)

// scenarioOrSkip returns the named scenario, skipping the test when it
// needs G.729 and this build has no bcg729.
func scenarioOrSkip(t *testing.T, name string, seed uint64) *ScenarioSpec {
	t.Helper()
	s, err := Scenario(name, seed)
	if errors.Is(err, ErrCodecUnavailable) {
		t.Skipf("skipping %s: %v", name, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTonePalette(t *testing.T) {
	for i, a := range tonePalette {
		if a < 300 || a > 3400 || math.Mod(a, 10) != 0 {
			t.Errorf("tone %g Hz is outside [300, 3400] or not a multiple of 10 Hz", a)
		}
		for _, b := range tonePalette[i+1:] {
			if math.Abs(a-b) < 150 {
				t.Errorf("tones %g and %g Hz are less than 150 Hz apart", a, b)
			}
			for k := 2.0; k <= 11; k++ {
				if math.Abs(k*a-b) < 40 {
					t.Errorf("tone %g Hz is near harmonic %g of %g Hz", b, k, a)
				}
			}
		}
	}
}

func TestScenarioUnknown(t *testing.T) {
	_, err := Scenario("no-such-flow", 1)
	if !errors.Is(err, ErrUnknownScenario) || !strings.Contains(err.Error(), "hold-resume") {
		t.Fatalf("error %v", err)
	}
}

// streamKey identifies an RTP stream in a capture as the manifest does.
type streamKey struct {
	ssrc     string
	src, dst string
	vlan     uint16
}

// TestScenarioCaptures checks every scenario's capture against its
// manifest: packet counts per stream, the VLAN, the non-RTP traffic, the
// tone rules, and the JSON round trip.
func TestScenarioCaptures(t *testing.T) {
	nameRE := regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			if !nameRE.MatchString(name) {
				t.Errorf("name %q is not lower case with dashes", name)
			}
			s := scenarioOrSkip(t, name, 7)
			m := s.Manifest
			var buf bytes.Buffer
			res, err := s.Write(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if m.DurationMS < 8000 || m.DurationMS > 15000 {
				t.Errorf("duration %d ms is outside 8-15 s", m.DurationMS)
			}
			pkts, times := readFrames(t, buf.Bytes())
			if len(pkts) != res.Frames || res.Datagrams == 0 {
				t.Fatalf("%d frames read, %d written, %d datagrams", len(pkts), res.Frames, res.Datagrams)
			}
			counts := map[streamKey]int{}
			ports := map[uint16]int{}
			for i, p := range pkts {
				if !times[i].Before(m.Epoch.Add(time.Duration(m.DurationMS+500) * time.Millisecond)) {
					t.Fatalf("packet %d at %v, after the scenario's end", i, times[i])
				}
				if p.Src.Port() == 53 || p.Dst.Port() == 53 || p.Dst.Port() == 137 {
					ports[min(p.Src.Port(), p.Dst.Port())]++
					continue
				}
				if p.Kind != capture.KindRTP {
					t.Fatalf("packet %d from %v is not RTP", i, p.Src)
				}
				var vlan uint16
				if p.NumVLANs > 0 {
					vlan = p.VLANs[0].ID()
				}
				counts[streamKey{fmt.Sprintf("0x%08x", p.RTP.SSRC), p.Src.String(), p.Dst.String(), vlan}]++
			}
			if ports[53] == 0 || ports[137] == 0 {
				t.Errorf("DNS or NBNS missing: %v", ports)
			}
			other := 0
			for _, o := range m.Other {
				other += o.Packets
			}
			if other != res.Datagrams {
				t.Errorf("manifest lists %d non-RTP packets, %d written", other, res.Datagrams)
			}
			names := map[string]bool{}
			seen := map[streamKey]bool{}
			total := 0
			for _, l := range m.Legs {
				if names[l.Name] {
					t.Errorf("leg name %q twice", l.Name)
				}
				names[l.Name] = true
				var vlan uint16
				if l.VLAN != nil {
					vlan = *l.VLAN
				}
				k := streamKey{l.SSRC, l.Src, l.Dst, vlan}
				exp := m.Expected[l.Name]
				if counts[k] != exp.Packets || exp.Packets == 0 {
					t.Errorf("leg %s: %d packets in the capture, manifest says %d", l.Name, counts[k], exp.Packets)
				}
				if exp.Sent+exp.Duplicates-exp.Lost != exp.Packets {
					t.Errorf("leg %s: counts %+v do not add up", l.Name, exp)
				}
				if !seen[k] {
					seen[k] = true
					total += counts[k]
				}
				if len(l.Active) == 0 || l.Direction != FromAgent && l.Direction != ToAgent && l.Direction != NoAgent {
					t.Errorf("leg %s: active %v, direction %q", l.Name, l.Active, l.Direction)
				}
			}
			if total != res.Frames-res.Datagrams {
				t.Errorf("legs cover %d RTP packets of %d", total, res.Frames-res.Datagrams)
			}
			// A monitored agent's legs have tones of their own, different
			// from every other monitored agent's.
			for _, a := range m.Monitored {
				tones := map[float64]string{}
				for _, l := range m.Legs {
					if l.Agent != a.Agent || !l.Monitored {
						continue
					}
					if prev, ok := tones[l.ToneHz]; ok {
						t.Errorf("agent %s: legs %s and %s share %g Hz", a.Agent, prev, l.Name, l.ToneHz)
					}
					tones[l.ToneHz] = l.Name
				}
				for _, l := range m.Legs {
					if l.Agent != a.Agent && l.Monitored && tones[l.ToneHz] != "" {
						t.Errorf("leg %s of agent %s has the tone of %s", l.Name, l.Agent, tones[l.ToneHz])
					}
				}
				if len(tones) == 0 || len(a.Endpoints) == 0 {
					t.Errorf("agent %s has no monitored leg or no endpoint", a.Agent)
				}
			}
			var js bytes.Buffer
			if err := m.WriteJSON(&js); err != nil {
				t.Fatal(err)
			}
			back, err := ReadManifest(bytes.NewReader(js.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			js2, _ := json.Marshal(back)
			js1, _ := json.Marshal(m)
			if !bytes.Equal(js1, js2) {
				t.Errorf("manifest does not survive a JSON round trip:\n%s\n%s", js1, js2)
			}
			for _, key := range []string{`"scenario"`, `"epoch": "2024-01-01T09:00:00Z"`, `"monitored"`, `"legs"`,
				`"tone_hz"`, `"ssrc": "0x`, `"active"`, `"from_ms"`, `"expected"`, `"duplicates"`} {
				if !strings.Contains(js.String(), key) {
					t.Errorf("manifest JSON lacks %s", key)
				}
			}
		})
	}
}

func TestScenarioDeterministic(t *testing.T) {
	write := func(seed uint64) ([]byte, []byte) {
		s := scenarioOrSkip(t, "loss-jitter", seed)
		var pcap, js bytes.Buffer
		if _, err := s.Write(&pcap); err != nil {
			t.Fatal(err)
		}
		if err := s.Manifest.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		return pcap.Bytes(), js.Bytes()
	}
	p1, j1 := write(3)
	p2, j2 := write(3)
	p3, _ := write(4)
	if !bytes.Equal(p1, p2) || !bytes.Equal(j1, j2) {
		t.Fatal("the same seed wrote different bytes")
	}
	if bytes.Equal(p1, p3) {
		t.Fatal("different seeds wrote the same bytes")
	}
}

// legPackets returns the RTP packets of leg name in capture order.
func legPackets(t *testing.T, s *ScenarioSpec, name string) []capture.Packet {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.Write(&buf); err != nil {
		t.Fatal(err)
	}
	pkts, _ := readFrames(t, buf.Bytes())
	var l *Leg
	for i := range s.Manifest.Legs {
		if s.Manifest.Legs[i].Name == name {
			l = &s.Manifest.Legs[i]
		}
	}
	if l == nil {
		t.Fatalf("no leg %s", name)
	}
	var out []capture.Packet
	for _, p := range pkts {
		if p.Kind == capture.KindRTP && fmt.Sprintf("0x%08x", p.RTP.SSRC) == l.SSRC && p.Src.String() == l.Src {
			out = append(out, p)
		}
	}
	return out
}

func TestScenarioHoldKeepsSequence(t *testing.T) {
	s := scenarioOrSkip(t, "hold-resume", 1)
	pkts := legPackets(t, s, "customer")
	if len(pkts) != 400 { // 12 s minus 4 s held, 20 ms each
		t.Fatalf("%d packets, want 400", len(pkts))
	}
	jumps := 0
	for i := 1; i < len(pkts); i++ {
		a, b := pkts[i-1].RTP, pkts[i].RTP
		if b.SequenceNumber != a.SequenceNumber+1 {
			t.Fatalf("sequence %d after %d", b.SequenceNumber, a.SequenceNumber)
		}
		if d := b.Timestamp - a.Timestamp; d != 160 {
			jumps++
			if d != 160+4*8000 || !b.Marker {
				t.Fatalf("timestamp jump %d (marker %v), want %d with the marker", d, b.Marker, 160+4*8000)
			}
		}
	}
	if jumps != 1 {
		t.Fatalf("%d timestamp jumps, want 1", jumps)
	}
}

func TestScenarioStrayPacket(t *testing.T) {
	s := scenarioOrSkip(t, "stray-packet", 1)
	cust, stray := legPackets(t, s, "customer"), legPackets(t, s, "stray")
	if len(stray) != 1 || len(cust) != 600 {
		t.Fatalf("%d stray packets, %d customer packets", len(stray), len(cust))
	}
	if stray[0].Src != cust[0].Src || stray[0].Dst != cust[0].Dst || stray[0].RTP.SSRC == cust[0].RTP.SSRC {
		t.Fatalf("stray packet %v→%v SSRC %#x is not another SSRC on the customer's flow", stray[0].Src,
			stray[0].Dst, stray[0].RTP.SSRC)
	}
}

func TestScenarioTwoVLANs(t *testing.T) {
	s := scenarioOrSkip(t, "two-vlans", 1)
	a, b := legPackets(t, s, "agent-vlan85"), legPackets(t, s, "agent-vlan86")
	if len(a) == 0 || len(b) == 0 || a[0].Src != b[0].Src || a[0].VLANs[0].ID() != 85 || b[0].VLANs[0].ID() != 86 {
		t.Fatalf("want the same phone address on VLANs 85 and 86")
	}
}
