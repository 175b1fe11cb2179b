package cluster

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
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

// recorder prints each RTP packet it receives as one line on stdout:
// session, sending capture server, "dup" or "new" as the supervisor's
// de-duplication (relay.Dedup, as smsupervisor uses it) judges it, and the
// packet in hex.
type recorder struct {
	mu    sync.Mutex
	out   *os.File
	dedup *relay.Dedup
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
		verdict := "new"
		if r.dedup.Seen(f.Session, pkt.Direction, pkt.Data) {
			verdict = "dup"
		}
		fmt.Fprintf(r.out, "%s %s %s %s\n", f.Session, p.Hello.Name, verdict, hex.EncodeToString(pkt.Data))
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
			srv := relay.NewServer(relay.ServerConfig{Handler: &recorder{out: os.Stdout, dedup: relay.NewDedup()}, Role: relay.RoleSupervisor, Name: "test-supervisor"})
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
// with sequence numbers from seq0, 20 ms apart, and returns their UDP
// payloads (the RTP packets), hex-encoded, in order.
func rtpCapture(t *testing.T, path string, seq0 uint16, n int) []string {
	t.Helper()
	frames := make([][]byte, n)
	times := make([]time.Time, n)
	want := make([]string, n)
	ts := time.Unix(1_700_000_000, 0)
	for i := range n {
		payload := make([]byte, 160)
		for j := range payload {
			payload[j] = byte(rand.IntN(256))
		}
		rtp := capturetest.RTPBytes(capturetest.RTP{PayloadType: 0 /* PCMU */, Seq: seq0 + uint16(i), Timestamp: uint32(i * 160), SSRC: 0x1234abcd}, payload)
		frames[i] = capturetest.Build(capturetest.Frame{
			SrcMAC: [6]byte{2, 0, 0, 0, 0, 5}, DstMAC: [6]byte{2, 0, 0, 0, 0, 1},
			Src: netip.MustParseAddrPort("10.9.0.5:20000"), Dst: netip.MustParseAddrPort("10.8.0.1:30000"),
			UDPRaw: rtp,
		})
		times[i] = ts.Add(time.Duration(i+1) * 20 * time.Millisecond)
		want[i] = hex.EncodeToString(rtp)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := capturetest.WritePcap(f, capture.LinkEthernet, false, frames, times); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
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
	testutil.NeedTool(t, "tcpreplay")
	l := newNetLab(t)
	// A fourth namespace on the bridge for the supervisor.
	supNS, supAddr := "smcd-"+l.suffix, "10.231.0.4"
	testutil.Run(t, "ip", "netns", "add", supNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", supNS).Run() })
	testutil.Run(t, "ip", "-n", l.hub, "link", "add", "hd", "type", "veth", "peer", "name", "eth0", "netns", supNS)
	testutil.Run(t, "ip", "-n", l.hub, "link", "set", "hd", "master", "br0", "up")
	testutil.Run(t, "ip", "-n", supNS, "addr", "add", supAddr+"/24", "dev", "eth0")
	testutil.Run(t, "ip", "-n", supNS, "link", "set", "eth0", "up")
	// Each member gets a SPAN port: span0 captures, span1 is where the
	// test replays traffic.
	for _, ns := range l.ns {
		testutil.Run(t, "ip", "-n", ns, "link", "add", "span0", "type", "veth", "peer", "name", "span1")
		testutil.Run(t, "ip", "-n", ns, "link", "set", "span0", "up")
		testutil.Run(t, "ip", "-n", ns, "link", "set", "span1", "up")
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

	// Sessions live 3 s without a refresh from their owner (default 15 s),
	// to keep the partition step short.
	const ttl = 3 * time.Second
	conf := filepath.Join(dir, "smserver.yaml")
	if err := os.WriteFile(conf, []byte("heartbeat:\n  interval_ms: 1000\n  timeout_ms: 3000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	names := []string{"A", "B", "C"}
	var procs [3]*smserverProc
	startServer := func(i int) {
		p := &smserverProc{log: &syncBuffer{}}
		p.cmd = exec.Command("ip", "netns", "exec", l.ns[i], smserver,
			"--interface", "span0", "--name", names[i],
			"--listen", l.addr[i]+":42228", "--cluster-listen", l.addr[i]+":42029",
			"--peer", l.addr[(i+1)%3]+":42029", "--security-dir", sec,
			"--record-dir", filepath.Join(dir, "rec-"+names[i]), "--config", conf)
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
				waitOrKill(p.cmd)
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
	// status is smctl status --json of server i: the sessions in its
	// filter (the ones it captures for) and its view of the cluster.
	type ctlStatus struct {
		Sessions []struct {
			ID         string   `json:"id"`
			Owner      string   `json:"owner"`
			CapturedBy []string `json:"captured_by"`
		} `json:"sessions"`
		Cluster *Status `json:"cluster"`
	}
	status := func(i int) (*ctlStatus, bool) {
		out, err := ctl(l.ns[i], "status", "--server", l.addr[i]+":42228", "--json")
		if err != nil {
			return nil, false
		}
		var st ctlStatus
		if json.Unmarshal([]byte(out), &st) != nil {
			return nil, false
		}
		return &st, true
	}
	// hasSess reports whether server i has session id in its filter.
	hasSess := func(i int, id string) bool {
		st, ok := status(i)
		if !ok {
			return false
		}
		for _, s := range st.Sessions {
			if s.ID == id {
				return true
			}
		}
		return false
	}
	// anyHas asks the three servers at once.
	anyHas := func(id string) bool {
		var wg sync.WaitGroup
		var has [3]bool
		for i := range 3 {
			wg.Add(1)
			go func() { defer wg.Done(); has[i] = hasSess(i, id) }()
		}
		wg.Wait()
		return has[0] || has[1] || has[2]
	}
	members := func(i int) int {
		st, ok := status(i)
		if !ok || st.Cluster == nil {
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

	// received parses the supervisor's output: for each packet of the
	// session, how many copies were accepted ("new") and which servers
	// sent it.
	type rx struct {
		accepted int
		from     map[string]bool
	}
	received := func() map[string]*rx {
		got := map[string]*rx{}
		for _, line := range strings.Split(supOut.String(), "\n") {
			f := strings.Fields(line)
			if len(f) != 4 || f[0] != id {
				continue
			}
			r := got[f[3]]
			if r == nil {
				r = &rx{from: map[string]bool{}}
				got[f[3]] = r
			}
			r.from[f[1]] = true
			if f[2] == "new" {
				r.accepted++
			}
		}
		return got
	}
	replay := func(ns, pcap string, pps int) *exec.Cmd {
		cmd := exec.Command("ip", "netns", "exec", ns, "tcpreplay", "-q", "-i", "span1", "--pps", fmt.Sprint(pps), pcap)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	// exactlyOnce waits for every packet of want and checks that the
	// supervisor accepted each one once, and only from the given servers.
	exactlyOnce := func(round string, want []string, from ...string) {
		t.Helper()
		waitFor(t, 10*time.Second, round+": every packet at the supervisor", func() bool {
			got := received()
			for _, p := range want {
				if got[p] == nil {
					return false
				}
			}
			return true
		})
		time.Sleep(300 * time.Millisecond) // late copies would show now
		got := received()
		senders := map[string]bool{}
		for _, p := range want {
			if got[p].accepted != 1 {
				t.Fatalf("%s: packet %.32s… accepted %d times", round, p, got[p].accepted)
			}
			for s := range got[p].from {
				senders[s] = true
			}
		}
		for _, s := range from {
			if !senders[s] {
				t.Errorf("%s: nothing came from %s (senders %v)", round, s, senders)
			}
		}
		if len(senders) != len(from) {
			t.Errorf("%s: senders %v, want %v", round, senders, from)
		}
	}

	// 1. The agent's voice appears on C's SPAN port only.
	dir1 := filepath.Join(dir, "first.pcap")
	first := rtpCapture(t, dir1, 1, 200)
	if err := replay(l.ns[2], dir1, 500).Wait(); err != nil {
		t.Fatalf("tcpreplay: %v", err)
	}
	exactlyOnce("C's SPAN", first, "C")

	// smctl status on A: the three members, A's two routes, and which
	// member owns and which captures the session.
	waitFor(t, 5*time.Second, "A's status to show C capturing the session", func() bool {
		st, ok := status(0)
		if !ok || st.Cluster == nil || len(st.Sessions) != 1 {
			return false
		}
		up := 0
		for _, m := range st.Cluster.Members {
			if m.State == "up" || m.State == "self" {
				up++
			}
		}
		s := st.Sessions[0]
		return up == 3 && len(st.Cluster.Routes) == 2 && s.ID == id && s.Owner == "A" &&
			strings.Join(s.CapturedBy, ",") == "C"
	})
	if out, err := ctl(l.ns[0], "status", "--server", l.addr[0]+":42228"); err == nil {
		t.Logf("smctl status on A:\n%s", out)
	}

	// 2. Overlapping SPAN sessions: B and C both see the same stream; the
	// supervisor keeps one copy of each packet.
	dir2 := filepath.Join(dir, "overlap.pcap")
	overlap := rtpCapture(t, dir2, 1000, 200)
	rb, rc := replay(l.ns[1], dir2, 500), replay(l.ns[2], dir2, 500)
	if err := rb.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := rc.Wait(); err != nil {
		t.Fatal(err)
	}
	exactlyOnce("overlapping SPAN on B and C", overlap, "B", "C")

	// 3. C is killed while the call goes on, and restarted: no new client
	// request. The stream resumes; from the first packet after the
	// restart on, nothing is missing or doubled.
	dir3 := filepath.Join(dir, "restart.pcap")
	third := rtpCapture(t, dir3, 5000, 1000) // 5 s at 200 packets/s
	procs[2].cmd.Process.Kill()
	procs[2].cmd.Wait()
	call := replay(l.ns[2], dir3, 200)
	time.Sleep(500 * time.Millisecond) // C is down: these packets are lost
	restart := time.Now()
	startServer(2)
	var resumed time.Duration
	firstIdx := -1
	waitFor(t, 5*time.Second, "the stream to resume after C's restart", func() bool {
		got := received()
		for i, p := range third {
			if got[p] != nil {
				resumed, firstIdx = time.Since(restart), i
				return true
			}
		}
		return false
	})
	if err := call.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted smserver C: stream resumed %v after its start (packet %d of %d was the first through)", resumed, firstIdx, len(third))
	exactlyOnce("after C's restart", third[firstIdx:], "C")
	if !hasSess(2, id) {
		t.Fatalf("restarted C does not list session %s", id)
	}

	// 3b. A, the owner that accepted the one-shot start, is killed with
	// SIGKILL: the session belongs to the cluster, B adopts it after the
	// TTL and C keeps streaming; A restarted holds it again.
	procs[0].cmd.Process.Kill()
	procs[0].cmd.Wait()
	killedA := time.Now()
	ownerOn := func(i int) string {
		st, ok := status(i)
		if !ok || st.Cluster == nil {
			return ""
		}
		for _, s := range st.Cluster.Sessions {
			if s.ID == id {
				return s.Owner
			}
		}
		return ""
	}
	waitFor(t, 4*ttl, "B or C to adopt the session of killed A", func() bool {
		o := ownerOn(2)
		return o != "" && o != "A" && hasSess(1, id) && hasSess(2, id)
	})
	t.Logf("owner A killed: the session was adopted by %s %v later (TTL %v)", ownerOn(2), time.Since(killedA), ttl)
	dirK := filepath.Join(dir, "owner-killed.pcap")
	killedPkts := rtpCapture(t, dirK, 3000, 200)
	if err := replay(l.ns[2], dirK, 500).Wait(); err != nil {
		t.Fatal(err)
	}
	exactlyOnce("after the owner was killed", killedPkts, "C")
	startServer(0)
	waitFor(t, 10*time.Second, "restarted A to hold the session", func() bool { return hasSess(0, id) })
	waitFor(t, 30*time.Second, "the mesh again", func() bool {
		return members(0) == 2 && members(1) == 2 && members(2) == 2
	})

	// 4. Partition: A loses its link for twice the session TTL. Nobody
	// drops the session: each side keeps it (and adopts it if its owner
	// is on the other side); a session started on B meanwhile does not
	// reach A. When the link comes back, all three converge on both
	// sessions, and C streams again, each packet once.
	testutil.Run(t, "ip", "-n", l.hub, "link", "set", l.port[0], "down")
	id2, err := ctl(l.ns[1], "monitor", "start", "--server", l.addr[1]+":42228", "--agent", "1077",
		"--endpoint", "10.9.0.77", "--supervisor", supAddr+":42228")
	if err != nil {
		t.Fatalf("smctl monitor start on B: %v: %s", err, id2)
	}
	id2 = strings.TrimSpace(id2[strings.LastIndexByte(id2, '\n')+1:])
	time.Sleep(2 * ttl)
	waitFor(t, 4*ttl, "B and C to keep the session and hold B's new one", func() bool {
		return hasSess(1, id) && hasSess(2, id) && hasSess(2, id2)
	})
	if !hasSess(0, id) || hasSess(0, id2) {
		t.Fatalf("partitioned A: has its own session %v, has B's new one %v; want true, false", hasSess(0, id), hasSess(0, id2))
	}
	testutil.Run(t, "ip", "-n", l.hub, "link", "set", l.port[0], "up")
	healed := time.Now()
	waitFor(t, 20*time.Second, "all three to hold both sessions after the heal", func() bool {
		for i := range 3 {
			if !hasSess(i, id) || !hasSess(i, id2) {
				return false
			}
		}
		return true
	})
	t.Logf("partition healed: all three servers hold both sessions %v after the link came back", time.Since(healed))
	dirP := filepath.Join(dir, "healed.pcap")
	healedPkts := rtpCapture(t, dirP, 7000, 200)
	if err := replay(l.ns[2], dirP, 500).Wait(); err != nil {
		t.Fatal(err)
	}
	exactlyOnce("after the partition healed", healedPkts, "C")

	// 5. Stop on B (not the owner): capture ends everywhere within a second.
	if out, err := ctl(l.ns[1], "monitor", "stop", "--server", l.addr[1]+":42228", "--session", id); err != nil {
		t.Fatalf("smctl monitor stop: %v: %s", err, out)
	}
	stopped := time.Now()
	var goneBy time.Duration
	waitFor(t, 3*time.Second, "the session to end on A, B and C", func() bool {
		if anyHas(id) {
			return false
		}
		goneBy = time.Since(stopped) // an upper bound: the poll itself takes time
		return true
	})
	if goneBy > time.Second {
		t.Fatalf("the session ended on all three servers only %v after the stop", goneBy)
	}
	t.Logf("stop on B: session gone from all three servers within %v of smctl monitor stop returning", goneBy)
	before := len(supOut.String())
	dir4 := filepath.Join(dir, "after-stop.pcap")
	rtpCapture(t, dir4, 9000, 50)
	if err := replay(l.ns[2], dir4, 500).Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if extra := supOut.String()[before:]; strings.Contains(extra, id) {
		t.Fatalf("media of the stopped session still arrives:\n%.300s", extra)
	}
}
