package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/internal/testutil"
	smtls "github.com/silentmon/silentmon/tls"
)

// lastLine returns the last line of stderr and fails t unless every line
// before it is a log record (time=...): the error is one sentence, with
// no library noise around it.
func lastLine(t *testing.T, stderr string) string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "time=") {
			t.Errorf("stderr holds a line that is neither a log record nor the error: %q\n%s", l, stderr)
		}
	}
	return lines[len(lines)-1]
}

// TestFirstRunServices: smserver and smsupervisor started as a new
// operator would, without a capture source, without a security directory
// or with one that lacks the server's file, each end with one sentence
// that says what to do, and exit 2. (Before: "Smserver needs
// --interface" and "Security file ... does not exist.", which named no
// way forward.)
func TestFirstRunServices(t *testing.T) {
	pcap, _ := writeCapture(t, 1, 0)
	missing := filepath.Join(t.TempDir(), "nowhere", "security")
	noServer := filepath.Join(t.TempDir(), "security")
	if err := smtls.Quickstart(noServer, smtls.QuickstartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(noServer, smtls.ServerFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(noServer, "ca")); err != nil {
		t.Fatal(err)
	}
	serverArgs := []string{"--pcap", pcap, "--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}
	supArgs := []string{"--output", "null", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--console-listen", "off"}
	noDir := "Security directory " + missing + " does not exist: create a working set with `smctl certs quickstart --dir " + missing + "`, or give --security-dir DIR (or --insecure, for a lab only)."
	noFile := "Security file " + filepath.Join(noServer, smtls.ServerFile) + " (this server's certificate and key) does not exist: make it with `smctl certs quickstart --dir " + noServer +
		" --role capture` (or --role supervisor; add --ca-dir CADIR to sign with an existing CA), or with `smctl certs request`, `smctl certs sign` and `smctl certs bundle`."
	for _, tc := range []struct {
		name, prog string
		args       []string
		want       string
	}{
		{"smserver without a source", "smserver", nil,
			"smserver: No capture source: give --interface IF (the SPAN port) or --pcap FILE (a capture to replay)."},
		{"smserver without a security directory", "smserver", append([]string{"--security-dir", missing}, serverArgs...), "smserver: " + noDir},
		{"smserver without CtiosServer.pem", "smserver", append([]string{"--security-dir", noServer}, serverArgs...), "smserver: " + noFile},
		{"smsupervisor without a security directory", "smsupervisor", append([]string{"--security-dir", missing}, supArgs...), "smsupervisor: " + noDir},
		{"smsupervisor without CtiosServer.pem", "smsupervisor", append([]string{"--security-dir", noServer}, supArgs...), "smsupervisor: " + noFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, se, code := runCmd(t, nil, tc.prog, tc.args...)
			if got := lastLine(t, se); code != 2 || got != tc.want {
				t.Fatalf("exit %d, last line\n%q\nwant exit 2 and\n%q", code, got, tc.want)
			}
		})
	}
}

// TestFirstRunNoSoundCard: smsupervisor with its default output
// (portaudio) on a host whose ALSA configuration defines no device prints
// none of ALSA's or JACK's complaints (about 90 lines before) and no
// crash (PortAudio's enumeration aborts on such a configuration), but one
// sentence that suggests the file and null outputs, and exits 2.
func TestFirstRunNoSoundCard(t *testing.T) {
	if out, _ := exec.Command(bin(t, "smsupervisor"), "--version").CombinedOutput(); !bytes.Contains(out, []byte("PortAudio built in")) {
		t.Skipf("skipping: this smsupervisor is built without PortAudio (%s)", bytes.TrimSpace(out))
	}
	if _, err := os.Stat("/proc/asound/cards"); err == nil {
		if b, _ := os.ReadFile("/proc/asound/cards"); !bytes.Contains(b, []byte("no soundcards")) {
			t.Skip("skipping: this host has a sound card, which ALSA finds whatever its configuration")
		}
	}
	sec := quickstart(t)
	empty := filepath.Join(t.TempDir(), "asound.conf")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, conf := range []string{empty, filepath.Join(t.TempDir(), "missing.conf")} {
		t.Run(filepath.Base(conf), func(t *testing.T) {
			_, se, code := runCmd(t, []string{"ALSA_CONFIG_PATH=" + conf}, "smsupervisor", "--security-dir", sec,
				"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--console-listen", "off")
			const head = `smsupervisor: No sound device could be opened for output "portaudio" (`
			const tail = "): play into files with --output wav:PATH, or --output null."
			got := lastLine(t, se)
			if code != 2 || !strings.HasPrefix(got, head) || !strings.HasSuffix(got, tail) || strings.Count(se, "\n") != 1 {
				t.Fatalf("exit %d, stderr\n%s\nwant exit 2 and one line %q...%q", code, se, head, tail)
			}
		})
	}
}

// TestFirstRunWithoutCapabilities: smserver capturing on a veth (in a
// namespace the test makes) without CAP_NET_RAW and CAP_NET_ADMIN (setpriv
// drops them) names the capabilities and how to grant them, and exits 2.
// (Before: "operation not permitted", exit 1.)
func TestFirstRunWithoutCapabilities(t *testing.T) {
	testutil.NeedRoot(t)
	setpriv := testutil.NeedTool(t, "setpriv", "ip")
	v := testutil.NewVethPair(t, "fr")
	smserver := bin(t, "smserver")
	cmd := exec.Command("ip", "netns", "exec", v.NsRx, setpriv, "--bounding-set=-net_raw,-net_admin",
		"--inh-caps=-net_raw,-net_admin", smserver, "--interface", v.IfRx, "--insecure",
		"--listen", "127.0.0.1:0", "--cluster-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	var se bytes.Buffer
	cmd.Stderr, cmd.Env = &se, cleanEnv()
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	want := "smserver: Capturing on " + v.IfRx + " needs the CAP_NET_RAW and CAP_NET_ADMIN capabilities, which this process lacks: run as root, or grant them " +
		"(the silentmon-server package's unit does, with AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN; or run setcap cap_net_raw,cap_net_admin+ep " + smserver + ")."
	if got := lastLine(t, se.String()); code != 2 || got != want {
		t.Fatalf("exit %d, last line\n%q\nwant exit 2 and\n%q", code, got, want)
	}
}
