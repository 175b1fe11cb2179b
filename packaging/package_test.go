package packaging

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// packages are the three packages, in install order.
var packages = []string{"silentmon-common", "silentmon-server", "silentmon-supervisor"}

// repoRoot is the module's top directory (this package is packaging/).
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// buildPrograms builds the four programs as make build does (smserver and
// smnic static, smctl and smsupervisor with cgo), without the race
// detector, into dir.
func buildPrograms(t *testing.T, dir string, programs ...string) {
	t.Helper()
	static := map[string]bool{"smserver": true, "smnic": true}
	for _, p := range programs {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, p), "./cmd/"+p)
		cmd.Dir = repoRoot(t)
		cmd.Env = os.Environ()
		if static[p] {
			cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build ./cmd/%s: %v\n%s", p, err, out)
		}
	}
}

// TestProgramDocs: a real program, smctl, writes a manual page for itself
// and each subcommand (smctl monitor start's names its --supervisor flag)
// and its completions when run with the hidden __generate-docs argument.
func TestProgramDocs(t *testing.T) {
	bin := t.TempDir()
	buildPrograms(t, bin, "smctl")
	out := t.TempDir()
	if b, err := exec.Command(filepath.Join(bin, "smctl"), "__generate-docs", out).CombinedOutput(); err != nil {
		t.Fatalf("smctl __generate-docs: %v: %s", err, b)
	}
	for _, page := range []string{"smctl.1", "smctl-monitor.1", "smctl-status.1", "smctl-certs-quickstart.1"} {
		if _, err := os.Stat(filepath.Join(out, "man/man1", page)); err != nil {
			t.Errorf("no manual page %s: %v", page, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(out, "man/man1/smctl-monitor-start.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("--supervisor")) || !bytes.Contains(b, []byte(`"silentmon `)) {
		t.Errorf("smctl-monitor-start.1 does not name --supervisor or its source silentmon:\n%s", b)
	}
	for _, c := range []string{"completion/bash/smctl", "completion/zsh/_smctl", "completion/fish/smctl.fish"} {
		if fi, err := os.Stat(filepath.Join(out, c)); err != nil || fi.Size() == 0 {
			t.Errorf("no completion %s: %v", c, err)
		}
	}
}

// TestPackages builds the three Debian packages with mkpkg, installs them
// on this machine with dpkg, checks their files, owners and modes, the
// silentmon user, the man pages and the units (systemd-analyze verify),
// runs the installed smserver as the silentmon user with only
// CAP_NET_RAW and CAP_NET_ADMIN, capturing on a veth in a network
// namespace of its own, and without them, then purges the packages and
// checks that the user and the directories are gone. The machine is left
// as it was, even when the test fails.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("installs packages on this machine; not run with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("installing the packages with dpkg needs root")
	}
	for _, tool := range []string{"dpkg", "dpkg-query", "dpkg-statoverride"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (not a Debian system): the packages cannot be installed", tool)
		}
	}
	unlock := lockMachine(t)
	defer unlock()
	for _, p := range packages {
		if installed(p) {
			t.Skipf("%s is already installed on this machine; this test would replace and purge it", p)
		}
	}
	if _, err := user.Lookup("silentmon"); err == nil {
		t.Skip("a silentmon user already exists on this machine; this test would delete it on purge")
	}

	work := t.TempDir()
	bin, out := filepath.Join(work, "bin"), filepath.Join(work, "out")
	start := time.Now()
	buildPrograms(t, bin, "smserver", "smnic", "smctl", "smsupervisor")
	mkpkg := exec.Command("go", "run", "./packaging/mkpkg", "-bin", bin, "-out", out)
	mkpkg.Dir = repoRoot(t)
	if err := exec.Command("git", "-C", repoRoot(t), "rev-parse", "HEAD").Run(); err != nil {
		mkpkg.Args = append(mkpkg.Args, "-version", "0~test") // not a git checkout
	}
	b, err := mkpkg.Output()
	if err != nil {
		t.Fatalf("mkpkg: %v\n%s", err, stderrOf(err))
	}
	debs := strings.Fields(string(b))
	if len(debs) != len(packages) {
		t.Fatalf("mkpkg wrote %q, want the %d packages", debs, len(packages))
	}
	for i, d := range debs {
		if !strings.HasPrefix(filepath.Base(d), packages[i]+"_") {
			t.Fatalf("mkpkg wrote %s, want %s first", d, packages[i])
		}
		if !filepath.IsAbs(d) {
			debs[i] = filepath.Join(repoRoot(t), d)
		}
		fi, _ := os.Stat(debs[i])
		t.Logf("%s: %d bytes", filepath.Base(d), fi.Size())
	}
	t.Logf("built the programs and packages in %v", time.Since(start).Round(time.Millisecond))

	// Whatever happens next, the packages, their user and directories go.
	t.Cleanup(func() { purge(t) })
	dpkg(t, append([]string{"-i"}, debs...)...)

	t.Run("files", func(t *testing.T) { checkFiles(t) })
	t.Run("reinstall", func(t *testing.T) { checkReinstall(t, debs) })
	t.Run("user", func(t *testing.T) { checkUser(t) })
	t.Run("man", func(t *testing.T) { checkMan(t) })
	t.Run("units", func(t *testing.T) { checkUnits(t) })
	t.Run("services", func(t *testing.T) { checkServices(t) })

	purge(t)
	t.Run("purged", func(t *testing.T) { checkPurged(t) })
	t.Logf("the whole test took %v", time.Since(start).Round(time.Millisecond))
}

// lockMachine serialises this test between test processes on one machine
// (dpkg allows one installer at a time, and the packages are the
// machine's).
func lockMachine(t *testing.T) func() {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "silentmon-packaging-test.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	return func() { f.Close() }
}

func installed(pkg string) bool {
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.Contains(string(out), "installed") && !strings.Contains(string(out), "not-installed")
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// dpkg runs dpkg with args, waiting for another installer (apt-get,
// dpkg) that holds dpkg's lock to finish.
func dpkg(t *testing.T, args ...string) string {
	t.Helper()
	for try := 0; ; try++ {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil {
			return string(out)
		}
		if try < 60 && bytes.Contains(out, []byte("lock")) {
			time.Sleep(2 * time.Second)
			continue
		}
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// purge removes the three packages with their configuration, if
// installed, and the statoverrides, user and directories should the
// common package's postrm not have run.
func purge(t *testing.T) {
	t.Helper()
	var present []string
	for i := len(packages) - 1; i >= 0; i-- {
		if installed(packages[i]) || configFilesLeft(packages[i]) {
			present = append(present, packages[i])
		}
	}
	if len(present) > 0 {
		dpkg(t, append([]string{"--purge"}, present...)...)
	}
}

func configFilesLeft(pkg string) bool {
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return strings.Contains(string(out), "config-files") || strings.Contains(string(out), "half")
}

type want struct {
	path        string
	dir         bool
	mode        fs.FileMode
	owner, grp  string
	nonEmptyReg bool
}

func checkFiles(t *testing.T) {
	wants := []want{
		{path: "/usr/bin/smctl", mode: 0o755, owner: "root", grp: "root", nonEmptyReg: true},
		{path: "/usr/bin/smserver", mode: 0o755, owner: "root", grp: "root", nonEmptyReg: true},
		{path: "/usr/bin/smnic", mode: 0o755, owner: "root", grp: "root", nonEmptyReg: true},
		{path: "/usr/bin/smsupervisor", mode: 0o755, owner: "root", grp: "root", nonEmptyReg: true},
		{path: "/etc/silentmon/silentmon.yaml", mode: 0o640, owner: "root", grp: "silentmon", nonEmptyReg: true},
		{path: "/etc/silentmon/security", dir: true, mode: 0o750, owner: "root", grp: "silentmon"},
		{path: "/var/lib/silentmon", dir: true, mode: 0o750, owner: "silentmon", grp: "silentmon"},
		{path: "/var/lib/silentmon/recordings", dir: true, mode: 0o750, owner: "silentmon", grp: "silentmon"},
		{path: "/var/log/silentmon", dir: true, mode: 0o750, owner: "silentmon", grp: "silentmon"},
		{path: "/usr/share/doc/silentmon-common/README.Debian", mode: 0o644, owner: "root", grp: "root", nonEmptyReg: true},
		{path: "/lib/systemd/system/smserver.service", mode: 0o644, owner: "root", grp: "root", nonEmptyReg: true},
		{path: "/lib/systemd/system/smsupervisor.service", mode: 0o644, owner: "root", grp: "root", nonEmptyReg: true},
	}
	for _, p := range []string{"smctl", "smserver", "smnic", "smsupervisor"} {
		wants = append(wants,
			want{path: "/usr/share/bash-completion/completions/" + p, mode: 0o644, owner: "root", grp: "root", nonEmptyReg: true},
			want{path: "/usr/share/zsh/vendor-completions/_" + p, mode: 0o644, owner: "root", grp: "root", nonEmptyReg: true},
			want{path: "/usr/share/fish/vendor_completions.d/" + p + ".fish", mode: 0o644, owner: "root", grp: "root", nonEmptyReg: true},
			want{path: "/usr/share/man/man1/" + p + ".1.gz", mode: 0o644, owner: "root", grp: "root", nonEmptyReg: true},
		)
	}
	for _, w := range wants {
		fi, err := os.Lstat(w.path)
		if err != nil {
			t.Errorf("%s is missing: %v", w.path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		owner, grp := userName(st.Uid), groupName(st.Gid)
		if fi.IsDir() != w.dir || fi.Mode().Perm() != w.mode || owner != w.owner || grp != w.grp {
			t.Errorf("%s: dir %v mode %04o %s:%s, want dir %v mode %04o %s:%s",
				w.path, fi.IsDir(), fi.Mode().Perm(), owner, grp, w.dir, w.mode, w.owner, w.grp)
		}
		if w.nonEmptyReg && (!fi.Mode().IsRegular() || fi.Size() == 0) {
			t.Errorf("%s is not a non-empty regular file", w.path)
		}
	}
	conf, _ := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", "silentmon-common").Output()
	if !strings.Contains(string(conf), "/etc/silentmon/silentmon.yaml ") {
		t.Errorf("/etc/silentmon/silentmon.yaml is not a conffile of silentmon-common (conffiles: %q)", conf)
	}
	// smctl is in silentmon-common only, so that both services' packages
	// install on one host.
	if out, _ := exec.Command("dpkg-query", "-S", "/usr/bin/smctl").Output(); strings.TrimSpace(string(out)) != "silentmon-common: /usr/bin/smctl" {
		t.Errorf("dpkg -S /usr/bin/smctl = %q, want silentmon-common only", out)
	}
}

// checkReinstall: installing the packages again (as an upgrade does)
// keeps an edited configuration file and the owners and modes.
func checkReinstall(t *testing.T, debs []string) {
	const conf = "/etc/silentmon/silentmon.yaml"
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	const edit = "# edited by the operator\n"
	f.WriteString(edit)
	f.Close()
	dpkg(t, append([]string{"--force-confold", "-i"}, debs...)...)
	b, _ := os.ReadFile(conf)
	if !strings.HasSuffix(string(b), edit) {
		t.Errorf("the reinstall replaced the edited %s", conf)
	}
	checkFiles(t)
}

func userName(uid uint32) string {
	if u, err := user.LookupId(strconv.Itoa(int(uid))); err == nil {
		return u.Username
	}
	return strconv.Itoa(int(uid))
}

func groupName(gid uint32) string {
	if g, err := user.LookupGroupId(strconv.Itoa(int(gid))); err == nil {
		return g.Name
	}
	return strconv.Itoa(int(gid))
}

func checkUser(t *testing.T) {
	out, err := exec.Command("getent", "passwd", "silentmon").Output()
	if err != nil {
		t.Fatalf("no silentmon user: %v", err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), ":")
	if len(f) != 7 {
		t.Fatalf("getent passwd silentmon = %q", out)
	}
	uid, _ := strconv.Atoi(f[2])
	if uid == 0 || uid >= 1000 {
		t.Errorf("silentmon has uid %d, want a system user (1-999)", uid)
	}
	if f[5] != "/var/lib/silentmon" {
		t.Errorf("silentmon's home is %s, want /var/lib/silentmon", f[5])
	}
	if f[6] != "/usr/sbin/nologin" && f[6] != "/bin/false" {
		t.Errorf("silentmon's shell is %s, want no login shell", f[6])
	}
	if g, err := user.LookupGroupId(f[3]); err != nil || g.Name != "silentmon" {
		t.Errorf("silentmon's primary group is %s, want silentmon", f[3])
	}
}

func checkMan(t *testing.T) {
	pages := map[string]string{
		"smserver":            "--interface",
		"smsupervisor":        "--output",
		"smnic-selftest":      "--tx",
		"smctl-monitor-start": "--supervisor",
	}
	for page, flag := range pages {
		path := "/usr/share/man/man1/" + page + ".1.gz"
		if _, err := exec.LookPath("man"); err == nil {
			out, err := exec.Command("man", "-w", page).Output()
			if err != nil || strings.TrimSpace(string(out)) != path {
				t.Errorf("man -w %s = %q, %v; want %s", page, out, err, path)
			}
		}
		f, err := os.Open(path)
		if err != nil {
			t.Errorf("no manual page %s: %v", path, err)
			continue
		}
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			t.Errorf("%s is not gzipped: %v", path, err)
			continue
		}
		b, _ := io.ReadAll(zr)
		f.Close()
		if !bytes.Contains(b, []byte(".TH ")) || !bytes.Contains(b, []byte(flag)) {
			t.Errorf("%s is not a manual page naming %s:\n%.400s", path, flag, b)
		}
	}
}

func checkUnits(t *testing.T) {
	lines := func(path string) map[string]bool {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			m[strings.TrimSpace(l)] = true
		}
		return m
	}
	common := []string{
		"User=silentmon", "Group=silentmon", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure",
		"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/silentmon /var/log/silentmon",
		"ProtectHome=yes", "PrivateTmp=yes", "SystemCallFilter=@system-service", "SystemCallArchitectures=native",
		"ProtectKernelTunables=yes", "ProtectKernelModules=yes", "ProtectControlGroups=yes", "LockPersonality=yes",
		"MemoryDenyWriteExecute=yes", "RestrictNamespaces=yes", "RestrictRealtime=yes", "RestrictSUIDSGID=yes",
		"UMask=0077", "WantedBy=multi-user.target",
	}
	server := lines("/lib/systemd/system/smserver.service")
	for _, l := range append([]string{
		"ExecStart=/usr/bin/smserver --config /etc/silentmon/silentmon.yaml",
		"AmbientCapabilities=CAP_NET_RAW CAP_NET_ADMIN", "CapabilityBoundingSet=CAP_NET_RAW CAP_NET_ADMIN",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_PACKET AF_NETLINK",
	}, common...) {
		if !server[l] {
			t.Errorf("smserver.service lacks %q", l)
		}
	}
	supervisor := lines("/lib/systemd/system/smsupervisor.service")
	for _, l := range append([]string{
		"ExecStart=/usr/bin/smsupervisor --config /etc/silentmon/silentmon.yaml",
		"AmbientCapabilities=", "CapabilityBoundingSet=", "SupplementaryGroups=audio",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	}, common...) {
		if !supervisor[l] {
			t.Errorf("smsupervisor.service lacks %q", l)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Log("systemd-analyze is not installed: the units are not verified")
		return
	}
	// verify loads the units as systemd would (it needs no running
	// systemd): unknown settings, bad values, missing programs and
	// Documentation= pages are reported.
	out, err := exec.Command("systemd-analyze", "verify",
		"/lib/systemd/system/smserver.service", "/lib/systemd/system/smsupervisor.service").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// netns is a network namespace with a veth pair: frames sent from peer
// arrive on capture.
type netns struct {
	name, capture, peer string
}

func newNetns(t *testing.T) netns {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) is not installed: no network namespace for the capture")
	}
	r := make([]byte, 4)
	rand.Read(r)
	n := netns{name: "smpkg-" + hex.EncodeToString(r), capture: "smcap0", peer: "smpeer0"}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", n.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	run("-n", n.name, "link", "set", "lo", "up")
	run("-n", n.name, "link", "add", n.capture, "type", "veth", "peer", "name", n.peer)
	run("-n", n.name, "link", "set", n.capture, "up")
	run("-n", n.name, "link", "set", n.peer, "up")
	run("-n", n.name, "addr", "add", "10.99.0.1/24", "dev", n.peer)
	// A permanent neighbour, so that datagrams to 10.99.0.2 leave the peer
	// end without waiting for ARP that nobody answers.
	out, err := exec.Command("ip", "-n", n.name, "-br", "link", "show", n.capture).Output()
	if err != nil || len(strings.Fields(string(out))) < 3 {
		t.Fatalf("ip link show %s: %v %q", n.capture, err, out)
	}
	run("-n", n.name, "neigh", "replace", "10.99.0.2", "lladdr", strings.Fields(string(out))[2], "dev", n.peer, "nud", "permanent")
	return n
}

func (n netns) exec(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.name}, args...)...)
}

// asSilentmon is setpriv as the silentmon user with the given capabilities
// (empty: none) inherited, ambient and in the bounding set, and nothing
// else.
func asSilentmon(caps string) []string {
	args := []string{"setpriv", "--reuid", "silentmon", "--regid", "silentmon", "--init-groups"}
	if caps == "" {
		return append(args, "--inh-caps", "-all", "--bounding-set", "-all")
	}
	plus := "+" + strings.ReplaceAll(caps, ",", ",+")
	return append(args, "--inh-caps", plus, "--ambient-caps", plus, "--bounding-set", "-all,"+plus)
}

var framesRead = regexp.MustCompile(`frames read ([0-9]+)`)

// running is a program started by startUntil.
type running struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer // the exit summary
	log    bytes.Buffer // stderr; read it only after stop or a failed start
	copied chan struct{}
}

// startUntil starts cmd and waits until its log (stderr) has a line
// holding marker. It reports false, with the program ended, when the
// program exits first.
func startUntil(t *testing.T, cmd *exec.Cmd, marker string) (*running, bool) {
	t.Helper()
	r := &running{cmd: cmd, copied: make(chan struct{})}
	cmd.Stdout = &r.stdout
	// A group of its own, so that a signal reaches the program under
	// ip netns exec, setpriv and strace alike.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := make(chan bool, 1)
	go func() {
		defer close(r.copied)
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			r.log.WriteString(sc.Text() + "\n")
			if !seen && strings.Contains(sc.Text(), marker) {
				seen = true
				started <- true
			}
		}
		if !seen {
			started <- false
		}
	}()
	if !<-started {
		cmd.Wait()
		<-r.copied
		return r, false
	}
	return r, true
}

// stop sends SIGTERM and waits for the program and its log.
func (r *running) stop() error {
	syscall.Kill(-r.cmd.Process.Pid, syscall.SIGTERM)
	err := r.cmd.Wait()
	<-r.copied
	return err
}

// checkServices runs the installed programs as the silentmon user, with
// the packaged configuration, in a network namespace of their own.
func checkServices(t *testing.T) {
	for _, tool := range []string{"setpriv", "curl", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed: the installed programs are not run", tool)
		}
	}
	// A working security directory the service user can read.
	if out, err := exec.Command("/usr/bin/smctl", "certs", "quickstart", "--dir", "/etc/silentmon/security").CombinedOutput(); err != nil {
		t.Fatalf("smctl certs quickstart: %v\n%s", err, out)
	}
	pems, _ := filepath.Glob("/etc/silentmon/security/Ctios*.pem")
	for _, p := range pems {
		if err := os.Chown(p, uidOf(t, "silentmon"), gidOf(t, "silentmon")); err != nil {
			t.Fatal(err)
		}
	}
	ns := newNetns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	t.Run("smserver", func(t *testing.T) { checkCapture(ctx, t, ns) })
	t.Run("smserver-without-capabilities", func(t *testing.T) { checkNoCapabilities(ctx, t, ns) })
	t.Run("smsupervisor", func(t *testing.T) { checkSupervisor(ctx, t, ns) })
}

// checkCapture: smserver, as silentmon with only CAP_NET_RAW and
// CAP_NET_ADMIN, captures the frames sent into the veth.
func checkCapture(ctx context.Context, t *testing.T, ns netns) {
	smserver := append(asSilentmon("net_raw,net_admin"), "/usr/bin/smserver",
		"--config", "/etc/silentmon/silentmon.yaml", "--interface", ns.capture,
		"--listen", "127.0.0.1:42228", "--cluster=false")
	cmd := ns.exec(ctx, smserver...)
	trace := traced(t, cmd)
	r, ok := startUntil(t, cmd, "smserver started")
	if !ok {
		t.Fatalf("the installed smserver did not start as silentmon with CAP_NET_RAW and CAP_NET_ADMIN:\n%s", r.log.String())
	}
	// Send datagrams into the peer end until smserver's metrics (on the
	// namespace's loopback, from the packaged configuration) count them.
	const sent = 20
	send := fmt.Sprintf("for i in $(seq 1 %d); do echo frame > /dev/udp/10.99.0.2/40000; done", sent)
	if out, err := ns.exec(ctx, "bash", "-c", send).CombinedOutput(); err != nil {
		r.stop()
		t.Fatalf("sending into %s: %v\n%s", ns.peer, err, out)
	}
	frames := 0
	for ctx.Err() == nil {
		out, _ := ns.exec(ctx, "curl", "-s", "http://127.0.0.1:9228/metrics").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(l, "silentmon_capture_frames_total "); ok {
				frames, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if frames >= sent {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	werr := r.stop()
	if frames < sent {
		t.Fatalf("silentmon_capture_frames_total = %d after %d datagrams into %s:\n%s", frames, sent, ns.peer, r.log.String())
	}
	if werr != nil {
		t.Errorf("smserver exited with %v after SIGTERM:\n%s", werr, r.log.String())
	}
	if m := framesRead.FindStringSubmatch(r.stdout.String()); m == nil || atoi(m[1]) < sent {
		t.Errorf("smserver's exit summary does not say it read %d frames:\n%s", sent, r.stdout.String())
	}
	checkSandbox(t, trace, "/usr/bin/smserver")
}

// checkNoCapabilities: without the capabilities, capturing fails with a
// sentence naming them.
func checkNoCapabilities(ctx context.Context, t *testing.T, ns netns) {
	noCaps := append(asSilentmon(""), "/usr/bin/smserver",
		"--config", "/etc/silentmon/silentmon.yaml", "--interface", ns.capture,
		"--listen", "127.0.0.1:42228", "--cluster=false")
	out, err := ns.exec(ctx, noCaps...).CombinedOutput()
	if err == nil {
		t.Fatalf("smserver without capabilities exited 0:\n%s", out)
	}
	if !bytes.Contains(out, []byte("CAP_NET_RAW")) {
		t.Errorf("smserver without capabilities does not name CAP_NET_RAW:\n%s", out)
	}
}

// checkSupervisor: smsupervisor, as silentmon without capabilities,
// starts with the packaged configuration (WAV output under
// /var/lib/silentmon/recordings, the console's token in /var/lib/silentmon)
// and answers on its metrics address.
func checkSupervisor(ctx context.Context, t *testing.T, ns netns) {
	smsupervisor := append(asSilentmon(""), "/usr/bin/smsupervisor", "--config", "/etc/silentmon/silentmon.yaml")
	cmd := ns.exec(ctx, smsupervisor...)
	trace := traced(t, cmd)
	r, ok := startUntil(t, cmd, "smsupervisor started")
	if !ok {
		t.Fatalf("the installed smsupervisor did not start as silentmon with the packaged configuration:\n%s", r.log.String())
	}
	out, err := ns.exec(ctx, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:9229/healthz").Output()
	werr := r.stop()
	if err != nil || string(out) != "200" {
		t.Errorf("smsupervisor's /healthz on 127.0.0.1:9229 answered %q, %v:\n%s", out, err, r.log.String())
	}
	if werr != nil {
		t.Errorf("smsupervisor exited with %v after SIGTERM:\n%s", werr, r.log.String())
	}
	checkSandbox(t, trace, "/usr/bin/smsupervisor")
	if !strings.Contains(r.log.String(), "wav:/var/lib/silentmon/recordings/") {
		t.Errorf("smsupervisor's output is not the packaged WAV path:\n%s", r.log.String())
	}
	fi, err := os.Stat("/var/lib/silentmon/console.token")
	if err != nil {
		t.Fatalf("the console's token was not written to /var/lib/silentmon/console.token: %v\n%s", err, r.log.String())
	}
	if st := fi.Sys().(*syscall.Stat_t); userName(st.Uid) != "silentmon" || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("console.token: mode %04o owner %s, want silentmon's only", fi.Mode().Perm(), userName(st.Uid))
	}
}

// traced runs cmd (ip netns exec NS PROGRAM...) under strace when it is
// installed, writing the system calls to a file it returns ("" without
// strace).
func traced(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		t.Log("strace is not installed: the units' system call filter and MemoryDenyWriteExecute are not checked against the program")
		return ""
	}
	file := filepath.Join(t.TempDir(), "strace.txt")
	// ip netns exec NAME, then strace in front of the program.
	args := append([]string{}, cmd.Args[:4]...)
	args = append(args, "strace", "-f", "-qq", "-o", file)
	cmd.Args = append(args, cmd.Args[4:]...)
	return file
}

var (
	syscallName = regexp.MustCompile(`^[0-9]+ +([a-z_0-9]+)\((.*)`)
	writeExec   = regexp.MustCompile(`PROT_WRITE\|PROT_EXEC|PROT_EXEC\|PROT_WRITE|PROT_READ\|PROT_WRITE\|PROT_EXEC`)
)

// checkSandbox reads the strace of a run and checks that program, from
// its execve on, made only system calls the units allow
// (SystemCallFilter=@system-service minus @privileged) and made no memory
// both writable and executable nor made memory executable later
// (MemoryDenyWriteExecute=yes), as a systemd service would require.
func checkSandbox(t *testing.T, file, program string) {
	t.Helper()
	if file == "" {
		return
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("no strace output: %v", err)
	}
	allowed := syscallGroup(t, "@system-service", map[string]map[string]bool{})
	for name := range syscallGroup(t, "@privileged", map[string]map[string]bool{}) {
		delete(allowed, name)
	}
	execed := false
	denied := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		m := syscallName.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		if !execed {
			execed = m[1] == "execve" && strings.HasPrefix(m[2], strconv.Quote(program))
			continue
		}
		if !allowed[m[1]] {
			denied[m[1]] = l
		}
		switch m[1] {
		case "mmap", "mprotect", "pkey_mprotect":
			if writeExec.MatchString(l) || (m[1] != "mmap" && strings.Contains(l, "PROT_EXEC")) {
				t.Errorf("%s breaks MemoryDenyWriteExecute: %s", program, l)
			}
		}
	}
	if !execed {
		t.Fatalf("the strace does not show %s starting", program)
	}
	for name, l := range denied {
		t.Errorf("%s calls %s, which SystemCallFilter=@system-service ~@privileged denies: %s", program, name, l)
	}
}

// syscallGroup expands a systemd system call group with systemd-analyze.
func syscallGroup(t *testing.T, group string, seen map[string]map[string]bool) map[string]bool {
	t.Helper()
	if g, ok := seen[group]; ok {
		return g
	}
	out, err := exec.Command("systemd-analyze", "syscall-filter", group).Output()
	if err != nil {
		t.Fatalf("systemd-analyze syscall-filter %s: %v", group, err)
	}
	g := map[string]bool{}
	seen[group] = g
	lines := strings.Split(string(out), "\n")
	for _, l := range lines[1:] {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "@"):
			for name := range syscallGroup(t, l, seen) {
				g[name] = true
			}
		default:
			g[l] = true
		}
	}
	return g
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func uidOf(t *testing.T, name string) int {
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return atoi(u.Uid)
}

func gidOf(t *testing.T, name string) int {
	g, err := user.LookupGroup(name)
	if err != nil {
		t.Fatal(err)
	}
	return atoi(g.Gid)
}

func checkPurged(t *testing.T) {
	for _, p := range packages {
		if installed(p) || configFilesLeft(p) {
			t.Errorf("%s is still known to dpkg after --purge", p)
		}
	}
	if _, err := user.Lookup("silentmon"); err == nil {
		t.Error("the silentmon user is still there after the purge")
	}
	if _, err := user.LookupGroup("silentmon"); err == nil {
		t.Error("the silentmon group is still there after the purge")
	}
	for _, p := range []string{"/etc/silentmon", "/var/lib/silentmon", "/var/log/silentmon", "/usr/bin/smserver",
		"/usr/bin/smctl", "/lib/systemd/system/smserver.service", "/usr/share/man/man1/smserver.1.gz"} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s is still there after the purge", p)
		}
	}
	if out, _ := exec.Command("dpkg-statoverride", "--list").Output(); bytes.Contains(out, []byte("silentmon")) {
		t.Errorf("dpkg-statoverride still lists silentmon's paths:\n%s", out)
	}
}
