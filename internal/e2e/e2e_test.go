// Package e2e runs silentmon's programs end to end on loopback: certificates
// from smctl, a generated capture replayed by smserver, a session started
// with smctl, media relayed over mutual TLS to smsupervisor, a WAV compared
// sample by sample.
package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/playout/audiotest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// bin builds the programs once per test binary and returns the path of
// name.
func bin(t *testing.T, name string) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "silentmon-e2e-bin-")
		if buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", binDir+"/",
			"github.com/silentmon/silentmon/cmd/smserver",
			"github.com/silentmon/silentmon/cmd/smsupervisor",
			"github.com/silentmon/silentmon/cmd/smctl")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, name)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// freeAddr returns a loopback address whose port no other call returned.
func freeAddr(t *testing.T) string {
	t.Helper()
	return testutil.FreeAddr(t, "127.0.0.1")
}

type proc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	if name == "smsupervisor" && !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--console-listen") }) {
		// The console's default address (127.0.0.1:9230) is one for the
		// whole machine: tests that do not test it turn it off.
		args = append(args, "--console-listen", "off")
	}
	return launch(t, exec.Command(bin(t, name), args...), (*exec.Cmd).Start, func(p *proc) {
		t.Logf("%s stderr:\n%s", name, p.stderr.String())
	})
}

// launch starts cmd with run (cmd.Start, or a start inside a network
// namespace) and the test's clean environment; the process is killed, if
// still running, when the test ends, and failed reports it then if the
// test failed.
func launch(t *testing.T, cmd *exec.Cmd, run func(*exec.Cmd) error, failed func(*proc)) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	p.cmd.Env = cleanEnv()
	if err := run(p.cmd); err != nil {
		t.Fatalf("start %s: %v", filepath.Base(cmd.Path), err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			failed(p)
		}
	})
	return p
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SILENTMON_") {
			env = append(env, kv)
		}
	}
	return env
}

// stop sends sig and waits for a clean exit.
func (p *proc) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s did not stop within 15 s of %v", p.cmd.Path, sig)
	}
	if p.err != nil {
		t.Fatalf("%s exited with %v after %v; stderr:\n%s", filepath.Base(p.cmd.Path), p.err, sig, p.stderr.String())
	}
}

func (p *proc) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s still running after %v", p.cmd.Path, d)
	}
	if p.err != nil {
		t.Fatalf("%s exited with %v; stderr:\n%s", filepath.Base(p.cmd.Path), p.err, p.stderr.String())
	}
}

// runCmd runs a program to completion and returns stdout, stderr and the
// exit code.
func runCmd(t *testing.T, env []string, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin(t, name), args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.Env = append(cleanEnv(), env...)
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return so.String(), se.String(), code
}

func quickstart(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "security")
	if _, se, code := runCmd(t, nil, "smctl", "certs", "quickstart", "--dir", dir); code != 0 {
		t.Fatalf("smctl certs quickstart exited %d: %s", code, se)
	}
	return dir
}

