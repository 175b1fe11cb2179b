package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/playout"
)

// codecScenarios are the call flows the G.722 and Opus listening tests
// play: a hold and its resume, a consultation and the retrieve, and a call
// through a bad network (loss, reordering, duplicates, jitter).
var codecScenarios = []string{"hold-resume", "consult-retrieve", "loss-jitter"}

// codecCapture writes the named scenario with every call in codec c and
// its SIP, so that the payload type of Opus (111) comes from the SDP; it
// skips when this build cannot encode c.
func codecCapture(t *testing.T, name string, c gen.Codec) (string, *gen.Manifest) {
	t.Helper()
	return writeScenario(t, name, func(name string, seed uint64) (*gen.ScenarioSpec, error) {
		return gen.ScenarioWith(name, seed, gen.ScenarioOptions{SIP: true, Codec: &c})
	})
}

// TestCodecScenariosListenOffline renders the G.722 and Opus versions of
// the call-flow scenarios with smctl render, once per monitored agent with
// the agent's endpoints, and listens to the result as
// TestScenariosListenOffline does: every active leg heard, held legs
// silent, no other call's tone; the packets and losses it reports per
// stream are those the generator wrote, and no stream is reported as one
// that could not be played. Each scenario is rendered twice: with its SIP
// and no --codec (the SDP names Opus's payload type 111), and without SIP,
// G.722 on its static payload type 9 and Opus mapped with --codec
// 111=opus.
func TestCodecScenariosListenOffline(t *testing.T) {
	for _, c := range []gen.Codec{gen.G722, gen.Opus} {
		for _, name := range codecScenarios {
			for _, sip := range []bool{true, false} {
				how := "with SIP"
				if !sip {
					how = "without SIP"
				}
				t.Run(c.String()+"/"+name+"/"+how, func(t *testing.T) {
					t.Parallel()
					var args []string
					var pcap string
					var m *gen.Manifest
					if sip {
						pcap, m = codecCapture(t, name, c)
					} else {
						pcap, m = writeScenario(t, name, func(name string, seed uint64) (*gen.ScenarioSpec, error) {
							return gen.ScenarioWith(name, seed, gen.ScenarioOptions{Codec: &c})
						})
						if c == gen.Opus {
							args = append(args, "--codec", fmt.Sprintf("%d=opus", gen.OpusPayloadType))
						}
					}
					for _, mon := range m.Monitored {
						out := filepath.Join(t.TempDir(), mon.Agent+".wav")
						args := append([]string{"render", pcap, "--out", out}, args...)
						for _, e := range mon.Endpoints {
							args = append(args, "--endpoint", e)
						}
						so, se, code := runCmd(t, nil, "smctl", args...)
						if code != 0 {
							t.Fatalf("smctl %s exited %d: %s", strings.Join(args, " "), code, se)
						}
						if strings.Contains(se, "not rendered") || strings.Contains(se, "cannot play") {
							t.Errorf("smctl render of a %v call %s reports a stream it could not play: %s", c, how, se)
						}
						listenTo(t, "offline "+c.String()+" "+how, m, mon.Agent, readSessionWAV(t, out, 0))
						checkLoss(t, m, mon.Agent, so)
					}
				})
			}
		}
	}
}

// wideRate is the rate smsupervisor writes a session of the codec at: its
// best rate, G.722's 16 kHz and Opus's 48 kHz.
var wideRate = map[gen.Codec]int{gen.PCMU: 8000, gen.G722: 16000, gen.Opus: 48000}

// readSessionWAV reads a session's WAV file, checks it was written at
// rate (any of 8, 16 and 48 kHz when rate is 0), and returns its samples
// brought down to 8 kHz by playout's filter, as the listening check takes
// them.
func readSessionWAV(t *testing.T, path string, rate int) []int16 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, got, err := gen.ReadWAVRate(f)
	if err != nil {
		t.Fatal(err)
	}
	if rate != 0 && got != rate {
		t.Errorf("%s is written at %d Hz, want %d Hz", filepath.Base(path), got, rate)
	}
	if got == 8000 {
		return pcm
	}
	return playout.NewDownsampler(got, 1).Process(nil, pcm)
}

// TestCodecScenariosListenLive replays the G.722 and Opus versions of the
// call-flow scenarios, SIP included, through smserver at their recorded
// pace; each agent is monitored with smctl monitor start --agent ID --wait
// alone, so the capture server follows the SIP and the supervisor learns
// the Opus payload type from the SDP. Each session's WAV must be written
// at the codec's rate (16 kHz for G.722, 48 kHz for Opus); brought down
// to 8 kHz, it is listened to as in TestSIPScenariosListenLive, with the
// same allowance for the late packets, slips and stretches a loaded
// machine causes.
func TestCodecScenariosListenLive(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: the live scenarios replay about 13 s each in real time")
	}
	sec := quickstart(t)
	for _, c := range []gen.Codec{gen.G722, gen.Opus} {
		for _, name := range codecScenarios {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				t.Parallel()
				pcap, m := codecCapture(t, name, c)
				dir := t.TempDir()
				r := startReplay(t, sec, pcap, "wav:"+filepath.Join(dir, "{agent}.wav"))
				for _, mon := range m.Monitored {
					_, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", r.srvAddr, "--security-dir", r.sec,
						"--agent", mon.Agent, "--wait", "--supervisor", r.supAddr)
					if code != 0 {
						t.Fatalf("smctl monitor start --agent %s --wait exited %d: %s", mon.Agent, code, se)
					}
				}
				r.srv.wait(t, 60*time.Second)
				time.Sleep(time.Second) // the supervisor plays out its buffers
				disturbed := r.disturbances(t)
				r.sup.stop(t, syscall.SIGTERM)
				for _, mon := range m.Monitored {
					pcm := readSessionWAV(t, filepath.Join(dir, mon.Agent+".wav"), wideRate[c])
					listenLive(t, "live "+c.String(), m, mon.Agent, pcm, disturbed[mon.Agent])
				}
			})
		}
	}
}

