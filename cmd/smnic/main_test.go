package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/nic"
	"github.com/silentmon/silentmon/internal/nic/nictest"
	"github.com/silentmon/silentmon/internal/testutil"
)

func run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cli.Run(newRootCmd(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestUsage checks bad command lines: exit 2 and one sentence on stderr
// naming the bad value. None of them needs root.
func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{}, "needs a subcommand"},
		{[]string{"listen"}, "--interface is required"},
		{[]string{"listen", "--interface", "smnic-nope0"}, `"smnic-nope0": no such network interface`},
		{[]string{"listen", "--interface", "lo", "--vlan", "4095"}, "--vlan 4095 is outside 1 to 4094"},
		{[]string{"listen", "--interface", "lo", "--vlan", "0"}, "--vlan 0"},
		{[]string{"listen", "--interface", "lo", "--count", "0"}, "--count 0 is outside"},
		{[]string{"listen", "--interface", "lo", "--timeout", "0s"}, "--timeout 0s is not positive"},
		{[]string{"listen", "--interface", "lo", "--timeout", "soon"}, `"soon"`},
		{[]string{"listen", "--interface", "lo", "--engine", "pcap"}, `--engine "pcap" is not socket or ring`},
		{[]string{"listen", "--interface", "lo", "--bogus"}, "nknown flag: --bogus"},
		{[]string{"send", "--interface", "lo", "--dst-mac", "00:d0:59:zz:f7:d9"}, `--dst-mac "00:d0:59:zz:f7:d9" is not a MAC address`},
		{[]string{"send", "--interface", "lo", "--dst-mac", "00:d0:59:d8:f7"}, `--dst-mac "00:d0:59:d8:f7"`},
		{[]string{"send", "--interface", "smnic-nope0"}, `--interface "smnic-nope0": no such network interface`},
		{[]string{"send", "--interface", "lo", "--priority", "8"}, "--priority 8 is outside 0 to 7"},
		{[]string{"send", "--interface", "lo", "--interval", "-1s"}, "--interval -1s is negative"},
		{[]string{"selftest", "--rx", "lo"}, "--tx is required"},
		{[]string{"selftest", "--tx", "smnic-nope0", "--rx", "smnic-nope1"}, `--tx "smnic-nope0": no such network interface`},
		{[]string{"selftest", "--tx", "lo", "--rx", "lo"}, "both name"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errs := run(tt.args...)
			if code != cli.ExitUsage {
				t.Errorf("exit %d, want 2; stdout %q stderr %q", code, out, errs)
			}
			if !strings.Contains(errs, tt.want) || strings.Count(strings.TrimSpace(errs), "\n") != 0 || !strings.HasPrefix(errs, "smnic: ") {
				t.Errorf("stderr %q, want one line containing %q", errs, tt.want)
			}
		})
	}
}

func TestSendPcapErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--pcap", "/nonexistent.pcap"}, `--pcap "/nonexistent.pcap" cannot be read`},
		{[]string{"--pcap", "main.go"}, "cannot be read"},
		{[]string{"--pcap", "../../testdata/vlan-sample.pcap", "--vlan", "86"}, "has no frame tagged with 802.1Q VLAN 86"},
	}
	for _, tt := range tests {
		code, _, errs := run(append([]string{"send", "--interface", "lo"}, tt.args...)...)
		if code != cli.ExitUsage || !strings.Contains(errs, tt.want) {
			t.Errorf("%v: exit %d stderr %q, want 2 and %q", tt.args, code, errs, tt.want)
		}
	}
}

func TestNotEthernet(t *testing.T) {
	testutil.NeedRoot(t)
	for _, args := range [][]string{{"listen", "--interface", "lo"}, {"send", "--interface", "lo"}} {
		code, _, errs := run(args...)
		if code != cli.ExitUsage || !strings.Contains(errs, `--interface "lo" is not an Ethernet interface`) {
			t.Errorf("%v: exit %d stderr %q", args, code, errs)
		}
	}
}

func TestSelftestCLI(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip", "ethtool")
	tests := []struct {
		name  string
		setup func(t *testing.T, p *nictest.Pair)
		code  int
		diag  string
	}{
		{"pass offload on", func(t *testing.T, p *nictest.Pair) { nictest.Ethtool(t, p.NsB, "-K", p.B, "rxvlan", "on") }, 0, nic.CodeTagOutOfBand},
		{"pass offload off", func(t *testing.T, p *nictest.Pair) { nictest.Ethtool(t, p.NsB, "-K", p.B, "rxvlan", "off") }, 0, nic.CodeTagOutOfBand},
		{"pass through the capture ring", func(t *testing.T, p *nictest.Pair) {}, 0, nic.CodeTagOutOfBand},
		{"tag popped", func(t *testing.T, p *nictest.Pair) { nictest.PopVLAN(t, p.NsA, p.A) }, 1, nic.CodeTagStripped},
		{"tag rewritten", func(t *testing.T, p *nictest.Pair) { nictest.RewriteVLAN(t, p.NsA, p.A, 86, 5) }, 1, nic.CodeWrongVLAN},
		{"sender down", func(t *testing.T, p *nictest.Pair) { testutil.Run(t, "ip", "-n", p.NsA, "link", "set", p.A, "down") }, 1, nic.CodeSendFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := nictest.NewPair(t)
			tt.setup(t, p)
			args := []string{"selftest", "--tx", p.A, "--tx-netns", p.NsA, "--rx", p.B, "--rx-netns", p.NsB, "--interval", "5ms", "--timeout", "1s"}
			if strings.Contains(tt.name, "ring") {
				args = append(args, "--engine", "ring")
			}
			code, out, errs := run(append(args, "--json")...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tt.code, out, errs)
			}
			var res nic.Result
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("JSON: %v\n%s", err, out)
			}
			if strings.Contains(tt.name, "ring") != (res.Engine == nic.EngineRing) {
				t.Errorf("engine %q", res.Engine)
			}
			if res.Diagnosis.Code != tt.diag || res.Counts.Expected != 5 {
				t.Fatalf("diagnosis %+v counts %+v, want %s", res.Diagnosis, res.Counts, tt.diag)
			}
			if (code == 0) != (errs == "") {
				t.Errorf("stderr %q with exit %d", errs, code)
			}
			if tt.code != 0 {
				return
			}
			// The text report: one line per frame, then the verdict.
			code, out, _ = run(args...)
			if code != 0 || strings.Count(out, "802.1Q vlan 85, p 5, ") != 5 || !strings.Contains(out, "\nPASS: 5 of 5 frames") {
				t.Errorf("text report (exit %d):\n%s", code, out)
			}
		})
	}
}

