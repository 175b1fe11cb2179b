package e2e

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/silentmon/silentmon/relay"
)

// TestRequestsSurviveCuts: smctl monitor start, status and monitor stop
// through a proxy that breaks the socket at each point of the request
// (at the connect, before the request, before the reply, after the
// reply), with a second --server behind it: smctl's exit code tells the
// truth, and the real smserver holds exactly the one session between
// start and stop, none after.
func TestRequestsSurviveCuts(t *testing.T) {
	pcap, _ := writeCapture(t, 1, time.Second)
	srvAddr := freeAddr(t)
	srv := start(t, "smserver", "--cluster-listen", "127.0.0.1:0", "--pcap", pcap, "--pcap-wait-session",
		"--listen", srvAddr, "--insecure", "--metrics-listen", freeAddr(t))
	ctl := func(server string, args ...string) (string, string, int) {
		so, se, code := runCmd(t, nil, "smctl", append(args, "--server", server, "--insecure", "--timeout", "10s")...)
		return strings.TrimSpace(so), se, code
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, _, code := ctl(srvAddr, "status"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("smserver not ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	sessions := func() []string {
		so, se, code := ctl(srvAddr, "status", "--json")
		if code != 0 {
			t.Fatalf("status exited %d: %s", code, se)
		}
		var st struct {
			Sessions []struct {
				ID string `json:"id"`
			} `json:"sessions"`
		}
		if err := json.Unmarshal([]byte(so), &st); err != nil {
			t.Fatalf("status --json: %v", err)
		}
		var ids []string
		for _, s := range st.Sessions {
			ids = append(ids, s.ID)
		}
		return ids
	}
	for _, at := range []cutPoint{cutAtConnect, cutBeforeRequest, cutBeforeReply, cutAfterReply} {
		t.Run(at.String(), func(t *testing.T) {
			px := newCutProxy(t, srvAddr, at, relay.MsgStartMonitor, 1)
			id, se, code := ctl(px.addr(), "monitor", "start", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9")
			if code != 0 {
				t.Fatalf("monitor start exited %d: %s", code, se)
			}
			if got := sessions(); len(got) != 1 || got[0] != id {
				t.Fatalf("sessions %v after the start, want exactly %s", got, id)
			}
			px = newCutProxy(t, srvAddr, at, relay.MsgStatus, 1)
			if _, se, code := ctl(px.addr(), "status"); code != 0 {
				t.Fatalf("status exited %d: %s", code, se)
			}
			px = newCutProxy(t, srvAddr, at, relay.MsgStopMonitor, 1)
			so, se, code := ctl(px.addr(), "monitor", "stop", "--session", id)
			if code != 0 || so != "stopped "+id {
				t.Fatalf("monitor stop exited %d, printed %q: %s", code, so, se)
			}
			if got := sessions(); len(got) != 0 {
				t.Fatalf("sessions %v after the stop", got)
			}
		})
	}
	// A path as a session id is refused by smctl (exit 2) and by the
	// server (exit 1 from a re-assertion is not reachable from smctl).
	if _, se, code := ctl(srvAddr, "monitor", "stop", "--session", "x/../../outside/pwned"); code != 2 || !strings.Contains(se, "x/../../outside/pwned") {
		t.Fatalf("stop of a path exited %d: %s", code, se)
	}
	if _, se, code := ctl(srvAddr, "monitor", "start", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9", "--for", "31d"); code != 2 {
		t.Fatalf("--for 31d exited %d: %s", code, se)
	}
	if _, se, code := ctl(srvAddr, "monitor", "start", "--agent", "1001", "--endpoint", "10.10.0.1", "--supervisor", "127.0.0.1:9", "--for", "800h"); code != 2 {
		t.Fatalf("--for 800h exited %d: %s", code, se)
	}
	srv.stop(t, syscall.SIGTERM)
}

// Where cutProxy breaks the first connections it carries.
type cutPoint int

const (
	cutAtConnect     cutPoint = iota // the reply is dropped, then the next connection closed as soon as accepted
	cutBeforeRequest                 // the request frame is not forwarded
	cutBeforeReply                   // the request reached the server; its reply is dropped
	cutAfterReply                    // the reply is forwarded, then the connection closed
)

func (c cutPoint) String() string {
	return [...]string{"at connect", "before the request", "before the reply", "after the reply"}[c]
}

// cutProxy carries plaintext relay connections to a backend frame by
// frame and breaks the first cuts requests of type msg at a point; later
// requests pass untouched. cutAtConnect breaks the request before its
// reply and then the client's next connection at once, before its hello:
// the client sends the request again after a failed connect. (Dial itself
// does not try a plaintext server again on the same address after a
// socket closed in the hello, which is what a TLS listener does to a
// plaintext client: see relay.ClientConfig.DialRetry.)
type cutProxy struct {
	ln      net.Listener
	backend string
	at      cutPoint
	msg     relay.MsgType

	mu       sync.Mutex
	cuts     int // requests still to cut
	connCuts int // connections to close at once
	wg       sync.WaitGroup
}

func newCutProxy(t *testing.T, backend string, at cutPoint, msg relay.MsgType, cuts int) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, backend: backend, at: at, msg: msg, cuts: cuts}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
		if p.cuts != 0 || p.connCuts != 0 {
			t.Errorf("the proxy did not cut %s", at)
		}
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		cut := p.connCuts > 0
		if cut {
			p.connCuts--
		}
		p.mu.Unlock()
		if cut {
			c.Close()
			continue
		}
		b, err := net.Dial("tcp", p.backend)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.carry(c, b)
	}
}

// take reports whether this request is to be cut, counting the cut.
func (p *cutProxy) take() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cuts > 0 {
		p.cuts--
		if p.at == cutAtConnect {
			p.connCuts++
		}
		return true
	}
	return false
}

func readFrame(r io.Reader) (relay.MsgType, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > 1<<20 {
		return 0, nil, errors.New("bad frame length")
	}
	b := make([]byte, 4+n)
	copy(b, hdr[:])
	if _, err := io.ReadFull(r, b[4:]); err != nil {
		return 0, nil, err
	}
	return relay.MsgType(b[4]), b, nil
}

func (p *cutProxy) carry(c, b net.Conn) {
	defer p.wg.Done()
	var once sync.Once
	closeBoth := func() { once.Do(func() { c.Close(); b.Close() }) }
	defer closeBoth()
	requested := make(chan struct{})
	done := make(chan struct{})
	go func() { // client → server
		defer close(done)
		defer closeBoth()
		cutting := false
		for {
			t, f, err := readFrame(c)
			if err != nil {
				return
			}
			if !cutting && t == p.msg && p.take() {
				if p.at == cutBeforeRequest {
					return
				}
				cutting = true
				close(requested)
			}
			if _, err := b.Write(f); err != nil {
				return
			}
		}
	}()
	for { // server → client
		t, f, err := readFrame(b)
		if err != nil {
			break
		}
		isReply := t == relay.MsgSessionStatus || t == relay.MsgStatusReply || t == relay.MsgError
		cut := false
		select {
		case <-requested:
			cut = isReply
		default:
		}
		if cut && (p.at == cutBeforeReply || p.at == cutAtConnect) {
			break
		}
		if _, err := c.Write(f); err != nil {
			break
		}
		if cut && p.at == cutAfterReply {
			break
		}
	}
	closeBoth()
	<-done
}
