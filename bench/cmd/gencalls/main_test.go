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

// cliCase is a gencalls command line and what it must do.
type cliCase struct {
	name   string
	args   []string
	code   int      // the exit code
	stdout []string // substrings of standard output
	stderr string   // a substring of standard error
}

// run runs the command line and checks its exit code and output; a
// failure must be told in one line.
func (tt cliCase) run(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := cli.Run(newRootCmd(), tt.args, &stdout, &stderr)
	if code != tt.code {
		t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr.String())
	}
	for _, s := range tt.stdout {
		if !strings.Contains(stdout.String(), s) {
			t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
		}
	}
	if tt.stderr != "" && !strings.Contains(stderr.String(), tt.stderr) {
		t.Errorf("stderr %q lacks %q", stderr.String(), tt.stderr)
	}
	if tt.code != 0 && strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Errorf("stderr is not one line: %q", stderr.String())
	}
}

func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "demo.pcap")
	badWAV := filepath.Join(dir, "bad.wav")
	if err := os.WriteFile(badWAV, []byte("RIFF\x04\x00\x00\x00WAVE"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []cliCase{
		{"demo", []string{"--calls", "20", "--vlan", "85", "--duration", "1s", "--agent-tone", "1000", "--out", out}, 0,
			[]string{"1001   10.10.0.1:20000", "1000Hz      silence", "1020 ", "40 streams, 2000 frames", "wrote " + out}, ""},
		{"missing out", []string{"--calls", "2"}, 2, nil, "--out is required"},
		{"bad codec", []string{"--codec", "ilbc", "--out", out}, 2, nil, `unknown codec "ilbc"`},
		{"bad loss", []string{"--loss", "150", "--out", out}, 2, nil, "--loss 150 is outside"},
		{"bad vlan", []string{"--vlan", "4095", "--out", out}, 2, nil, "above 4094"},
		{"bad calls", []string{"--calls", "0", "--out", out}, 2, nil, "number of calls 0"},
		{"bad ptime", []string{"--ptime", "1us", "--out", out}, 2, nil, "packet time 1µs"},
		{"bad wav", []string{"--agent-wav", badWAV, "--out", out}, 2, nil, "--agent-wav"},
		{"unknown flag", []string{"--frobnicate", "--out", out}, 2, nil, "Unknown flag"},
		{"unwritable", []string{"--calls", "1", "--out", filepath.Join(dir, "no", "such", "x.pcap")}, 1, nil, "Cannot create"},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() < 2000*200 {
		t.Fatalf("demo capture: %v, %v", st, err)
	}
}

func TestScenarioCommandLine(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "consult.pcap")
	other := filepath.Join(dir, "m", "x.json")
	other2 := filepath.Join(dir, "other.pcap")
	tests := []cliCase{
		{"consult", []string{"--scenario", "consult-retrieve", "--seed", "3", "--out", out}, 0,
			[]string{"1001   agent ", "colleague", "to-agent", "wrote " + filepath.Join(dir, "consult.json"), "wrote " + out}, ""},
		{"unknown", []string{"--scenario", "nope", "--out", out}, 2, nil, `unknown scenario "nope"`},
		{"with calls", []string{"--scenario", "hold-resume", "--calls", "3", "--out", out}, 2, nil,
			"--calls cannot be used with --scenario"},
		{"manifest alone", []string{"--manifest", "x.json", "--out", out}, 2, nil, "--manifest x.json needs --scenario"},
		{"stdout", []string{"--scenario", "hold-resume", "--out", "-"}, 2, nil, "needs --manifest"},
		{"unwritable manifest", []string{"--scenario", "hold-resume", "--out", other2, "--manifest", other}, 1, nil,
			"Cannot create"},
		{"sip alone", []string{"--sip", "--out", out}, 2, nil, "--sip needs --scenario"},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
	if _, err := os.Stat(other2); err == nil {
		t.Errorf("%s left behind without its manifest", other2)
	}
	fh, err := os.Open(filepath.Join(dir, "consult.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	m, err := gen.ReadManifest(fh)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := gen.Scenario("consult-retrieve", 3)
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if _, err := spec.Write(&want); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, want.Bytes()) || m.Scenario != "consult-retrieve" || len(m.Legs) != len(spec.Manifest.Legs) {
		t.Fatalf("the capture or manifest differs from gen.Scenario's (%v)", err)
	}
}

// TestScenarioSIP: --sip adds the signalling to a scenario and its
// manifest; a sip-* scenario has it without --sip.
func TestScenarioSIP(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "hold-resume", "--sip"}, "SIP: 2 registrations, 2 calls"},
		{[]string{"--scenario", "sip-tcp-split"}, "SIP: 2 registrations, 3 calls"},
	} {
		out := filepath.Join(dir, tt.args[1]+".pcap")
		cliCase{name: tt.args[1], args: append(tt.args, "--out", out), stdout: []string{tt.want, "wrote " + out}}.run(t)
		fh, err := os.Open(strings.TrimSuffix(out, ".pcap") + ".json")
		if err != nil {
			t.Fatal(err)
		}
		m, err := gen.ReadManifest(fh)
		fh.Close()
		if err != nil || m.SIP == nil || len(m.SIP.Calls) == 0 || m.Legs[0].CallID == "" {
			t.Fatalf("%s: manifest without SIP: %v", tt.args[1], err)
		}
	}
}
