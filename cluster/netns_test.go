package cluster

import (
	"bufio"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
)

// netLab is three member namespaces, each with its own address, joined by
// a bridge in a hub namespace. Cutting a member's hub port partitions it
// for real: its routes see no more packets until the port comes back.
type netLab struct {
	suffix string
	hub    string
	ns     [3]string
	addr   [3]string
	port   [3]string // hub-side veth of each member
}

func newNetLab(t *testing.T) *netLab {
	t.Helper()
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip")
	var b [3]byte
	rand.Read(b[:])
	l := &netLab{suffix: hex.EncodeToString(b[:])}
	l.hub = "smch-" + l.suffix
	created := []string{}
	t.Cleanup(func() {
		for _, ns := range created {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	testutil.Run(t, "ip", "netns", "add", l.hub)
	created = append(created, l.hub)
	testutil.Run(t, "ip", "-n", l.hub, "link", "add", "br0", "type", "bridge")
	testutil.Run(t, "ip", "-n", l.hub, "link", "set", "br0", "up")
	for i := range 3 {
		name := string(rune('a' + i))
		l.ns[i] = "smc" + name + "-" + l.suffix
		l.addr[i] = fmt.Sprintf("10.231.0.%d", i+1)
		l.port[i] = "h" + name
		testutil.Run(t, "ip", "netns", "add", l.ns[i])
		created = append(created, l.ns[i])
		testutil.Run(t, "ip", "-n", l.hub, "link", "add", l.port[i], "type", "veth", "peer", "name", "eth0", "netns", l.ns[i])
		testutil.Run(t, "ip", "-n", l.hub, "link", "set", l.port[i], "master", "br0", "up")
		testutil.Run(t, "ip", "-n", l.ns[i], "addr", "add", l.addr[i]+"/24", "dev", "eth0")
		testutil.Run(t, "ip", "-n", l.ns[i], "link", "set", "eth0", "up")
		testutil.Run(t, "ip", "-n", l.ns[i], "link", "set", "lo", "up")
	}
	return l
}

// writeCerts writes the CA and each member's server and client
// certificates (certificate then key, as in CtiosServer.pem) into dir.
func writeCerts(t *testing.T, dir string, names ...string) {
	t.Helper()
	ca := newTestCA(t, "site CA")
	write := func(name string, blocks ...*pem.Block) {
		var buf strings.Builder
		for _, b := range blocks {
			pem.Encode(&buf, b)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(buf.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
	for _, n := range names {
		for _, role := range []string{"server", "client"} {
			c := ca.issue(t, n+"-"+role)
			der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
			if err != nil {
				t.Fatal(err)
			}
			write(n+"-"+role+".pem", &pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
		}
	}
}

// member is a cluster member process in a namespace.
type member struct {
	name string
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *bufio.Scanner
	log  *syncBuffer
	mu   sync.Mutex
}

func startMember(t *testing.T, ns string, mc memberConfig) *member {
	t.Helper()
	raw, _ := json.Marshal(mc)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	m := &member{name: mc.Name, log: &syncBuffer{}}
	m.cmd = exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	m.cmd.Env = append(os.Environ(), memberEnv+"="+string(raw))
	m.cmd.Stderr = m.log
	m.in, _ = m.cmd.StdinPipe()
	stdout, _ := m.cmd.StdoutPipe()
	m.out = bufio.NewScanner(stdout)
	m.out.Buffer(make([]byte, 1<<20), 1<<20)
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.stop() })
	return m
}

func (m *member) stop() {
	if m.cmd.ProcessState != nil || m.cmd.Process == nil {
		return
	}
	m.in.Close()
	waitOrKill(m.cmd)
}

// waitOrKill waits for a started process asked to stop, and kills it if it
// has not exited within five seconds.
func waitOrKill(cmd *exec.Cmd) {
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func (m *member) call(t *testing.T, req memberRequest) memberReply {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	b, _ := json.Marshal(req)
	if _, err := m.in.Write(append(b, '\n')); err != nil {
		t.Fatalf("member %s: %v\n%s", m.name, err, m.log.String())
	}
	if !m.out.Scan() {
		t.Fatalf("member %s exited\n%s", m.name, m.log.String())
	}
	var rep memberReply
	if err := json.Unmarshal(m.out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

func (m *member) must(t *testing.T, req memberRequest) memberReply {
	t.Helper()
	rep := m.call(t, req)
	if rep.Err != "" {
		t.Fatalf("member %s %s: %s", m.name, req.Op, rep.Err)
	}
	return rep
}

func (m *member) sessions(t *testing.T) string {
	return strings.Join(m.must(t, memberRequest{Op: "sessions"}).Sessions, ",")
}

func (m *member) routes(t *testing.T) int {
	return len(m.must(t, memberRequest{Op: "status"}).Status.Routes)
}

// routeCapture records the route traffic crossing the hub bridge.
type routeCapture struct {
	cmd  *exec.Cmd
	file string
}

func startCapture(t *testing.T, l *netLab) *routeCapture {
	t.Helper()
	testutil.NeedTool(t, "tcpdump", "tshark")
	c := &routeCapture{file: filepath.Join(t.TempDir(), "routes.pcap")}
	c.cmd = exec.Command("ip", "netns", "exec", l.hub, "tcpdump", "-i", "br0", "-U", "--immediate-mode", "-n", "-w", c.file, "tcp", "port", "42029")
	var errb syncBuffer
	c.cmd.Stderr = &errb
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "tcpdump to listen", func() bool { return strings.Contains(errb.String(), "listening on") })
	t.Cleanup(c.stop)
	return c
}

func (c *routeCapture) stop() {
	if c.cmd.ProcessState == nil {
		c.cmd.Process.Signal(os.Interrupt)
		c.cmd.Wait()
	}
}

// payloads returns the TCP payloads on port 42029, as text, and the
// number of TLS handshake records tshark recognises.
func (c *routeCapture) payloads(t *testing.T) (string, int) {
	t.Helper()
	c.stop()
	if os.Getenv("KEEP_PCAP") != "" {
		exec.Command("cp", c.file, os.Getenv("KEEP_PCAP")).Run()
	}
	out, err := exec.Command("tshark", "-r", c.file, "-d", "tcp.port==42029,tls", "-Y", "tcp.len>0",
		"-T", "fields", "-e", "tcp.payload", "-e", "tls.handshake.type").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	var text strings.Builder
	handshakes := 0
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if b, err := hex.DecodeString(strings.ReplaceAll(f[0], ":", "")); err == nil {
			text.Write(b)
			text.WriteByte('\n')
		}
		if len(f) > 1 && f[1] != "" {
			handshakes++
		}
	}
	return text.String(), handshakes
}

// plaintextNATS lists NATS protocol lines found in route payloads.
func plaintextNATS(payload string) []string {
	var found []string
	for _, p := range []string{"INFO {", "CONNECT {", "PING\r\n", "RS+ ", "RMSG "} {
		if strings.Contains(payload, p) {
			found = append(found, strings.TrimSpace(p))
		}
	}
	return found
}

// trioTTL is the session TTL of the members startTrio starts.
const trioTTL = 2 * time.Second

// startTrio starts members A, B and C over TLS in the lab's three
// namespaces, each peering with the next, and waits for the full mesh.
func startTrio(t *testing.T, l *netLab) (ms [3]*member) {
	dir := t.TempDir()
	names := []string{"A", "B", "C"}
	writeCerts(t, dir, names...)
	for i := range 3 {
		ms[i] = startMember(t, l.ns[i], memberConfig{
			Name: names[i], Listen: l.addr[i] + ":42029", Peers: []string{l.addr[(i+1)%3] + ":42029"},
			CertDir: dir, TTL: trioTTL, Refresh: 400 * time.Millisecond, Ping: 500 * time.Millisecond,
		})
	}
	waitFor(t, 15*time.Second, "the full mesh", fullMesh(t, ms))
	return ms
}

// fullMesh reports whether each of the three members routes to the two
// others.
func fullMesh(t *testing.T, ms [3]*member) func() bool {
	return func() bool { return ms[0].routes(t) == 2 && ms[1].routes(t) == 2 && ms[2].routes(t) == 2 }
}

// TestNetnsPartition runs three member processes in their own network
// namespaces, cuts member A off at the link level and heals it: sessions
// converge to the same set everywhere, withdrawals made during the
// partition win, and every byte on port 42029 is TLS.
func TestNetnsPartition(t *testing.T) {
	l := newNetLab(t)
	cap := startCapture(t, l)
	ms := startTrio(t, l)
	a, b, c := ms[0], ms[1], ms[2]

	a.must(t, memberRequest{Op: "announce", Session: session("a1", "1001", "10.9.0.1")})
	a.must(t, memberRequest{Op: "announce", Session: session("a2", "1002", "10.9.0.2")})
	b.must(t, memberRequest{Op: "announce", Session: session("b1", "2001", "10.9.1.1")})
	all := func(want string) func() bool {
		return func() bool { return a.sessions(t) == want && b.sessions(t) == want && c.sessions(t) == want }
	}
	waitFor(t, 2*time.Second, "a1,a2,b1 everywhere", all("a1,a2,b1"))

	// Partition: A's port on the bridge goes down. Sessions belong to the
	// cluster: each side keeps (and adopts) the other's.
	testutil.Run(t, "ip", "-n", l.hub, "link", "set", l.port[0], "down")
	cut := time.Now()
	c.must(t, memberRequest{Op: "withdraw", ID: "a2"}) // A cannot hear it
	b.must(t, memberRequest{Op: "announce", Session: session("b2", "2002", "10.9.1.2")})
	adopted := func() bool {
		return a.sessions(t) == "a1,a2,b1" && owner(t, a, "b1") == "A" &&
			b.sessions(t) == "a1,b1,b2" && c.sessions(t) == "a1,b1,b2" &&
			owner(t, c, "a1") != "A" && owner(t, c, "a1") == owner(t, b, "a1")
	}
	for deadline := time.Now().Add(6 * trioTTL); !adopted() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if !adopted() {
		for _, m := range ms {
			t.Logf("member %s log:\n%s", m.name, m.log.String())
		}
		t.Fatalf("A: %s (b1 owned by %s), B: %s, C: %s (a1 owned by %s)", a.sessions(t), owner(t, a, "b1"), b.sessions(t), c.sessions(t), owner(t, c, "a1"))
	}
	t.Logf("partitioned sides adopted each other's sessions %v after the cut", time.Since(cut))

	// Heal.
	testutil.Run(t, "ip", "-n", l.hub, "link", "set", l.port[0], "up")
	healed := time.Now()
	waitFor(t, 20*time.Second, "a1,b1,b2 everywhere after the heal", all("a1,b1,b2"))
	t.Logf("converged %v after the heal", time.Since(healed))
	waitFor(t, 10*time.Second, "the full mesh again", fullMesh(t, ms))

	// Stable: refreshes from A do not bring a2 back, and owners agree.
	time.Sleep(trioTTL)
	owners := map[string]string{}
	for _, m := range ms {
		st := m.must(t, memberRequest{Op: "status"}).Status
		var got []string
		for _, s := range st.Sessions {
			got = append(got, s.ID)
			if o, ok := owners[s.ID]; ok && o != s.Owner {
				t.Errorf("session %s owned by %s on %s but by %s elsewhere", s.ID, s.Owner, m.name, o)
			}
			owners[s.ID] = s.Owner
		}
		if strings.Join(got, ",") != "a1,b1,b2" {
			t.Errorf("member %s holds %v, want a1,b1,b2", m.name, got)
		}
	}

	payload, handshakes := cap.payloads(t)
	if handshakes == 0 {
		t.Fatalf("no TLS handshake seen on port 42029 (%d bytes of payload)", len(payload))
	}
	if found := plaintextNATS(payload); len(found) > 0 {
		t.Fatalf("plaintext NATS protocol on port 42029: %v", found)
	}
	t.Logf("port 42029: %d TLS handshake records, %d payload bytes, no plaintext NATS protocol", handshakes, len(payload))
}

// owner returns the owner of session id on m ("" if m does not hold it).
func owner(t *testing.T, m *member, id string) string {
	for _, s := range m.must(t, memberRequest{Op: "status"}).Status.Sessions {
		if s.ID == id {
			return s.Owner
		}
	}
	return ""
}

// TestNetnsPartitionStopWins: a stop made during a partition wins when it
// heals, however long the partition lasted on the cluster clock (one hour,
// two days), although the cut-off member kept refreshing the session all
// along: tombstones are terminal and outlive the partition.
func TestNetnsPartitionStopWins(t *testing.T) {
	l := newNetLab(t)
	ms := startTrio(t, l)
	a, b, c := ms[0], ms[1], ms[2]
	for _, tc := range []struct {
		id   string
		long time.Duration
	}{{"p-hour", time.Hour + time.Minute}, {"p-2days", 48 * time.Hour}} {
		a.must(t, memberRequest{Op: "announce", Session: session(tc.id, "1001", "10.9.0.1")})
		waitFor(t, 2*time.Second, tc.id+" everywhere", func() bool {
			return a.sessions(t) == tc.id && b.sessions(t) == tc.id && c.sessions(t) == tc.id
		})
		testutil.Run(t, "ip", "-n", l.hub, "link", "set", l.port[0], "down")
		cut := time.Now()
		waitFor(t, 4*trioTTL, "B to adopt "+tc.id, func() bool { return owner(t, b, tc.id) == "B" && owner(t, c, tc.id) == "B" })
		t.Logf("%s: B adopted the session of partitioned A %v after the cut", tc.id, time.Since(cut))
		b.must(t, memberRequest{Op: "withdraw", ID: tc.id})
		waitFor(t, time.Second, tc.id+" gone from B and C", func() bool { return b.sessions(t) == "" && c.sessions(t) == "" })
		for _, m := range ms {
			m.must(t, memberRequest{Op: "advance", By: tc.long})
		}
		time.Sleep(2 * trioTTL) // A keeps refreshing its session, on the new clock
		if owner(t, a, tc.id) != "A" {
			t.Fatalf("%s: partitioned A does not own its session any more", tc.id)
		}
		testutil.Run(t, "ip", "-n", l.hub, "link", "set", l.port[0], "up")
		healed := time.Now()
		waitFor(t, 20*time.Second, tc.id+" gone from A after the heal", func() bool { return a.sessions(t) == "" })
		t.Logf("%s: partition of %v on the cluster clock healed; the stop reached A %v after the link came back", tc.id, tc.long, time.Since(healed))
		waitFor(t, 10*time.Second, "the full mesh again", fullMesh(t, ms))
		for range 10 { // it never comes back
			time.Sleep(trioTTL / 4)
			for _, m := range ms {
				if got := m.sessions(t); got != "" {
					t.Fatalf("%s: member %s holds %q after the heal", tc.id, m.name, got)
				}
			}
		}
		ends := a.must(t, memberRequest{Op: "ends"}).Ends
		if !slices.Contains(ends, End{ID: tc.id, Reason: ReasonStopped}) {
			t.Errorf("%s: A's ends %v, want %s stopped", tc.id, ends, tc.id)
		}
	}
}

// TestNetnsPlaintextVisible is the control for the TLS check above: with
// --insecure routes the same capture does show NATS protocol lines.
func TestNetnsPlaintextVisible(t *testing.T) {
	l := newNetLab(t)
	cap := startCapture(t, l)
	a := startMember(t, l.ns[0], memberConfig{Name: "A", Listen: l.addr[0] + ":42029", Peers: []string{l.addr[1] + ":42029"}, Insecure: true})
	b := startMember(t, l.ns[1], memberConfig{Name: "B", Listen: l.addr[1] + ":42029", Insecure: true})
	waitFor(t, 10*time.Second, "the route", func() bool { return a.routes(t) == 1 && b.routes(t) == 1 })
	a.must(t, memberRequest{Op: "announce", Session: session("x", "1", "10.9.0.1")})
	waitFor(t, 2*time.Second, "x on B", func() bool { return b.sessions(t) == "x" })
	payload, _ := cap.payloads(t)
	found := plaintextNATS(payload)
	if !slices.Contains(found, "INFO {") || !slices.Contains(found, "CONNECT {") {
		t.Fatalf("plaintext capture shows %v; the TLS check could not tell; payload %d bytes: %.300q", found, len(payload), payload)
	}
	if !strings.Contains(payload, `"agent":"1"`) {
		t.Fatalf("session data not visible in the plaintext capture")
	}
}
