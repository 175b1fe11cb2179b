package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/internal/cli"
)

func runSmctl(args ...string) (stdout, stderr string, code int) {
	var out, errb bytes.Buffer
	code = cli.Run(newRootCmd(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// TestRenderSDPDynamicPayloadType: without --codec, render takes the
// dynamic payload types from the SDP in the capture, so agent 1001's
// G.729 on 96 (with telephone events on 101) renders exactly, sample for
// sample, as with --codec 96=G729.
func TestRenderSDPDynamicPayloadType(t *testing.T) {
	path := g729On96(t)
	dir := t.TempDir()
	var wavs [2][]int16
	for i, extra := range [][]string{nil, {"--codec", "96=G729"}} {
		out := filepath.Join(dir, "out.wav")
		args := append([]string{"render", path, "--out", out, "--endpoint", "10.10.0.1"}, extra...)
		if _, se, code := runSmctl(args...); code != 0 {
			t.Fatalf("smctl %s exited %d: %s", strings.Join(args, " "), code, se)
		}
		wavs[i], _ = readWAVFile(t, out)
		os.Remove(out)
	}
	if len(wavs[0]) < 8000*8 || len(wavs[0]) != len(wavs[1]) {
		t.Fatalf("%d samples from the SDP, %d with --codec", len(wavs[0]), len(wavs[1]))
	}
	loud := 0
	for i := range wavs[0] {
		if wavs[0][i] != wavs[1][i] {
			t.Fatalf("sample %d: %d from the SDP, %d with --codec", i, wavs[0][i], wavs[1][i])
		}
		if wavs[0][i] > 1000 || wavs[0][i] < -1000 {
			loud++
		}
	}
	if loud < 8000 {
		t.Fatalf("only %d loud samples: the G.729 was not decoded", loud)
	}
}

// TestRenderSRTPWithoutKeys: the SRTP call of sip-srtp-sdes whose SDP
// carries no a=crypto is never rendered as noise, by endpoint or by
// agent: render names each stream in one sentence, exits 1 with a
// sentence saying why, and writes no WAV.
func TestRenderSRTPWithoutKeys(t *testing.T) {
	path, _ := writeScenarioWith(t, "sip-srtp-sdes", gen.ScenarioOptions{SIP: true, HideSRTPKeys: true})
	for _, sel := range [][]string{{"--endpoint", "10.10.0.1"}, {"--agent", "1001"}} {
		t.Run(strings.Join(sel, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.wav")
			_, se, code := runSmctl(append([]string{"render", path, "--out", out}, sel...)...)
			if code != 1 {
				t.Fatalf("exit %d, want 1: %s", code, se)
			}
			for _, want := range []string{
				"10.10.0.1:20000 → 10.20.0.1:30000: SRTP without visible keys, not rendered\n",
				"10.20.0.1:30000 → 10.10.0.1:20000: SRTP without visible keys, not rendered\n",
				"could be rendered: 2 streams of SRTP whose keys the capture does not show",
			} {
				if !strings.Contains(se, want) {
					t.Errorf("stderr lacks %q:\n%s", want, se)
				}
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a WAV was written: %v", err)
			}
		})
	}
}

// TestRenderSRTPWithKeysNoAgent: without --agent, the SDES keys of the
// SDP decrypt the SRTP call too: the agent's tone is rendered, not noise.
func TestRenderSRTPWithKeysNoAgent(t *testing.T) {
	path, s := writeScenarioWith(t, "sip-srtp-sdes", gen.ScenarioOptions{SIP: true})
	out := filepath.Join(t.TempDir(), "out.wav")
	if _, se, code := runSmctl("render", path, "--out", out, "--endpoint", "10.10.0.1"); code != 0 {
		t.Fatalf("exit %d: %s", code, se)
	}
	pcm, _ := readWAVFile(t, out)
	if res := gen.CheckListening(s.Manifest, "1001", pcm); res.Windows == 0 || res.Right < res.Windows-2 {
		t.Fatalf("listening: %s", res.String())
	}
}