// writeCapture writes a capture of calls and returns its path and what was
// written.
func writeCapture(t *testing.T, calls int, dur time.Duration) (string, *gen.Result) {
	t.Helper()
	cs, err := gen.Build(gen.BuildConfig{Calls: calls, VLAN: 85, Priority: 5, Duration: dur, AgentTone: 1000, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return writeCalls(t, cs, 7)
}

// writeCalls writes calls, with the given seed, to a capture file and
// returns its path and what the generator recorded of it.
func writeCalls(t *testing.T, calls []gen.Call, seed uint64) (string, *gen.Result) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "calls.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gen.Write(f, &gen.Config{Calls: calls, Seed: seed, Record: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, res
}

func readWAV(t *testing.T, path string) []int16 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := gen.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitReady(t *testing.T, sec, server string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, se, code := runCmd(t, nil, "smctl", "status", "--server", server, "--security-dir", sec, "--timeout", "2s")
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("smserver at %s not ready: %s", server, se)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replay is an smsupervisor and an smserver that replays a capture in
// real time once a session starts, and exits when it is done.
type replay struct {
	sec, srvAddr, supAddr string
	sup, srv              *proc
}

// startReplay starts smsupervisor writing to output (an --output value)
// with the further flags supArgs, and smserver replaying pcap, both with
// the certificates in sec; it returns once smserver answers.
func startReplay(t *testing.T, sec, pcap, output string, supArgs ...string) *replay {
	t.Helper()
	r := &replay{sec: sec, srvAddr: freeAddr(t), supAddr: freeAddr(t)}
	r.sup = start(t, "smsupervisor", append([]string{"--listen", r.supAddr, "--security-dir", sec,
		"--output", output, "--metrics-listen", freeAddr(t)}, supArgs...)...)
	r.srv = start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--exit-after-replay", "--listen", r.srvAddr, "--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, r.srvAddr)
	return r
}

// monitor starts a session for agent's endpoints to the supervisor with
// smctl monitor start and returns what it printed, the session id.
func (r *replay) monitor(t *testing.T, agent string, endpoints ...string) string {
	t.Helper()
	args := []string{"monitor", "start", "--server", r.srvAddr, "--security-dir", r.sec,
		"--agent", agent, "--supervisor", r.supAddr}
	for _, e := range endpoints {
		args = append(args, "--endpoint", e)
	}
	so, se, code := runCmd(t, nil, "smctl", args...)
	if code != 0 {
		t.Fatalf("smctl monitor start --agent %s exited %d: %s", agent, code, se)
	}
	return strings.TrimSpace(so)
}

// supervisorStatus decodes the supervisor's smctl status --json into v and
// returns the JSON.
func (r *replay) supervisorStatus(t *testing.T, v any) string {
	t.Helper()
	so, se, code := runCmd(t, nil, "smctl", "status", "--json", "--server", r.supAddr, "--security-dir", r.sec)
	if code != 0 {
		t.Fatalf("supervisor status exited %d: %s", code, se)
	}
	if err := json.Unmarshal([]byte(so), v); err != nil {
		t.Fatalf("supervisor status %s: %v", so, err)
	}
	return so
}

// sentPCM returns the G.711 decode of the RTP payloads agent's phone sent,
// as the generator recorded them.
func sentPCM(t *testing.T, res *gen.Result, agent string) []int16 {
	t.Helper()
	var pcm []int16
	for _, s := range res.Streams {
		if s.AgentID == agent && s.FromAgent {
			for _, p := range s.Packets {
				for _, b := range p.Payload {
					pcm = append(pcm, g711.DecodeUlawFrame(b))
				}
			}
		}
	}
	if len(pcm) == 0 {
		t.Fatalf("generator wrote no stream for agent %s", agent)
	}
	return pcm
}

// checkAgentWAV checks that got, a supervisor's WAV named name, holds want,
// the decode of the agent's stream, sample for sample from where their
// first non-zero samples line up, and nothing outside it but concealment
// after its last packet; it returns where want starts in got.
func checkAgentWAV(t *testing.T, name string, got, want []int16) int {
	t.Helper()
	off := audiotest.Align(got, want)
	if off < 0 {
		t.Fatalf("%s: cannot align the WAV (%d samples) with the agent's stream (%d samples)", name, len(got), len(want))
	}
	for i, w := range want {
		if got[off+i] != w {
			t.Fatalf("%s: sample %d of the agent's stream: WAV has %d, want %d (decode of the RTP payload)", name, i, got[off+i], w)
		}
	}
	// After the agent's last packet the player cannot know the call
	// ended, so while the other direction still plays it conceals for at
	// most the concealment fade (G.711 Appendix I: 60 ms) plus a frame.
	const tail = 80 * 8
	for i, v := range got {
		if (i < off || i >= off+len(want)+tail) && v != 0 {
			t.Fatalf("%s: WAV sample %d is %d outside the agent's stream; another call leaked in", name, i, v)
		}
	}
	return off
}

// TestMonitoredCallReachesWAV is the walking skeleton: the WAV equals the
// G.711 decode of exactly agent 1001's RTP payloads, in order, none missing,
// and holds nothing else.
func TestMonitoredCallReachesWAV(t *testing.T) {
	sec := quickstart(t)
	pcap, res := writeCapture(t, 5, 3*time.Second)
	wav := filepath.Join(t.TempDir(), "out.wav")

	// A generous jitter buffer, so that a loaded test machine's stalls do
	// not turn packets late: this test is about the data path being exact.
	r := startReplay(t, sec, pcap, "wav:"+wav, "--min-delay-ms", "300", "--max-delay-ms", "600")
	session := r.monitor(t, "1001", "10.10.0.1")
	if len(session) < 8 {
		t.Fatalf("monitor start printed %q, want a session id", session)
	}
	r.srv.wait(t, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	// The supervisor's status has the played streams with their quality.
	var sst struct {
		Streams []struct {
			Direction string  `json:"direction"`
			Codec     string  `json:"codec"`
			Lost      int     `json:"lost"`
			MOS       float64 `json:"mos"`
		} `json:"streams"`
	}
	if so := r.supervisorStatus(t, &sst); len(sst.Streams) != 2 {
		t.Fatalf("supervisor status %s: want 2 streams", so)
	}
	for _, x := range sst.Streams {
		// G.711 without loss: E-model R 93.2 (MOS 4.41) less the delay
		// term, which at this test's 300 ms buffer is about 0.8.
		if x.Codec != "PCMU" || x.Lost != 0 || x.MOS < 3.4 || x.MOS > 4.42 {
			t.Errorf("stream %+v: want PCMU, no loss, MOS 3.4 to 4.41", x)
		}
	}
	r.sup.stop(t, syscall.SIGTERM)

	want := sentPCM(t, res, "1001")
	got := readWAV(t, wav)
	off := checkAgentWAV(t, "agent 1001", got, want)
	if !strings.Contains(r.srv.stdout.String(), "packets relayed") {
		t.Errorf("smserver printed no summary: %q", r.srv.stdout.String())
	}
	t.Logf("WAV: %d samples, agent stream %d samples at offset %d; %s", len(got), len(want), off, strings.TrimSpace(r.sup.stdout.String()))
}

// TestClientWithoutValidCertificateRefused checks that a client holding
// certificates of another CA cannot start a session.
func TestClientWithoutValidCertificateRefused(t *testing.T) {
	sec, other := quickstart(t), quickstart(t)
	pcap, _ := writeCapture(t, 2, time.Second)
	srvAddr := freeAddr(t)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session", "--listen", srvAddr,
		"--security-dir", sec, "--metrics-listen", freeAddr(t))
	waitReady(t, sec, srvAddr)

	_, se, code := runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--security-dir", other,
		"--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9")
	if code != 1 {
		t.Fatalf("monitor start with another CA's certificate exited %d, want 1; stderr %q", code, se)
	}
	_, se, code = runCmd(t, nil, "smctl", "monitor", "start", "--server", srvAddr, "--insecure",
		"--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9")
	if code != 1 {
		t.Fatalf("plaintext monitor start exited %d, want 1; stderr %q", code, se)
	}
	so, se, code := runCmd(t, nil, "smctl", "status", "--json", "--server", srvAddr, "--security-dir", sec)
	if code != 0 {
		t.Fatalf("status exited %d: %s", code, se)
	}
	var st struct {
		Sessions []json.RawMessage `json:"sessions"`
	}
	if err := json.Unmarshal([]byte(so), &st); err != nil {
		t.Fatalf("status --json: %v: %s", err, so)
	}
	if len(st.Sessions) != 0 {
		t.Fatalf("a refused client started %d sessions", len(st.Sessions))
	}
	srv.stop(t, os.Interrupt)
}

