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
	"strconv"
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
// de-duplication (relay.Dedup, as smsupervisor uses it) judges it, the
// packet in hex, and when it arrived (Unix nanoseconds), so that tests can
// measure audio gaps at the supervisor.
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
		fmt.Fprintf(r.out, "%s %s %s %s %d\n", f.Session, p.Hello.Name, verdict, hex.EncodeToString(pkt.Data), time.Now().UnixNano())
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
	cfg, err := smtls.ServerConfig(sc.CertDir, smtls.Options{Roles: []smtls.Role{smtls.RoleSupervisor},
		PeerRoles: []smtls.Role{smtls.RoleCapture, smtls.RoleClient, smtls.RoleAdmin}})
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

// smserverProc is one run of smserver: a member restarted is a new
// smserverProc.
type smserverProc struct {
	cmd     *exec.Cmd
	log     *syncBuffer
	started time.Time
}

// e2eLab is the set-up of the end-to-end tests: three real smserver
// members A, B and C in the namespaces of a netLab, each with a SPAN port
// (smserver captures on span0, the test replays on span1), and a recording
// supervisor (this test binary under supervisorEnv) in a fourth namespace
// on the same bridge. Each member writes its audit trail to auditFile(i).
type e2eLab struct {
	t *testing.T
	*netLab
	supNS, supAddr  string
	dir, sec        string
	smserver, smctl string
	conf            string // smserver's configuration file
	names           [3]string
	procs           [3]*smserverProc
	runs            [3][]*smserverProc // every run of each member, in order
	supOut, supLog  *syncBuffer
}

// newE2ELab builds the programs, the namespaces, the certificates and
// starts the supervisor; config is smserver's YAML configuration ("" for
// the defaults). It skips the test when root, ip or tcpreplay is missing.
func newE2ELab(t *testing.T, config string) *e2eLab {
	t.Helper()
	testutil.NeedTool(t, "tcpreplay")
	e := &e2eLab{t: t, netLab: newNetLab(t), names: [3]string{"A", "B", "C"}}
	l := e.netLab
	// A fourth namespace on the bridge for the supervisor.
	e.supNS, e.supAddr = "smcd-"+l.suffix, "10.231.0.4"
	testutil.Run(t, "ip", "netns", "add", e.supNS)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", e.supNS).Run() })
	testutil.Run(t, "ip", "-n", l.hub, "link", "add", "hd", "type", "veth", "peer", "name", "eth0", "netns", e.supNS)
	testutil.Run(t, "ip", "-n", l.hub, "link", "set", "hd", "master", "br0", "up")
	testutil.Run(t, "ip", "-n", e.supNS, "addr", "add", e.supAddr+"/24", "dev", "eth0")
	testutil.Run(t, "ip", "-n", e.supNS, "link", "set", "eth0", "up")
	// Each member gets a SPAN port: span0 captures, span1 is where the
	// test replays traffic.
	for _, ns := range l.ns {
		testutil.Run(t, "ip", "-n", ns, "link", "add", "span0", "type", "veth", "peer", "name", "span1")
		testutil.Run(t, "ip", "-n", ns, "link", "set", "span0", "up")
		testutil.Run(t, "ip", "-n", ns, "link", "set", "span1", "up")
	}

	e.dir = t.TempDir()
	e.sec = filepath.Join(e.dir, "security")
	if err := smtls.Quickstart(e.sec, smtls.QuickstartOptions{Hosts: append(l.addr[:], e.supAddr)}); err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	e.smserver, e.smctl = buildTool(t, bin, "smserver"), buildTool(t, bin, "smctl")
	e.conf = filepath.Join(e.dir, "smserver.yaml")
	if err := os.WriteFile(e.conf, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}

	// Supervisor.
	exe, _ := os.Executable()
	rawSup, _ := json.Marshal(supervisorConfig{Listen: e.supAddr + ":42228", CertDir: e.sec})
	sup := exec.Command("ip", "netns", "exec", e.supNS, exe, "-test.run=^$")
	sup.Env = append(os.Environ(), supervisorEnv+"="+string(rawSup))
	e.supLog, e.supOut = &syncBuffer{}, &syncBuffer{}
	sup.Stderr, sup.Stdout = e.supLog, e.supOut
	supIn, _ := sup.StdinPipe()
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { supIn.Close(); sup.Wait() })
	waitFor(t, 10*time.Second, "the supervisor to listen", func() bool { return strings.Contains(e.supLog.String(), "listening") })

	t.Cleanup(func() {
		for i, p := range e.procs {
			if p != nil && p.cmd.ProcessState == nil {
				p.cmd.Process.Signal(syscall.SIGTERM)
				waitOrKill(p.cmd)
			}
			if !t.Failed() {
				continue
			}
			for n, r := range e.runs[i] {
				log := r.log.String()
				if len(e.runs[i]) > 1 && len(log) > 4000 {
					log = "…" + log[len(log)-4000:]
				}
				t.Logf("smserver %s log (run %d of %d):\n%s", e.names[i], n+1, len(e.runs[i]), log)
			}
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", e.supLog.String())
		}
	})
	return e
}

