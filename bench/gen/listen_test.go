package gen

import (
	"strings"
	"testing"
	"time"
)

// TestCheckListeningIdeal renders every scenario's ideal audio for every
// monitored agent and expects every checked window right, and the
// alignment to find where the audio starts, also when the audio starts
// later or earlier than the first packet.
func TestCheckListeningIdeal(t *testing.T) {
	for _, name := range ScenarioNames() {
		t.Run(name, func(t *testing.T) {
			s := scenarioOrSkip(t, name, 5)
			for _, a := range s.Manifest.Monitored {
				pcm, start, err := s.IdealAudio(a.Agent)
				if err != nil {
					t.Fatal(err)
				}
				for _, shift := range []time.Duration{0, 370 * time.Millisecond, -250 * time.Millisecond} {
					in := pcm
					if shift > 0 { // the renderer wrote leading silence
						in = append(make([]int16, int(shift*SampleRate/time.Second)), pcm...)
					} else { // the renderer dropped the first packets
						in = pcm[int(-shift*SampleRate/time.Second):]
					}
					r := CheckListening(s.Manifest, a.Agent, in)
					if !r.OK() || r.Windows < int(s.Manifest.DurationMS/100)/2 {
						t.Fatalf("shift %v: %v\n%s", shift, r.String(), strings.Join(r.Failures, "\n"))
					}
					if want := start - shift; r.Offset != want {
						t.Errorf("shift %v: aligned at %v, want %v", shift, r.Offset, want)
					}
					if shift == 0 {
						t.Logf("%s", r.String())
					}
				}
			}
		})
	}
}

// TestCheckListeningFails checks that the checker notices what it must.
func TestCheckListeningFails(t *testing.T) {
	type render func(s *ScenarioSpec) []int16
	only := func(agent string, drop ...string) render {
		return func(s *ScenarioSpec) []int16 {
			pcm, _, err := s.idealAudio(func(l *Leg) bool {
				for _, d := range drop {
					if l.Name == d {
						return false
					}
				}
				return l.Agent == agent && l.Monitored
			})
			if err != nil {
				panic(err)
			}
			return pcm
		}
	}
	with := func(agent string, extra ...string) render {
		return func(s *ScenarioSpec) []int16 {
			pcm, _, err := s.idealAudio(func(l *Leg) bool {
				for _, e := range extra {
					if l.Name == e {
						return true
					}
				}
				return l.Agent == agent && l.Monitored
			})
			if err != nil {
				panic(err)
			}
			return pcm
		}
	}
	// heldAudible adds leg's tone over [fromMS, toMS) of capture time.
	heldAudible := func(leg string, fromMS, toMS int) render {
		return func(s *ScenarioSpec) []int16 {
			pcm, start, err := s.IdealAudio("1001")
			if err != nil {
				panic(err)
			}
			var hz float64
			for _, l := range s.Manifest.Legs {
				if l.Name == leg {
					hz = l.ToneHz
				}
			}
			a := int((ms(fromMS) - start) * SampleRate / time.Second)
			z := int((ms(toMS) - start) * SampleRate / time.Second)
			for i, v := range Tone(hz, 0, 0, z-a) {
				pcm[a+i] += v
			}
			return pcm
		}
	}
	tests := []struct {
		name     string
		scenario string
		agent    string
		render   render
		want     string
	}{
		{"customer missing", "hold-resume", "1001", only("1001", "customer"), "customer leg"},
		{"agent missing", "consult-overlap", "1001", only("1001", "agent"), "agent leg"},
		{"consult missing", "consult-retrieve", "1001", only("1001", "colleague"), "colleague leg"},
		{"retrieved call missing", "consult-retrieve", "1001", func(s *ScenarioSpec) []int16 {
			pcm := only("1001")(s)
			clear(pcm[9*SampleRate:]) // nothing after 9 s
			return pcm
		}, "inaudible"},
		{"other call heard", "hold-resume", "1001", with("1001", "other-call-far"), "of agent \"1050\" (not this session's) audible"},
		{"transferred call heard", "blind-transfer", "1001", with("1001", "transferred-customer"), "transferred-customer leg"},
		{"other agent heard", "multi-agent", "1001", with("1001", "customer-1002"), "customer-1002 leg"},
		{"moh to customer heard", "music-on-hold", "1001", with("1001", "moh-to-customer"), "moh-to-customer leg"},
		{"held leg heard", "hold-resume", "1001", heldAudible("customer", 5000, 7000), "audible while inactive or held"},
		{"bridge leg missing", "conference", "1001", only("1001", "agent-to-bridge"), "agent-to-bridge leg"},
		{"second vlan missing", "two-vlans", "1001", only("1001", "customer-vlan86"), "customer-vlan86 leg"},
		{"moh to agent missing", "music-on-hold", "1001", only("1001", "moh-to-agent"), "moh-to-agent leg"},
		{"silence", "hold-resume", "1001", func(*ScenarioSpec) []int16 { return nil }, "inaudible"},
		{"noise while held", "hold-resume", "1001", func(s *ScenarioSpec) []int16 {
			pcm := only("1001")(s)
			for i := 5 * SampleRate; i < 7*SampleRate; i++ {
				pcm[i] = int16(i*7919%2001 - 1000) // broadband, no tone
			}
			return pcm
		}, "not silent while every leg is inactive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := scenarioOrSkip(t, tt.scenario, 5)
			r := CheckListening(s.Manifest, tt.agent, tt.render(s))
			if r.OK() {
				t.Fatalf("checker passed: %s", r.String())
			}
			if !strings.Contains(strings.Join(r.Failures, "\n"), tt.want) {
				t.Fatalf("failures lack %q:\n%s", tt.want, strings.Join(r.Failures, "\n"))
			}
			t.Logf("%s", r.String())
		})
	}
}

func TestCheckListeningUnknownAgent(t *testing.T) {
	s := scenarioOrSkip(t, "hold-resume", 1)
	pcm, _, _ := s.IdealAudio("1001")
	r := CheckListening(s.Manifest, "9999", pcm)
	if r.OK() || len(r.Failures) != 1 || !strings.Contains(r.Failures[0], "no monitored leg") {
		t.Fatalf("%s", r.String())
	}
}
