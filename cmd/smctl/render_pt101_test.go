package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/playout"
)

// TestRenderTelephoneEventsWithoutSDP: agent 1001's phone sends DTMF
// digits as RFC 4733 telephone events on payload type 101 in a capture
// without SIP, and smctl render runs with no --codec. Payload type 101,
// which nothing maps, is taken as telephone events: render says nothing
// about it (before, it reported "payload type 101 ... not rendered" next
// to the voice it played) and the voice around the digits is heard as
// the manifest says.
func TestRenderTelephoneEventsWithoutSDP(t *testing.T) {
	spec, err := gen.ScenarioWith("hold-resume", 1, gen.ScenarioOptions{Digits: "159#"})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "calls.pcap"), filepath.Join(dir, "out.wav")
	var buf bytes.Buffer
	if _, err := spec.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := cli.Run(newRootCmd(), []string{"render", in, "--out", out, "--endpoint", "10.10.0.1"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if strings.Contains(stderr.String(), "101") || strings.Contains(stderr.String(), "not rendered") {
		t.Errorf("render reports the telephone events as a stream it could not play:\n%s", stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, err := gen.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	if res := gen.CheckListening(spec.Manifest, "1001", pcm); !res.OK() {
		t.Errorf("the voice around the digits: %s", res.String())
	}
}

// TestPayloadType101: payload type 101 is telephone events (CodecNone,
// known and not played) only when nothing maps it; a --codec mapping or
// an SDP that gives 101 another codec wins.
func TestPayloadType101(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  playout.Config
		want playout.Codec
	}{
		{"nothing maps it", playout.Config{}, playout.CodecNone},
		{"--codec 101=opus", playout.Config{PayloadTypes: map[uint8]playout.Codec{101: playout.CodecOpus}}, playout.CodecOpus},
		{"a=rtpmap:101 G729/8000", playout.Config{PayloadTypes: playout.SDPPayloadTypes(map[uint8]string{101: "G729/8000"}, nil)}, playout.CodecG729},
		{"a=rtpmap:101 iLBC/8000", playout.Config{PayloadTypes: playout.SDPPayloadTypes(map[uint8]string{101: "iLBC/8000"}, nil)}, playout.CodecUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.cfg.Codec(101); got != tc.want {
				t.Errorf("payload type 101 plays as %v, want %v", got, tc.want)
			}
		})
	}
	if got := (playout.Config{}).Codec(102); got != playout.CodecUnknown {
		t.Errorf("payload type 102 with nothing mapping it plays as %v, want unknown", got)
	}
}
