package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/internal/cli"
)

// writeScenarioWith writes the named scenario with options o and
// returns its path, skipping the test when the build cannot encode its
// codec.
func writeScenarioWith(t *testing.T, name string, o gen.ScenarioOptions) (string, *gen.ScenarioSpec) {
	t.Helper()
	s, err := gen.ScenarioWith(name, 7, o)
	if errors.Is(err, gen.ErrCodecUnavailable) {
		t.Skip("skipping: this build has no G.729 encoder (bcg729)")
	}
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), name+".pcap")
	if _, err := s.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	return path, s
}

// g729On96 writes sip-inbound-outbound with every call in G.729 on
// dynamic payload type 96 and agent 1001 sending the digits 1 and 5 as
// telephone events on 101.
func g729On96(t *testing.T) string {
	g729 := gen.G729
	path, _ := writeScenarioWith(t, "sip-inbound-outbound", gen.ScenarioOptions{SIP: true, Codec: &g729, PayloadType: 96, Digits: "15"})
	return path
}

func analyzeJSON(t *testing.T, args ...string) analyzeReport {
	t.Helper()
	var out, errb bytes.Buffer
	if code := cli.Run(newRootCmd(), append([]string{"analyze", "--json"}, args...), &out, &errb); code != 0 {
		t.Fatalf("smctl analyze exited %d: %s", code, errb.String())
	}
	var rep analyzeReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestAnalyzeSDPDynamicTypes: analyze reads the SIP in the capture, so
// G.729 on dynamic payload type 96 is named G729 with its 8 kHz clock
// and the call's Call-ID, and agent 1001's stream, which also carried
// telephone-event on 101, lists both; its jitter is computed (with the
// SDP's clock; events left out, as tshark does) where without the SDP a
// dynamic type has none. With tshark installed, its rtp,streams (which
// follows the same SIP) agrees on the payload names and the jitter.
func TestAnalyzeSDPDynamicTypes(t *testing.T) {
	path := g729On96(t)
	rep := analyzeJSON(t, path)
	if len(rep.Streams) != 6 {
		t.Fatalf("%d streams, want 6", len(rep.Streams))
	}
	withEvents := 0
	for _, s := range rep.Streams {
		if s.PayloadType != 96 || s.Codec != "G729" || s.ClockRate != 8000 || s.CallID == "" || s.Encrypted {
			t.Errorf("stream %s %s → %s: payload type %d codec %q clock %d call %q encrypted %v, want 96 G729 8000 with a Call-ID",
				s.SSRC, s.Src, s.Dst, s.PayloadType, s.Codec, s.ClockRate, s.CallID, s.Encrypted)
		}
		if len(s.PayloadTypes) > 0 {
			withEvents++
			want := []analyzePTInfo{{96, "G729", 8000}, {101, "telephone-event", 8000}}
			if len(s.PayloadTypes) != 2 || s.PayloadTypes[0] != want[0] || s.PayloadTypes[1] != want[1] || s.Src != "10.10.0.1:20000" {
				t.Errorf("stream %s %s: payload types %+v, want %+v from 10.10.0.1:20000", s.SSRC, s.Src, s.PayloadTypes, want)
			}
			if s.MaxJitterMs == 0 {
				t.Errorf("stream %s: no jitter computed for the dynamic type", s.SSRC)
			}
		}
	}
	if withEvents != 1 {
		t.Fatalf("%d streams with telephone events, want 1", withEvents)
	}

	// Without the SIP port, the same capture has no names for 96.
	for _, s := range analyzeJSON(t, path, "--sip-port", "5070").Streams {
		if s.Codec != "dynamic-96" || s.CallID != "" {
			t.Errorf("with SIP on another port: stream %s codec %q call %q", s.SSRC, s.Codec, s.CallID)
		}
	}

	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Log("tshark not installed: not compared")
		return
	}
	out, err := exec.Command(tshark, "-n", "-q", "-r", path, "-z", "rtp,streams").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 14 || !strings.HasPrefix(f[6], "0x") {
			continue
		}
		// start end srcIP srcPort dstIP dstPort SSRC payload... pkts lost (pct) minΔ meanΔ maxΔ minJ meanJ maxJ
		payload := strings.Join(f[7:len(f)-9], " ")
		meanJ, _ := strconv.ParseFloat(f[len(f)-2], 64)
		maxJ, _ := strconv.ParseFloat(f[len(f)-1], 64)
		for _, s := range rep.Streams {
			if !strings.EqualFold(s.SSRC, f[6]) {
				continue
			}
			seen++
			if got := tableCodec(&s); got != payload {
				t.Errorf("stream %s: payload %q, tshark %q", s.SSRC, got, payload)
			}
			if s.MaxJitterMs != maxJ || s.MeanJitterMs != meanJ {
				t.Errorf("stream %s: jitter max %.3f mean %.3f, tshark %.3f %.3f", s.SSRC, s.MaxJitterMs, s.MeanJitterMs, maxJ, meanJ)
			}
		}
	}
	if seen != len(rep.Streams) {
		t.Fatalf("tshark listed %d of our %d streams:\n%s", seen, len(rep.Streams), out)
	}
}

// TestAnalyzeSRTPEncrypted: the streams of the SDES-SRTP call, with its
// keys in the SDP or not, are shown as encrypted: "encrypted":true in the
// JSON, "SRTP (PCMU)" in the table; the plain background call is not.
func TestAnalyzeSRTPEncrypted(t *testing.T) {
	for _, hide := range []bool{false, true} {
		t.Run("hidden keys "+strconv.FormatBool(hide), func(t *testing.T) {
			path, _ := writeScenarioWith(t, "sip-srtp-sdes", gen.ScenarioOptions{SIP: true, HideSRTPKeys: hide})
			enc := 0
			for _, s := range analyzeJSON(t, path).Streams {
				agent := strings.HasPrefix(s.Src, "10.10.0.1:") || strings.HasPrefix(s.Dst, "10.10.0.1:")
				if s.Encrypted != agent || s.Codec != "PCMU" {
					t.Errorf("stream %s %s → %s: encrypted %v codec %q, want %v PCMU", s.SSRC, s.Src, s.Dst, s.Encrypted, s.Codec, agent)
				}
				if s.Encrypted {
					enc++
				}
			}
			if enc != 2 {
				t.Fatalf("%d encrypted streams, want 2", enc)
			}
			var out, errb bytes.Buffer
			if code := cli.Run(newRootCmd(), []string{"analyze", path}, &out, &errb); code != 0 {
				t.Fatalf("smctl analyze exited %d: %s", code, errb.String())
			}
			if n := strings.Count(out.String(), " SRTP (PCMU) "); n != 2 {
				t.Fatalf("table shows %d SRTP (PCMU) streams, want 2:\n%s", n, out.String())
			}
		})
	}
}
