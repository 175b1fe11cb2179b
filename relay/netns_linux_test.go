package relay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silentmon/silentmon/internal/testutil"
)

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
}

// listenInNetns opens a TCP listener on addr inside network namespace ns.
func listenInNetns(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result)
	go func() {
		// This thread enters the namespace and is never handed back to
		// the scheduler (the goroutine exits locked, so the thread ends).
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{err: err}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("listen in namespace %s: %v", ns, r.err)
	}
	return r.ln
}

// TestClientDetectsBlackholedServer: the server sits behind a veth whose
// link goes down — no RST, no FIN, the socket stays open — and the client
// gives it up after HeartbeatRetries unanswered heartbeats and fails over.
func TestClientDetectsBlackholedServer(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip")
	id := rand.Uint32() & 0xffffff
	ns := fmt.Sprintf("smhb%06x", id)
	host, peer := fmt.Sprintf("smhbh%06x", id), fmt.Sprintf("smhbp%06x", id)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", host).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	// A /30 that exists only on this veth pair and inside the namespace.
	octet := 1 + int(id%250)
	hostIP, srvIP := fmt.Sprintf("10.254.%d.1", octet), fmt.Sprintf("10.254.%d.2", octet)
	run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
	run(t, "ip", "addr", "add", hostIP+"/30", "dev", host)
	run(t, "ip", "link", "set", host, "up")
	run(t, "ip", "-n", ns, "addr", "add", srvIP+"/30", "dev", peer)
	run(t, "ip", "-n", ns, "link", "set", peer, "up")

	remote := listenInNetns(t, ns, srvIP+":0")
	rs := NewServer(ServerConfig{Handler: &testHandler{}, Logger: quiet(), HeartbeatTimeout: time.Minute})
	go rs.Serve(remote)
	defer rs.Close()
	h := &testHandler{}
	_, local := startServer(t, h, ServerConfig{})

	const interval = 100 * time.Millisecond
	// The client picks a server at random: keep the one that picked the
	// server behind the veth.
	var cl *Client
	for i := 0; i < 50 && cl == nil; i++ {
		c, err := Dial(context.Background(), ClientConfig{Servers: []string{remote.Addr().String(), local}, Logger: quiet(),
			HeartbeatInterval: interval, HeartbeatRetries: 5, Dial: DialConfig{Timeout: 300 * time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		if c.Server() == remote.Addr().String() {
			cl = c
		} else {
			c.Close()
		}
	}
	if cl == nil {
		t.Fatal("the client never picked the remote server")
	}
	defer cl.Close()
	if _, err := cl.StartMonitor(context.Background(), StartMonitor{Agent: "1001", Endpoints: []string{"10.10.0.1"}}); err != nil {
		t.Fatal(err)
	}
	// Let heartbeats flow, then cut the link: the socket does not break.
	time.Sleep(3 * interval)
	cut := time.Now()
	run(t, "ip", "link", "set", host, "down")
	for {
		h.mu.Lock()
		n := len(h.started)
		h.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Since(cut) > 10*time.Second {
			t.Fatalf("client did not give up the blackholed server (on %s)", cl.Server())
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(cut)
	if took < 5*interval {
		t.Fatalf("gave up after %v, before 5 heartbeats of %v", took, interval)
	}
	if took > 8*interval+time.Second {
		t.Fatalf("gave up after %v, long after 5 heartbeats of %v", took, interval)
	}
	t.Logf("blackholed server given up after %v (5 heartbeats of %v); session re-asserted on %s", took, interval, cl.Server())
}
