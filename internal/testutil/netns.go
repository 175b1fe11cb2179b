package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// VethPair is a veth pair between two network namespaces created for one
// test: frames written on IfTx (in NsTx) arrive on IfRx (in NsRx). Both
// links and the namespaces' loopbacks are up; IPv6 is off, so router
// solicitations do not add noise. t.Cleanup removes the namespaces, even
// when the test fails.
type VethPair struct {
	NsTx, NsRx string // namespace names
	IfTx, IfRx string // interface names
}

// NewVethPair creates a VethPair whose names start with prefix (at most 4
// characters, so interface names stay within 15) and a random suffix.
// The test must run as root (NeedRoot).
func NewVethPair(t testing.TB, prefix string) *VethPair {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	v := &VethPair{NsTx: prefix + "T" + id, NsRx: prefix + "R" + id, IfTx: prefix + "t" + id, IfRx: prefix + "r" + id}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", v.NsTx).Run()
		exec.Command("ip", "netns", "del", v.NsRx).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", v.NsTx},
		{"netns", "add", v.NsRx},
		{"link", "add", v.IfTx, "netns", v.NsTx, "type", "veth", "peer", "name", v.IfRx, "netns", v.NsRx},
		{"-n", v.NsTx, "link", "set", v.IfTx, "up"},
		{"-n", v.NsRx, "link", "set", v.IfRx, "up"},
		{"-n", v.NsTx, "link", "set", "lo", "up"},
		{"-n", v.NsRx, "link", "set", "lo", "up"},
	} {
		Run(t, append([]string{"ip"}, args...)...)
	}
	for _, ns := range []string{v.NsTx, v.NsRx} {
		exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1").Run()
	}
	return v
}

// Run runs a command and fails t with its output if it fails.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// InNetns runs f on an OS thread moved into the named network namespace;
// sockets f opens stay in that namespace after f returns. The thread is
// never handed back to the scheduler: it ends with its goroutine.
func InNetns(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked
		target, err := os.Open(filepath.Join("/run/netns", ns))
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		done <- f()
	}()
	return <-done
}
