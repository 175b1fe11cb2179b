// Package nictest builds the test benches of the NIC qualification test
// with real kernel features: two network namespaces joined by a veth pair,
// offload features switched with ethtool, links taken down, and tc egress
// programs (tcx, eBPF) that pop or rewrite the VLAN tag on the way, as a
// stripping driver or a translating switch would.
//
// Everything here needs root; callers skip first with testutil.NeedRoot.
// Every bench removes what it made in t.Cleanup, even when the test fails.
package nictest

import (
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/silentmon/silentmon/internal/testutil"
)

// Pair is a veth pair whose ends A and B live in namespaces NsA and NsB.
type Pair struct {
	NsA, NsB string // names under /run/netns
	A, B     string // interface names
}

// NewPair creates two namespaces with unique names and a veth pair between
// them (testutil.NewVethPair: both ends up, IPv6 off so the wire stays
// quiet), and waits for the link.
func NewPair(t testing.TB) *Pair {
	t.Helper()
	v := testutil.NewVethPair(t, "smn")
	p := &Pair{NsA: v.NsTx, NsB: v.NsRx, A: v.IfTx, B: v.IfRx}
	p.WaitOperState(t, p.NsB, p.B, "up")
	return p
}

// WaitOperState waits up to 3 s for ip to report the interface's operstate.
func (p *Pair) WaitOperState(t testing.TB, ns, ifname, want string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		out, _ := exec.Command("ip", "-n", ns, "-o", "link", "show", ifname).CombinedOutput()
		if strings.Contains(string(out), "state "+strings.ToUpper(want)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s did not reach operstate %s: %s", ifname, ns, want, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Ethtool runs ethtool inside ns.
func Ethtool(t testing.TB, ns string, args ...string) {
	t.Helper()
	testutil.Run(t, append([]string{"ip", "netns", "exec", ns, "ethtool"}, args...)...)
}

// eBPF instruction encoding (struct bpf_insn).
type insn struct {
	code uint8
	regs uint8 // dst in the low nibble, src in the high
	off  int16
	imm  int32
}

const (
	opCall     = 0x85 // BPF_JMP | BPF_CALL
	opExit     = 0x95 // BPF_JMP | BPF_EXIT
	opMovImm   = 0xb7 // BPF_ALU64 | BPF_MOV | BPF_K
	opMovReg   = 0xbf // BPF_ALU64 | BPF_MOV | BPF_X
	fnVLANPush = 18   // bpf_skb_vlan_push(skb, be16 proto, u16 tci)
	fnVLANPop  = 19   // bpf_skb_vlan_pop(skb)
)

// PopVLAN attaches to ifname's egress (tcx) a program that removes the
// outer VLAN tag of every frame, in the frame or offloaded, as a driver or
// switch that strips tags would. It is detached in t.Cleanup.
func PopVLAN(t testing.TB, ns, ifname string) {
	t.Helper()
	prog := []insn{
		{code: opCall, imm: fnVLANPop},
		{code: opMovImm, imm: 0}, // TC_ACT_OK
		{code: opExit},
	}
	attachEgress(t, ns, ifname, prog)
}

// RewriteVLAN attaches to ifname's egress a program that replaces the
// outer tag with VLAN vlan, priority prio, as a switch translating VLANs
// would. It is detached in t.Cleanup.
func RewriteVLAN(t testing.TB, ns, ifname string, vlan uint16, prio uint8) {
	t.Helper()
	var proto [2]byte
	binary.BigEndian.PutUint16(proto[:], 0x8100)
	prog := []insn{
		{code: opMovReg, regs: 6 | 1<<4}, // r6 = r1 (skb)
		{code: opCall, imm: fnVLANPop},
		{code: opMovReg, regs: 1 | 6<<4}, // r1 = r6
		{code: opMovImm, regs: 2, imm: int32(binary.NativeEndian.Uint16(proto[:]))},
		{code: opMovImm, regs: 3, imm: int32(uint16(prio)<<13 | vlan)},
		{code: opCall, imm: fnVLANPush},
		{code: opMovImm, imm: 0},
		{code: opExit},
	}
	attachEgress(t, ns, ifname, prog)
}

func attachEgress(t testing.TB, ns, ifname string, prog []insn) {
	t.Helper()
	var (
		linkFD   int
		errNoTCX bool
	)
	err := testutil.InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		progFD, err := loadSchedCls(prog)
		if err != nil {
			return err
		}
		defer unix.Close(progFD)
		// union bpf_attr, link_create: prog_fd, target_ifindex,
		// attach_type, flags, then tcx's relative_fd and
		// expected_revision (zero: attach last).
		var attr [64]byte
		ne := binary.NativeEndian
		ne.PutUint32(attr[0:], uint32(progFD))
		ne.PutUint32(attr[4:], uint32(ifi.Index))
		ne.PutUint32(attr[8:], unix.BPF_TCX_EGRESS)
		fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_LINK_CREATE, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
		if errno != 0 {
			if errno == unix.EINVAL {
				errNoTCX = true
			}
			return fmt.Errorf("BPF_LINK_CREATE tcx egress on %s: %w", ifname, errno)
		}
		linkFD = int(fd)
		return nil
	})
	if errNoTCX {
		t.Skipf("skipping: this kernel cannot attach tc egress programs through tcx links (Linux 6.6 or later needed): %v", err)
	}
	if err != nil {
		t.Fatalf("attaching the egress program in %s: %v", ns, err)
	}
	t.Cleanup(func() { unix.Close(linkFD) })
}

func loadSchedCls(prog []insn) (int, error) {
	code := make([]byte, 8*len(prog))
	for i, in := range prog {
		b := code[8*i:]
		b[0] = in.code
		b[1] = in.regs
		binary.NativeEndian.PutUint16(b[2:], uint16(in.off))
		binary.NativeEndian.PutUint32(b[4:], uint32(in.imm))
	}
	license := []byte("Dual MIT/GPL\x00")
	logBuf := make([]byte, 4096)
	// union bpf_attr, prog_load: prog_type, insn_cnt, insns, license,
	// log_level, log_size, log_buf, ...
	var attr [128]byte
	ne := binary.NativeEndian
	ne.PutUint32(attr[0:], unix.BPF_PROG_TYPE_SCHED_CLS)
	ne.PutUint32(attr[4:], uint32(len(prog)))
	ne.PutUint64(attr[8:], uint64(uintptr(unsafe.Pointer(&code[0]))))
	ne.PutUint64(attr[16:], uint64(uintptr(unsafe.Pointer(&license[0]))))
	ne.PutUint32(attr[24:], 1)
	ne.PutUint32(attr[28:], uint32(len(logBuf)))
	ne.PutUint64(attr[32:], uint64(uintptr(unsafe.Pointer(&logBuf[0]))))
	ne.PutUint32(attr[68:], unix.BPF_TCX_EGRESS) // expected_attach_type
	fd, _, errno := unix.Syscall(unix.SYS_BPF, unix.BPF_PROG_LOAD, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr)))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(logBuf)
	if errno != 0 {
		return -1, fmt.Errorf("BPF_PROG_LOAD: %w: %s", errno, unix.ByteSliceToString(logBuf))
	}
	return int(fd), nil
}
