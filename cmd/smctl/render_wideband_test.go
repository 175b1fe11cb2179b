package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/playout"
)

// TestRenderAutoEndpointWideband: without --endpoint, render takes the
// endpoint with the most decodable RTP; a G.722 or Opus call counts as
// decodable when the build plays it, so the endpoint chosen is the one a
// G.711 version of the same capture gives (before, G.722 and Opus did not
// count, and a busier stream of another kind was taken instead).
func TestRenderAutoEndpointWideband(t *testing.T) {
	chosen := func(t *testing.T, c gen.Codec) string {
		t.Helper()
		spec, err := gen.ScenarioWith("multi-agent", 1, gen.ScenarioOptions{SIP: true, Codec: &c})
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		in := filepath.Join(dir, "calls.pcap")
		var buf bytes.Buffer
		if _, err := spec.Write(&buf); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(in, buf.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		if code := cli.Run(newRootCmd(), []string{"render", in, "--out", filepath.Join(dir, "out.wav")}, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		m := regexp.MustCompile(`no --endpoint given; using (\S+), the endpoint with the most decodable RTP`).FindStringSubmatch(stderr.String())
		if m == nil {
			t.Fatalf("render did not choose by decodable RTP:\n%s", stderr.String())
		}
		return m[1]
	}
	want := chosen(t, gen.PCMU)
	for _, tc := range []struct {
		codec gen.Codec
		built bool
	}{{gen.G722, playout.G722BuiltIn}, {gen.Opus, playout.OpusBuiltIn}} {
		if !tc.built {
			t.Logf("skipping %v: not built in", tc.codec)
			continue
		}
		if got := chosen(t, tc.codec); got != want {
			t.Errorf("%v: render chose %s, the G.711 capture %s", tc.codec, got, want)
		}
	}
}
