package relay

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/testutil"
)

// listenInNetns opens a TCP listener on addr inside network namespace ns.
func listenInNetns(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := testutil.InNetns(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		t.Fatalf("listen in namespace %s: %v", ns, err)
	}
	return ln
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
	testutil.Run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", host).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	// A /30 that exists only on this veth pair and inside the namespace.
	octet := 1 + int(id%250)
	hostIP, srvIP := fmt.Sprintf("10.254.%d.1", octet), fmt.Sprintf("10.254.%d.2", octet)
	testutil.Run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", ns)
	testutil.Run(t, "ip", "addr", "add", hostIP+"/30", "dev", host)
	testutil.Run(t, "ip", "link", "set", host, "up")
	testutil.Run(t, "ip", "-n", ns, "addr", "add", srvIP+"/30", "dev", peer)
	testutil.Run(t, "ip", "-n", ns, "link", "set", peer, "up")

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
	testutil.Run(t, "ip", "link", "set", host, "down")
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