// auditFile is member i's audit trail.
func (e *e2eLab) auditFile(i int) string {
	return filepath.Join(e.dir, "audit-"+e.names[i]+".jsonl")
}

// startServer starts member i (again), capturing on its SPAN port.
func (e *e2eLab) startServer(i int) {
	e.t.Helper()
	p := &smserverProc{log: &syncBuffer{}}
	p.cmd = exec.Command("ip", "netns", "exec", e.ns[i], e.smserver,
		"--interface", "span0", "--name", e.names[i],
		"--listen", e.addr[i]+":42228", "--cluster-listen", e.addr[i]+":42029",
		"--peer", e.addr[(i+1)%3]+":42029", "--security-dir", e.sec,
		"--record-dir", filepath.Join(e.dir, "rec-"+e.names[i]), "--config", e.conf,
		"--audit-file", e.auditFile(i))
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	// The test's own SILENTMON_ variables (SILENTMON_CHURN_DURATION...)
	// name no key of smserver, which refuses them.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SILENTMON_") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.started = time.Now()
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.procs[i] = p
	e.runs[i] = append(e.runs[i], p)
}

// kill kills member i with SIGKILL and waits for it to be gone; it returns
// when the signal was sent.
func (e *e2eLab) kill(i int) time.Time {
	e.t.Helper()
	p := e.procs[i]
	if err := p.cmd.Process.Kill(); err != nil {
		e.t.Fatalf("kill smserver %s: %v", e.names[i], err)
	}
	at := time.Now()
	p.cmd.Wait()
	return at
}

// ctl runs smctl in namespace ns with the lab's certificates.
func (e *e2eLab) ctl(ns string, args ...string) (string, error) {
	args = append(args, "--security-dir", e.sec)
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns, e.smctl}, args...)...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// ctlStatus is smctl status --json of a member: the sessions in its filter
// (the ones it captures for) and its view of the cluster.
type ctlStatus struct {
	Sessions []struct {
		ID         string   `json:"id"`
		Owner      string   `json:"owner"`
		CapturedBy []string `json:"captured_by"`
	} `json:"sessions"`
	Cluster *Status `json:"cluster"`
}

// status is smctl status --json of member i.
func (e *e2eLab) status(i int) (*ctlStatus, bool) {
	out, err := e.ctl(e.ns[i], "status", "--server", e.addr[i]+":42228", "--json")
	if err != nil {
		return nil, false
	}
	var st ctlStatus
	if json.Unmarshal([]byte(out), &st) != nil {
		return nil, false
	}
	return &st, true
}

// hasSess reports whether member i has session id in its filter.
func (e *e2eLab) hasSess(i int, id string) bool {
	st, ok := e.status(i)
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

// anyHas asks the three members at once whether one has session id.
func (e *e2eLab) anyHas(id string) bool {
	var wg sync.WaitGroup
	var has [3]bool
	for i := range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); has[i] = e.hasSess(i, id) }()
	}
	wg.Wait()
	return has[0] || has[1] || has[2]
}

// members is the number of routes member i has (-1 if it does not answer).
func (e *e2eLab) members(i int) int {
	st, ok := e.status(i)
	if !ok || st.Cluster == nil {
		return -1
	}
	return len(st.Cluster.Routes)
}

// waitMesh waits for the three members to have routes to each other.
func (e *e2eLab) waitMesh(d time.Duration) {
	e.t.Helper()
	waitFor(e.t, d, "the three smservers to form a mesh", func() bool {
		return e.members(0) == 2 && e.members(1) == 2 && e.members(2) == 2
	})
}