// lineWaiter is an io.Writer that signals when a line containing want has
// been written.
type lineWaiter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func newLineWaiter(want string) *lineWaiter {
	return &lineWaiter{want: want, seen: make(chan struct{})}
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *lineWaiter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// listenWhile runs smnic listen in p.NsB in the background, runs send (in
// p.NsA) once it listens, and returns listen's exit code and output.
func listenWhile(t *testing.T, p *nictest.Pair, listenArgs, sendArgs []string) (int, string, string) {
	t.Helper()
	outW, errW := newLineWaiter("smnic: listening on"), newLineWaiter("smnic: listening on")
	done := make(chan int)
	go func() {
		done <- cli.Run(newRootCmd(), append([]string{"listen", "--interface", p.B, "--netns", p.NsB}, listenArgs...), outW, errW)
	}()
	select {
	case <-outW.seen:
	case <-errW.seen: // with --json
	case code := <-done:
		t.Fatalf("listen exited %d before listening: %s%s", code, outW.String(), errW.String())
	}
	if sendArgs != nil {
		code, out, errs := run(append([]string{"send", "--interface", p.A, "--netns", p.NsA}, sendArgs...)...)
		if code != 0 {
			t.Fatalf("send exit %d: %s%s", code, out, errs)
		}
	}
	code := <-done
	return code, outW.String(), errW.String()
}

func TestListenSendCLI(t *testing.T) {
	testutil.NeedRoot(t)
	p := nictest.NewPair(t)

	t.Run("count reached before timeout", func(t *testing.T) {
		start := time.Now()
		code, out, errs := listenWhile(t, p, []string{"--count", "3", "--timeout", "20s"}, []string{"--count", "3", "--interval", "1ms"})
		if code != 0 || strings.Count(out, "802.1Q vlan 85, p 5, ") != 3 || !strings.Contains(out, "PASS: 3 of 3") {
			t.Fatalf("exit %d:\n%s%s", code, out, errs)
		}
		if el := time.Since(start); el > 10*time.Second {
			t.Errorf("listen took %v: it did not stop at --count", el)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		start := time.Now()
		code, out, _ := listenWhile(t, p, []string{"--timeout", "400ms"}, nil)
		el := time.Since(start)
		if code != 1 || !strings.Contains(out, "FAIL: nothing of the test arrived") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if el < 400*time.Millisecond || el > 4*time.Second {
			t.Errorf("listen with --timeout 400ms took %v", el)
		}
	})
	t.Run("wrong VLAN", func(t *testing.T) {
		code, out, _ := listenWhile(t, p, []string{"--timeout", "1s", "--json"}, []string{"--vlan", "86", "--interval", "1ms"})
		var res nic.Result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("JSON: %v\n%s", err, out)
		}
		if code != 1 || res.Diagnosis.Code != nic.CodeWrongVLAN || res.Counts.WrongVLAN != 5 {
			t.Fatalf("exit %d, diagnosis %+v counts %+v", code, res.Diagnosis, res.Counts)
		}
	})
	t.Run("sample capture retargeted", func(t *testing.T) {
		mac := "00:d0:59:d8:f7:d9"
		code, out, errs := listenWhile(t, p, []string{"--count", "10", "--timeout", "10s", "--json"},
			[]string{"--pcap", "../../testdata/vlan-sample.pcap", "--count", "10", "--dst-mac", mac, "--interval", "1ms"})
		var res nic.Result
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("JSON: %v\n%s%s", err, out, errs)
		}
		if code != 0 || res.Counts.Tagged != 10 || len(res.Frames) != 10 {
			t.Fatalf("exit %d counts %+v", code, res.Counts)
		}
		for _, f := range res.Frames {
			if f.DstMAC != mac || f.Test || f.Priority != 5 || (f.SrcAddr.Port() != 20000 && f.SrcAddr.Port() != 30000) {
				t.Errorf("frame %+v: want the sample's frames sent to %s", f, mac)
			}
		}
	})
	t.Run("no carrier", func(t *testing.T) {
		testutil.Run(t, "ip", "-n", p.NsA, "link", "set", p.A, "down")
		p.WaitOperState(t, p.NsB, p.B, "down")
		code, out, _ := listenWhile(t, p, []string{"--timeout", "300ms"}, nil)
		if code != 1 || !strings.Contains(out, "FAIL: nothing arrived on "+p.B+": the link is down (no carrier)") {
			t.Fatalf("exit %d:\n%s", code, out)
		}
	})
}

// TestVersion: smnic --version prints the program and its build, exit 0
// (every program gets --version from cli.Run).
func TestVersion(t *testing.T) {
	code, out, errs := run("--version")
	if code != 0 || !strings.HasPrefix(out, "smnic ") || !strings.Contains(out, "(commit ") || errs != "" {
		t.Fatalf("smnic --version: exit %d, %q %q", code, out, errs)
	}
}