// TestCodecDigitsListenOffline: agent 1001's phone sends the digits 159#
// as RFC 4733 telephone events in its voice stream (its SSRC, its
// sequence numbers, in place of the voice), in G.711, G.722 and Opus
// calls with their SIP (telephone-event on 101 at the voice's clock).
// smctl render reports no loss for the events (the packets and losses
// per stream are those the generator wrote: on loss-jitter, the packets
// it dropped only), says nothing of a stream it could not play, and the
// listening check hears the voice around the digits and silence, not
// concealment, during each digit. (Before, the digits were concealed as
// lost voice, and counted lost once the jitter buffer held the voice
// after them.)
func TestCodecDigitsListenOffline(t *testing.T) {
	for _, c := range []gen.Codec{gen.PCMU, gen.G722, gen.Opus} {
		for _, name := range []string{"hold-resume", "loss-jitter"} {
			t.Run(c.String()+"/"+name, func(t *testing.T) {
				t.Parallel()
				pcap, m := writeScenario(t, name, func(name string, seed uint64) (*gen.ScenarioSpec, error) {
					return gen.ScenarioWith(name, seed, gen.ScenarioOptions{SIP: true, Codec: &c, Digits: "159#"})
				})
				digits := 0
				for _, l := range m.Legs {
					digits += len(l.Events)
				}
				if digits != 4 {
					t.Fatalf("the manifest lists %d digit periods, want 4", digits)
				}
				mon := m.Monitored[0]
				out := filepath.Join(t.TempDir(), mon.Agent+".wav")
				args := []string{"render", pcap, "--out", out}
				for _, e := range mon.Endpoints {
					args = append(args, "--endpoint", e)
				}
				so, se, code := runCmd(t, nil, "smctl", args...)
				if code != 0 {
					t.Fatalf("smctl %s exited %d: %s", strings.Join(args, " "), code, se)
				}
				if strings.Contains(se, "not rendered") || strings.Contains(se, "cannot play") {
					t.Errorf("smctl render reports a stream it could not play: %s", se)
				}
				listenTo(t, "offline "+c.String()+" with digits", m, mon.Agent, readSessionWAV(t, out, 0))
				checkLoss(t, m, mon.Agent, so)
			})
		}
	}
}

// TestCodecDigitsListenLive replays G.711, G.722 and Opus calls whose
// agent phone sends the digits 159# as telephone events in its voice
// stream (hold-resume, with SIP: the supervisor learns telephone-event
// and Opus's payload types from the SDP) through smserver to an
// smsupervisor whose jitter buffer waits at least 150 ms, so the voice
// after each digit is buffered before the digit plays. The supervisor's
// status shows the digits, reports no loss on the stream that carried
// them beyond the packets a loaded machine made late, and the session's
// WAV has each digit silent and the voice around it heard, with the
// allowance of TestCodecScenariosListenLive. (Before, the 28 event
// packets counted as lost voice and the digits were concealed.)
func TestCodecDigitsListenLive(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: the live scenario replays about 12 s in real time")
	}
	sec := quickstart(t)
	for _, c := range []gen.Codec{gen.PCMU, gen.G722, gen.Opus} {
		t.Run(c.String(), func(t *testing.T) {
			t.Parallel()
			pcap, m := writeScenario(t, "hold-resume", func(name string, seed uint64) (*gen.ScenarioSpec, error) {
				return gen.ScenarioWith(name, seed, gen.ScenarioOptions{SIP: true, Codec: &c, Digits: "159#"})
			})
			dir := t.TempDir()
			r := startReplay(t, sec, pcap, "wav:"+filepath.Join(dir, "{agent}.wav"), "--min-delay-ms", "150")
			mon := m.Monitored[0]
			_, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", r.srvAddr, "--security-dir", r.sec,
				"--agent", mon.Agent, "--wait", "--supervisor", r.supAddr)
			if code != 0 {
				t.Fatalf("smctl monitor start --agent %s --wait exited %d: %s", mon.Agent, code, se)
			}
			r.srv.wait(t, 60*time.Second)
			time.Sleep(time.Second) // the supervisor plays out its buffers
			var st struct {
				Sessions []struct {
					Agent   string
					Digits  string
					Streams []struct {
						Direction, SSRC string
						Lost, Late      int
					}
				}
			}
			so := r.supervisorStatus(t, &st)
			disturbed := r.disturbances(t)
			r.sup.stop(t, syscall.SIGTERM)
			var digits []string
			for _, s := range st.Sessions {
				digits = append(digits, s.Digits)
				for _, x := range s.Streams {
					for _, l := range m.Legs {
						if len(l.Events) > 0 && strings.EqualFold(l.SSRC, x.SSRC) && x.Lost > m.Expected[l.Name].Lost+x.Late {
							t.Errorf("stream %s (the digits' stream): %d lost, %d late; the generator dropped %d",
								x.SSRC, x.Lost, x.Late, m.Expected[l.Name].Lost)
						}
					}
				}
			}
			if !slices.Contains(digits, "159#") {
				t.Errorf("the supervisor's status shows digits %q, want 159#:\n%s", digits, so)
			}
			pcm := readSessionWAV(t, filepath.Join(dir, mon.Agent+".wav"), wideRate[c])
			listenLive(t, "live "+c.String()+" with digits", m, mon.Agent, pcm, disturbed[mon.Agent])
		})
	}
}
