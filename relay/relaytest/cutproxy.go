// Package relaytest holds test doubles for the relay protocol: a proxy
// that breaks connections at chosen points of a request, to test that
// clients retry truthfully and servers never make a request twice.
package relaytest

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"testing"

	"github.com/silentmon/silentmon/relay"
)

// CutPoint says where a CutProxy breaks the first connections it carries.
type CutPoint int

const (
	CutAtConnect     CutPoint = iota // the reply is dropped, then the next connection closed as soon as accepted
	CutBeforeRequest                 // the request frame is not forwarded
	CutBeforeReply                   // the request reached the server; its reply is dropped
	CutAfterReply                    // the reply is forwarded, then the connection closed
)

func (c CutPoint) String() string {
	return [...]string{"at connect", "before the request", "before the reply", "after the reply"}[c]
}

// CutProxy carries plaintext relay.connections to a backend frame by
// frame and breaks the first cuts requests of type msg at a point; later
// requests pass untouched. CutAtConnect breaks the request before its
// reply and then the client's next connection at once, before its hello:
// the client sends the request again after a failed connect. (Dial itself
// does not try a plaintext server again on the same address after a
// socket closed in the hello, which is what a TLS listener does to a
// plaintext client: see relay.ClientConfig.DialRetry.)
type CutProxy struct {
	ln      net.Listener
	backend string
	at      CutPoint
	msg     relay.MsgType

	mu       sync.Mutex
	cuts     int // requests still to cut
	connCuts int // connections to close at once
	wg       sync.WaitGroup
}

func NewCutProxy(t testing.TB, backend string, at CutPoint, msg relay.MsgType, cuts int) *CutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{ln: ln, backend: backend, at: at, msg: msg, cuts: cuts}
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

// Addr is the address clients dial instead of the backend.
func (p *CutProxy) Addr() string { return p.ln.Addr().String() }

func (p *CutProxy) accept() {
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
func (p *CutProxy) take() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cuts > 0 {
		p.cuts--
		if p.at == CutAtConnect {
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

func (p *CutProxy) carry(c, b net.Conn) {
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
				if p.at == CutBeforeRequest {
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
		if cut && (p.at == CutBeforeReply || p.at == CutAtConnect) {
			break
		}
		if _, err := c.Write(f); err != nil {
			break
		}
		if cut && p.at == CutAfterReply {
			break
		}
	}
	closeBoth()
	<-done
}
