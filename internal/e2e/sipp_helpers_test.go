package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/zaf/g711"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/internal/testutil"
)

// sippNet is the network of the SIPp tests, three namespaces made for
// one test: in Agent, agent 1001's phone (AgentIP on a VLAN sub-interface
// of the veth AgentIf); in Far, the other party of its calls (FarIP on
// the same VLAN at the other end of that veth); in Span, the capture
// server's SPAN port SpanIf, which receives a copy of every frame AgentIf
// sends or receives (tc mirred, as a switch's SPAN session would), with
// its 802.1Q tag. On a kernel without 802.1Q the addresses sit on the
// veths themselves and the frames are untagged (VLAN is 0).
type sippNet struct {
	Agent, Far, Span string // namespace names
	AgentIf, SpanIf  string
	AgentIP, FarIP   netip.Addr
	// VLAN is sippVLAN, or 0 when the kernel has no 802.1Q.
	VLAN int
}

// sippVLAN is the voice VLAN of the SIPp tests.
const sippVLAN = 85

// newSIPpNet creates the namespaces, links and mirror of a sippNet;
// t.Cleanup removes them (and with them every link), even when the test
// fails. The test must run as root.
func newSIPpNet(t *testing.T) *sippNet {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	n := &sippNet{Agent: "smpA" + id, Far: "smpF" + id, Span: "smpS" + id,
		AgentIf: "ag" + id, SpanIf: "sr" + id,
		AgentIP: netip.MustParseAddr("10.77.0.1"), FarIP: netip.MustParseAddr("10.77.0.2")}
	farIf, spanTx := "fa"+id, "st"+id
	t.Cleanup(func() {
		for _, ns := range []string{n.Agent, n.Far, n.Span} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, args := range [][]string{
		{"ip", "netns", "add", n.Agent},
		{"ip", "netns", "add", n.Far},
		{"ip", "netns", "add", n.Span},
		{"ip", "link", "add", n.AgentIf, "netns", n.Agent, "type", "veth", "peer", "name", farIf, "netns", n.Far},
		{"ip", "link", "add", spanTx, "netns", n.Agent, "type", "veth", "peer", "name", n.SpanIf, "netns", n.Span},
	} {
		testutil.Run(t, args...)
	}
	// The voice VLAN: the phone and the far side talk over 802.1Q
	// sub-interfaces, so the frames on the phone's port carry the tag. A
	// kernel without 802.1Q (some CI sandboxes) gets untagged frames.
	agentIP, farIP := n.AgentIf, farIf
	vlanOf := func(parent string) string { return parent + "." + strconv.Itoa(sippVLAN) }
	out, err := exec.Command("ip", "-n", n.Agent, "link", "add", "link", n.AgentIf, "name", vlanOf(n.AgentIf),
		"type", "vlan", "id", strconv.Itoa(sippVLAN)).CombinedOutput()
	if err == nil {
		n.VLAN = sippVLAN
		agentIP, farIP = vlanOf(n.AgentIf), vlanOf(farIf)
		testutil.Run(t, "ip", "-n", n.Far, "link", "add", "link", farIf, "name", farIP, "type", "vlan", "id", strconv.Itoa(sippVLAN))
	} else {
		t.Logf("no 802.1Q in this kernel (ip link add type vlan: %s): the call runs untagged", strings.TrimSpace(string(out)))
	}
	testutil.Run(t, "ip", "-n", n.Agent, "addr", "add", n.AgentIP.String()+"/24", "dev", agentIP)
	testutil.Run(t, "ip", "-n", n.Far, "addr", "add", n.FarIP.String()+"/24", "dev", farIP)
	for ns, links := range map[string][]string{
		n.Agent: {"lo", n.AgentIf, agentIP, spanTx},
		n.Far:   {"lo", farIf, farIP},
		n.Span:  {"lo", n.SpanIf},
	} {
		// No IPv6: router solicitations and DAD would only add noise.
		exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1").Run()
		exec.Command("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1").Run()
		for _, l := range slices.Compact(links) {
			testutil.Run(t, "ip", "-n", ns, "link", "set", "dev", l, "up")
		}
	}
	// The SPAN session: both directions of the phone's port, as frames
	// cross it (tagged on the voice VLAN), copied to the capture
	// server's port. A u32 filter that matches everything is used rather
	// than matchall, which not every kernel has.
	testutil.Run(t, "tc", "-n", n.Agent, "qdisc", "add", "dev", n.AgentIf, "clsact")
	for _, dir := range []string{"ingress", "egress"} {
		testutil.Run(t, "tc", "-n", n.Agent, "filter", "add", "dev", n.AgentIf, dir, "protocol", "all",
			"u32", "match", "u32", "0", "0", "action", "mirred", "egress", "mirror", "dev", spanTx)
	}
	return n
}

// startInNetns starts one of the project's programs, or any program given by
// its path, in the network namespace ns, as start does on the host: the
// process is forked from a thread that entered ns, so it is the program
// itself (signals reach it) and it lives in ns.
func startInNetns(t *testing.T, ns, name string, args ...string) *proc {
	t.Helper()
	return startInNetnsDir(t, ns, "", name, args...)
}

// startInNetnsDir is startInNetns with the working directory dir (where SIPp
// writes its logs).
func startInNetnsDir(t *testing.T, ns, dir, name string, args ...string) *proc {
	t.Helper()
	path := name
	if !filepath.IsAbs(name) {
		path = bin(t, name)
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	return launch(t, cmd, func(c *exec.Cmd) error { return testutil.InNetns(ns, c.Start) }, func(p *proc) {
		t.Logf("%s stdout:\n%s\n%s stderr:\n%s", filepath.Base(path), sippTail(p.stdout.String(), 4000),
			filepath.Base(path), sippTail(p.stderr.String(), 4000))
	})
}

func sippTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// smctlInNetns runs smctl in the namespace ns to completion, with a deadline,
// and returns its stdout, stderr and exit code.
func smctlInNetns(t *testing.T, ns string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin(t, "smctl"), args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	cmd.Env = cleanEnv()
	if err := testutil.InNetns(ns, cmd.Start); err != nil {
		t.Fatalf("start smctl in %s: %v", ns, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("smctl %s did not finish within 60 s", strings.Join(args, " "))
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return so.String(), se.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return so.String(), se.String(), 0
}

// smctlJSONInNetns runs smctl with args (which include --json) in ns and decodes
// its output into v; it fails t if smctl fails.
func smctlJSONInNetns(t *testing.T, ns string, v any, args ...string) string {
	t.Helper()
	so, se, code := smctlInNetns(t, ns, args...)
	if code != 0 {
		t.Fatalf("smctl %s exited %d: %s", strings.Join(args, " "), code, se)
	}
	if err := json.Unmarshal([]byte(so), v); err != nil {
		t.Fatalf("smctl %s: %v\n%s", strings.Join(args, " "), err, so)
	}
	return so
}

// pollFor calls f every interval until it returns true or timeout
// passes, and reports whether it did.
func pollFor(timeout, interval time.Duration, f func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// sippPacketTime is the packetization of every RTP stream of the SIPp
// tests: 20 ms of PCMU, 160 bytes.
const sippPacketTime = 20 * time.Millisecond

// writeTonePCAP writes, for SIPp's play_pcap_audio, a capture of one RTP
// stream from src to dst: PCMU packets of 20 ms of a tone of hz at
// amplitude amp (gen.Tone's), for dur, timestamped 20 ms apart. SIPp
// replays the UDP payloads at that pace from its own media address to
// the media address of the other party's SDP.
func writeTonePCAP(t *testing.T, path string, src, dst netip.AddrPort, ssrc uint32, hz float64, amp int16, dur time.Duration) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	for i := range int(dur / sippPacketTime) {
		rtp := toneRTP(i, ssrc, hz, amp)
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2},
			EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			eth, ip, udp, gopacket.Payload(rtp)); err != nil {
			t.Fatal(err)
		}
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * sippPacketTime),
			CaptureLength: len(buf.Bytes()), Length: len(buf.Bytes())}
		if err := w.WritePacket(ci, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// toneRTP returns RTP packet i (from 0) of a PCMU stream of SSRC ssrc
// carrying a tone of hz at amplitude amp, 20 ms a packet.
func toneRTP(i int, ssrc uint32, hz float64, amp int16) []byte {
	const samples = 160
	pcm := gen.Tone(hz, amp, int64(i*samples), samples)
	rtp := make([]byte, 12, 12+samples)
	rtp[0] = 0x80
	if i == 0 {
		rtp[1] = 0x80 // marker: the first packet of a talkspurt
	}
	seq, ts := uint16(1000+i), uint32(8000+i*samples)
	rtp[2], rtp[3] = byte(seq>>8), byte(seq)
	rtp[4], rtp[5], rtp[6], rtp[7] = byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts)
	rtp[8], rtp[9], rtp[10], rtp[11] = byte(ssrc>>24), byte(ssrc>>16), byte(ssrc>>8), byte(ssrc)
	for _, v := range pcm {
		rtp = append(rtp, g711.EncodeUlawFrame(v))
	}
	return rtp
}

// dominantHz returns the frequency, between 100 and 3900 Hz to 1 Hz, at
// which pcm (8 kHz) has the most energy under a Hann window: a 10 Hz scan,
// then a 1 Hz one around its peak.
func dominantHz(pcm []int16) float64 {
	w := make([]float64, len(pcm))
	for i, v := range pcm {
		w[i] = float64(v) * (0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(len(pcm)-1)))
	}
	power := func(hz float64) float64 {
		c := 2 * math.Cos(2*math.Pi*hz/8000)
		var s1, s2 float64
		for _, v := range w {
			s1, s2 = v+c*s1-s2, s1
		}
		return s1*s1 + s2*s2 - c*s1*s2
	}
	best, bestP := 0.0, -1.0
	for hz := 100.0; hz <= 3900; hz += 10 {
		if p := power(hz); p > bestP {
			best, bestP = hz, p
		}
	}
	coarse := best
	for hz := coarse - 10; hz <= coarse+10; hz++ {
		if p := power(hz); p > bestP {
			best, bestP = hz, p
		}
	}
	return best
}

// sippDB returns level relative to ref in decibels.
func sippDB(level, ref float64) float64 { return 20 * math.Log10(max(level, 1e-9)/ref) }