// ownerOn is the owner of session id in member i's view ("" if unknown).
func (e *e2eLab) ownerOn(i int, id string) string {
	st, ok := e.status(i)
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

// startSession runs a one-shot smctl monitor start on member i for agent
// at endpoint, to the lab's supervisor, and returns the session id.
func (e *e2eLab) startSession(i int, agent, endpoint string) string {
	e.t.Helper()
	id, err := e.ctl(e.ns[i], "monitor", "start", "--server", e.addr[i]+":42228", "--agent", agent,
		"--endpoint", endpoint, "--supervisor", e.supAddr+":42228")
	if err != nil {
		e.t.Fatalf("smctl monitor start on %s: %v: %s", e.names[i], err, id)
	}
	return strings.TrimSpace(id[strings.LastIndexByte(id, '\n')+1:])
}

// replay replays pcap on member ns's SPAN port at pps packets a second.
func (e *e2eLab) replay(ns, pcap string, pps int) *exec.Cmd {
	e.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "tcpreplay", "-q", "-i", "span1", "--pps", fmt.Sprint(pps), pcap)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd
}

// supPacket is one RTP packet as the supervisor received it.
type supPacket struct {
	session, from string
	accepted      bool // "new": not a duplicate of an earlier copy
	rtp           string
	at            time.Time
}

// supervisorPackets parses what the supervisor received so far, in order
// of arrival, from byte offset from of its output on; it returns the
// packets and the offset to continue from.
func (e *e2eLab) supervisorPackets(from int) ([]supPacket, int) {
	out := e.supOut.String()
	end := strings.LastIndexByte(out, '\n') + 1
	if end <= from {
		return nil, from
	}
	var ps []supPacket
	for _, line := range strings.Split(out[from:end], "\n") {
		f := strings.Fields(line)
		if len(f) != 5 {
			continue
		}
		ns, err := strconv.ParseInt(f[4], 10, 64)
		if err != nil {
			continue
		}
		ps = append(ps, supPacket{session: f[0], from: f[1], accepted: f[2] == "new", rtp: f[3], at: time.Unix(0, ns)})
	}
	return ps, end
}

// TestEndToEndThreeServers: a session started on smserver A reaches C,
// whose SPAN port carries the agent's voice; the supervisor receives every
// packet once, bit-exact. C is killed and restarted: it fetches the session
// from the others and the stream resumes without a new request.
func TestEndToEndThreeServers(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the end-to-end test in -short mode")
	}
	// Sessions live 3 s without a refresh from their owner (default 15 s),
	// to keep the partition step short.
	const ttl = 3 * time.Second
	lab := newE2ELab(t, "heartbeat:\n  interval_ms: 1000\n  timeout_ms: 3000\n")
	l, supAddr := lab.netLab, lab.supAddr
	for i := range 3 {
		lab.startServer(i)
	}
	ctl, hasSess, anyHas, members := lab.ctl, lab.hasSess, lab.anyHas, lab.members
	status := lab.status
	lab.waitMesh(30 * time.Second)

	// The session starts on A.
	id := lab.startSession(0, "1001", "10.9.0.5")
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
		ps, _ := lab.supervisorPackets(0)
		for _, p := range ps {
			if p.session != id {
				continue
			}
			r := got[p.rtp]
			if r == nil {
				r = &rx{from: map[string]bool{}}
				got[p.rtp] = r
			}
			r.from[p.from] = true
			if p.accepted {
				r.accepted++
			}
		}
		return got
	}
	replay := lab.replay
	dir := lab.dir
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
	lab.kill(2)
	call := replay(l.ns[2], dir3, 200)
	time.Sleep(500 * time.Millisecond) // C is down: these packets are lost
	restart := time.Now()
	lab.startServer(2)
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
	killedA := lab.kill(0)
	ownerOn := func(i int) string { return lab.ownerOn(i, id) }
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
	lab.startServer(0)
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
	before := len(lab.supOut.String())
	dir4 := filepath.Join(dir, "after-stop.pcap")
	rtpCapture(t, dir4, 9000, 50)
	if err := replay(l.ns[2], dir4, 500).Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if extra := lab.supOut.String()[before:]; strings.Contains(extra, id) {
		t.Fatalf("media of the stopped session still arrives:\n%.300s", extra)
	}
}