// TestBadInputExitsTwo checks that bad usage and configuration exit 2 with
// one sentence naming the bad value.
func TestBadInputExitsTwo(t *testing.T) {
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 1, time.Second)
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(badYAML, []byte("media:\n  tos: 999\n"), 0o600)
	garbage := filepath.Join(t.TempDir(), "garbage.pcap")
	os.WriteFile(garbage, []byte("this is not a capture file at all"), 0o600)
	for _, tc := range []struct {
		name string
		env  []string
		prog string
		args []string
		want string
	}{
		{"missing capture", nil, "smserver", []string{"--pcap", "/nonexistent/calls.pcap", "--security-dir", sec}, "/nonexistent/calls.pcap"},
		{"not a capture", nil, "smserver", []string{"--cluster-listen", "127.0.0.1:0", "--pcap", garbage, "--security-dir", sec, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, garbage},
		{"unknown flag", nil, "smserver", []string{"--pcap", pcap, "--frobnicate"}, "--frobnicate"},
		{"bad config value", nil, "smserver", []string{"--pcap", pcap, "--config", badYAML}, "media.tos"},
		{"bad env value", []string{"SILENTMON_HEARTBEAT_INTERVAL_MS=soon"}, "smserver", []string{"--pcap", pcap}, "heartbeat.interval_ms"},
		{"missing config file", nil, "smsupervisor", []string{"--config", "/nonexistent/sm.yaml"}, "/nonexistent/sm.yaml"},
		{"bad output", nil, "smsupervisor", []string{"--output", "speaker", "--security-dir", sec}, "speaker"},
		{"bad listen", nil, "smsupervisor", []string{"--listen", "nowhere", "--security-dir", sec}, "nowhere"},
		{"missing security dir", nil, "smsupervisor", []string{"--security-dir", "/nonexistent/sec", "--output", "null", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}, "/nonexistent/sec"},
		{"smctl unknown flag", nil, "smctl", []string{"status", "--bogus"}, "--bogus"},
		{"smctl bad endpoint", nil, "smctl", []string{"monitor", "start", "--server", "127.0.0.1:1", "--agent", "1", "--endpoint", "10.0.0.300", "--supervisor", "127.0.0.1:2"}, "10.0.0.300"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, se, code := runCmd(t, tc.env, tc.prog, tc.args...)
			if code != 2 {
				t.Fatalf("exit code %d, want 2; stderr %q", code, se)
			}
			lines := strings.Split(strings.TrimSpace(se), "\n")
			last := lines[len(lines)-1]
			if !strings.Contains(last, tc.want) {
				t.Fatalf("error %q does not name %q", last, tc.want)
			}
		})
	}
}

// TestSignalsStopCleanly checks SIGINT and SIGTERM end both services with
// exit 0.
func TestSignalsStopCleanly(t *testing.T) {
	sec := quickstart(t)
	pcap, _ := writeCapture(t, 1, time.Second)
	for _, sig := range []os.Signal{os.Interrupt, syscall.SIGTERM} {
		srvAddr := freeAddr(t)
		srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session", "--listen", srvAddr,
			"--security-dir", sec, "--metrics-listen", freeAddr(t))
		sup := start(t, "smsupervisor", "--listen", freeAddr(t), "--security-dir", sec, "--output", "null",
			"--metrics-listen", freeAddr(t))
		waitReady(t, sec, srvAddr)
		srv.stop(t, sig)
		sup.stop(t, sig)
	}
}
