package cluster

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/silentmon/silentmon/internal/testutil"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// The end-to-end test runs the real smserver in three namespaces and a
// recording supervisor (this test binary, under supervisorEnv) in a
// fourth. Test files may import relay and tls; the cluster package does
// not.
const supervisorEnv = "SILENTMON_CLUSTER_TEST_SUPERVISOR"

type supervisorConfig struct {
	Listen  string `json:"listen"`
	CertDir string `json:"cert_dir"`
}

// recorder prints each RTP packet it receives as one hex line on stdout.
type recorder struct {
	mu  sync.Mutex
	out *os.File
}

func (r *recorder) StartMonitor(context.Context, *relay.Peer, *relay.StartMonitor) (*relay.SessionStatus, error) {
	return nil, &relay.Error{Code: relay.CodeBadRequest, Message: "this is a supervisor"}
}
func (r *recorder) StopMonitor(context.Context, *relay.Peer, *relay.StopMonitor) (*relay.SessionStatus, error) {
	return nil, &relay.Error{Code: relay.CodeBadRequest, Message: "this is a supervisor"}
}
func (r *recorder) Status(context.Context, *relay.Peer) (any, error) { return map[string]string{}, nil }
func (r *recorder) Closed(*relay.Peer, error)                        {}
func (r *recorder) Media(p *relay.Peer, f *relay.MediaFrame) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var pkt relay.MediaPacket
	for {
		ok, err := f.Next(&pkt)
		if err != nil || !ok {
			return err
		}
		fmt.Fprintf(r.out, "%s %s %s\n", f.Session, p.Hello.Name, hex.EncodeToString(pkt.Data))
	}
}

func supervisorMain() bool {
	raw := os.Getenv(supervisorEnv)
	if raw == "" {
		return false
	}
	var sc supervisorConfig
	if err := json.Unmarshal([]byte(raw), &sc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg, err := smtls.ServerConfig(sc.CertDir, smtls.Options{})
	if err == nil {
		var ln net.Listener
		if ln, err = net.Listen("tcp", sc.Listen); err == nil {
			srv := relay.NewServer(relay.ServerConfig{Handler: &recorder{out: os.Stdout}, Role: relay.RoleSupervisor, Name: "test-supervisor"})
			go srv.Serve(tls.NewListener(ln, cfg))
			fmt.Fprintln(os.Stderr, "supervisor listening on", sc.Listen)
			buf := make([]byte, 1)
			os.Stdin.Read(buf) // until the test closes stdin
			srv.Close()
			return true
		}
	}
	fmt.Fprintln(os.Stderr, "supervisor:", err)
	os.Exit(1)
	return true
}

// buildTool builds one of the project's programs into dir.
func buildTool(t *testing.T, dir, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "build", "-o", out, "github.com/silentmon/silentmon/cmd/"+name)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, b)
	}
	return out
}

// rtpCapture writes n RTP packets of agent phone 10.9.0.5 (to 10.8.0.1)
// with sequence numbers from seq0 and returns the file and the UDP
// payloads, hex-encoded.
func rtpCapture(t *testing.T, path string, seq0 uint16, n int) map[string]bool {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	want := make(map[string]bool, n)
	ts := time.Unix(1_700_000_000, 0)
	for i := range n {
		rtp := make([]byte, 12+160)
		rtp[0] = 0x80
		rtp[1] = 0 // PCMU
		seq := seq0 + uint16(i)
		rtp[2], rtp[3] = byte(seq>>8), byte(seq)
		tsv := uint32(i * 160)
		rtp[4], rtp[5], rtp[6], rtp[7] = byte(tsv>>24), byte(tsv>>16), byte(tsv>>8), byte(tsv)
		copy(rtp[8:12], []byte{0x12, 0x34, 0xab, 0xcd})
		for j := 12; j < len(rtp); j++ {
			rtp[j] = byte(rand.IntN(256))
		}
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 5}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, EthernetType: layers.EthernetTypeIPv4}
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.IP{10, 9, 0, 5}, DstIP: net.IP{10, 8, 0, 1}}
		udp := &layers.UDP{SrcPort: 20000, DstPort: 30000}
		udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(rtp)); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		ts = ts.Add(20 * time.Millisecond)
		w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(b), Length: len(b)}, b)
		want[hex.EncodeToString(rtp)] = true
	}
	return want
}

type smserverProc struct {
	cmd *exec.Cmd
	log *syncBuffer
}

// TestEndToEndThreeServers: a session started on smserver A reaches C,
// whose SPAN port carries the agent's voice; the supervisor receives every
// packet once, bit-exact. C is killed and restarted: it fetches the session
// from the others and the stream resumes without a new request.
func TestEndToEndThreeServers(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the end-to-end test in -short mode")
	}
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip", "tcpreplay")
	l := newNetLab(t)
	// A fourth namespace on the bridge for the supervisor.
	supNS, supAddr := "smcd-"+l.suffix, "10.231.0.4"
	run(t, "ip", "netns", "add", supNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", supNS).Run() })
	run(t, "ip", "-n", l.hub, "link", "add", "hd", "type", "veth", "peer", "name", "eth0", "netns", supNS)
	run(t, "ip", "-n", l.hub, "link", "set", "hd", "master", "br0", "up")
	run(t, "ip", "-n", supNS, "addr", "add", supAddr+"/24", "dev", "eth0")
	run(t, "ip", "-n", supNS, "link", "set", "eth0", "up")
	// Each member gets a SPAN port: span0 captures, span1 is where the
	// test replays traffic.
	for _, ns := range l.ns {
		run(t, "ip", "-n", ns, "link", "add", "span0", "type", "veth", "peer", "name", "span1")
		run(t, "ip", "-n", ns, "link", "set", "span0", "up")
		run(t, "ip", "-n", ns, "link", "set", "span1", "up")
	}

	dir := t.TempDir()
	sec := filepath.Join(dir, "security")
	if err := smtls.Quickstart(sec, smtls.QuickstartOptions{Hosts: append(l.addr[:], supAddr)}); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	smserver, smctl := buildTool(t, bin, "smserver"), buildTool(t, bin, "smctl")

	// Supervisor.
	exe, _ := os.Executable()
	rawSup, _ := json.Marshal(supervisorConfig{Listen: supAddr + ":42228", CertDir: sec})
	sup := exec.Command("ip", "netns", "exec", supNS, exe, "-test.run=^$")
	sup.Env = append(os.Environ(), supervisorEnv+"="+string(rawSup))
	supLog := &syncBuffer{}
	sup.Stderr = supLog
	supIn, _ := sup.StdinPipe()
	supOut := &syncBuffer{}
	sup.Stdout = supOut
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { supIn.Close(); sup.Wait() })
	waitFor(t, 10*time.Second, "the supervisor to listen", func() bool { return strings.Contains(supLog.String(), "listening") })

	names := []string{"A", "B", "C"}
	var procs [3]*smserverProc
	startServer := func(i int) {
		p := &smserverProc{log: &syncBuffer{}}
		p.cmd = exec.Command("ip", "netns", "exec", l.ns[i], smserver,
			"--interface", "span0", "--name", names[i],
			"--listen", l.addr[i]+":42228", "--cluster-listen", l.addr[i]+":42029",
			"--peer", l.addr[(i+1)%3]+":42029", "--security-dir", sec,
			"--record-dir", filepath.Join(dir, "rec-"+names[i]))
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = p
	}
	t.Cleanup(func() {
		for i, p := range procs {
			if p != nil && p.cmd.ProcessState == nil {
				p.cmd.Process.Signal(syscall.SIGTERM)
				done := make(chan struct{})
				go func() { p.cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					p.cmd.Process.Kill()
					<-done
				}
			}
			if t.Failed() && p != nil {
				t.Logf("smserver %s log:\n%s", names[i], p.log.String())
			}
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", supLog.String())
		}
	})
	for i := range 3 {
		startServer(i)
	}
	ctl := func(ns string, args ...string) (string, error) {
		args = append(args, "--security-dir", sec)
		out, err := exec.Command("ip", append([]string{"netns", "exec", ns, smctl}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	hasSess := func(i int, id string) bool {
		out, err := ctl(l.ns[i], "status", "--server", l.addr[i]+":42228", "--json")
		return err == nil && strings.Contains(out, `"`+id+`"`)
	}
	members := func(i int) int {
		out, err := ctl(l.ns[i], "status", "--server", l.addr[i]+":42228", "--json")
		if err != nil {
			return -1
		}
		var st struct {
			Cluster *Status `json:"cluster"`
		}
		if json.Unmarshal([]byte(out), &st) != nil || st.Cluster == nil {
			return -1
		}
		return len(st.Cluster.Routes)
	}
	waitFor(t, 30*time.Second, "the three smservers to form a mesh", func() bool {
		return members(0) == 2 && members(1) == 2 && members(2) == 2
	})

	// The session starts on A.
	id, err := ctl(l.ns[0], "monitor", "start", "--server", l.addr[0]+":42228", "--agent", "1001",
		"--endpoint", "10.9.0.5", "--supervisor", supAddr+":42228")
	if err != nil {
		t.Fatalf("smctl monitor start: %v: %s", err, id)
	}
	id = strings.TrimSpace(id[strings.LastIndexByte(id, '\n')+1:])
	waitFor(t, 5*time.Second, "session "+id+" on C", func() bool { return hasSess(2, id) })

	check := func(round string, want map[string]bool, pcap string) {
		t.Helper()
		if out, err := exec.Command("ip", "netns", "exec", l.ns[2], "tcpreplay", "-q", "-i", "span1", "--pps", "500", pcap).CombinedOutput(); err != nil {
			t.Fatalf("tcpreplay: %v\n%s", err, out)
		}
		count := func() map[string]int {
			got := map[string]int{}
			for _, line := range strings.Split(supOut.String(), "\n") {
				f := strings.Fields(line)
				if len(f) == 3 && f[0] == id && want[f[2]] {
					got[f[2]]++
				}
			}
			return got
		}
		waitFor(t, 10*time.Second, round+": every packet at the supervisor", func() bool { return len(count()) == len(want) })
		time.Sleep(500 * time.Millisecond) // late duplicates would show now
		for p, n := range count() {
			if n != 1 {
				t.Fatalf("%s: packet %.24s… delivered %d times", round, p, n)
			}
		}
	}
	first := rtpCapture(t, filepath.Join(dir, "first.pcap"), 1, 200)
	check("first stream", first, filepath.Join(dir, "first.pcap"))

	// Kill C and restart it: no new client request.
	procs[2].cmd.Process.Kill()
	procs[2].cmd.Wait()
	restart := time.Now()
	startServer(2)
	waitFor(t, 20*time.Second, "restarted C to hold the session", func() bool { return hasSess(2, id) })
	t.Logf("restarted smserver C holds the session %v after its start", time.Since(restart))
	second := rtpCapture(t, filepath.Join(dir, "second.pcap"), 5000, 200)
	check("after restart", second, filepath.Join(dir, "second.pcap"))
}
