package nic_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/nic"
	"github.com/silentmon/silentmon/internal/nic/nictest"
	"github.com/silentmon/silentmon/internal/testutil"
)

// TestSelftestVeth runs the selftest across a veth pair between two
// namespaces, with the bench changed by real kernel features, and checks
// the verdict and the diagnosis.
func TestSelftestVeth(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip", "ethtool")
	tests := []struct {
		name      string
		setup     func(t *testing.T, p *nictest.Pair)
		verdict   string
		code      string
		tagged    int
		untagged  int
		wrongVLAN int
	}{
		{name: "rx-vlan-offload on", verdict: nic.Pass, code: nic.CodeTagOutOfBand, tagged: 5,
			setup: func(t *testing.T, p *nictest.Pair) { nictest.Ethtool(t, p.NsB, "-K", p.B, "rxvlan", "on") }},
		{name: "rx-vlan-offload off", verdict: nic.Pass, code: nic.CodeTagOutOfBand, tagged: 5,
			setup: func(t *testing.T, p *nictest.Pair) { nictest.Ethtool(t, p.NsB, "-K", p.B, "rxvlan", "off") }},
		{name: "tx-vlan-offload off", verdict: nic.Pass, code: nic.CodeTagOutOfBand, tagged: 5,
			setup: func(t *testing.T, p *nictest.Pair) { nictest.Ethtool(t, p.NsA, "-K", p.A, "txvlan", "off") }},
		{name: "tag popped on the way", verdict: nic.Fail, code: nic.CodeTagStripped, untagged: 5,
			setup: func(t *testing.T, p *nictest.Pair) { nictest.PopVLAN(t, p.NsA, p.A) }},
		{name: "tag rewritten to VLAN 86", verdict: nic.Fail, code: nic.CodeWrongVLAN, wrongVLAN: 5,
			setup: func(t *testing.T, p *nictest.Pair) { nictest.RewriteVLAN(t, p.NsA, p.A, 86, 5) }},
	}
	for _, engine := range []string{nic.EngineSocket, nic.EngineRing} {
		for _, tt := range tests {
			t.Run(engine+"/"+tt.name, func(t *testing.T) {
				p := nictest.NewPair(t)
				tt.setup(t, p)
				res, err := nic.Selftest(context.Background(), nic.SelftestConfig{
					Tx: p.A, TxOptions: nic.Options{Netns: p.NsA},
					Rx: p.B, RxOptions: nic.Options{Netns: p.NsB},
					Interval: 5 * time.Millisecond, Wait: time.Second, Engine: engine,
				})
				if err != nil {
					t.Fatal(err)
				}
				c := res.Counts
				if res.Verdict != tt.verdict || res.Diagnosis.Code != tt.code ||
					c.Tagged != tt.tagged || c.Untagged != tt.untagged || c.WrongVLAN != tt.wrongVLAN || res.Sent != 5 {
					t.Fatalf("got %s %s (sent %d, counts %+v), want %s %s with tagged %d untagged %d wrong %d\n%s",
						res.Verdict, res.Diagnosis.Code, res.Sent, c, tt.verdict, tt.code, tt.tagged, tt.untagged, tt.wrongVLAN, res.Diagnosis.Summary)
				}
				if tt.verdict == nic.Fail && (res.Diagnosis.Cause == "" || res.Diagnosis.Fix == "") {
					t.Errorf("FAIL without cause or fix: %+v", res.Diagnosis)
				}
				if res.Rx == nil || res.Rx.Driver != "veth" || res.Rx.Features == nil {
					t.Errorf("rx state not read: %+v", res.Rx)
				}
				if res.Engine != engine {
					t.Errorf("engine %q, want %q", res.Engine, engine)
				}
			})
		}
	}
}

func TestListenLinkDown(t *testing.T) {
	testutil.NeedRoot(t)
	p := nictest.NewPair(t)
	testutil.Run(t, "ip", "-n", p.NsA, "link", "set", p.A, "down")
	p.WaitOperState(t, p.NsB, p.B, "down")
	start := time.Now()
	res, err := nic.Listen(context.Background(), nic.ListenConfig{Interface: p.B, Options: nic.Options{Netns: p.NsB}, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < 300*time.Millisecond || el > 3*time.Second {
		t.Errorf("listen took %v with a 300ms timeout", el)
	}
	if res.Verdict != nic.Fail || res.Diagnosis.Code != nic.CodeNoCarrier {
		t.Fatalf("got %s %s: %s", res.Verdict, res.Diagnosis.Code, res.Diagnosis.Summary)
	}
	if res.Rx == nil || res.Rx.Running || !res.Rx.Up {
		t.Errorf("rx state %+v, want up without carrier", res.Rx)
	}
}

func TestListenInterfaceDown(t *testing.T) {
	testutil.NeedRoot(t)
	p := nictest.NewPair(t)
	testutil.Run(t, "ip", "-n", p.NsB, "link", "set", p.B, "down")
	res, err := nic.Listen(context.Background(), nic.ListenConfig{Interface: p.B, Options: nic.Options{Netns: p.NsB}, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Diagnosis.Code != nic.CodeInterfaceDown {
		t.Fatalf("got %s %s: %s", res.Verdict, res.Diagnosis.Code, res.Diagnosis.Summary)
	}
}

// TestListenCountAndSend checks that Listen stops as soon as Count tagged
// frames arrived, well before its timeout, and counts frames sent by Send.
func TestListenCountAndSend(t *testing.T) {
	testutil.NeedRoot(t)
	p := nictest.NewPair(t)
	ready := make(chan struct{})
	var (
		res  *nic.Result
		lerr error
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		res, lerr = nic.Listen(context.Background(), nic.ListenConfig{Interface: p.B, Options: nic.Options{Netns: p.NsB},
			Count: 3, Timeout: 10 * time.Second, Ready: func() { close(ready) }})
	}()
	<-ready
	start := time.Now()
	sres, err := nic.Send(context.Background(), nic.SendConfig{Interface: p.A, Options: nic.Options{Netns: p.NsA}, Count: 3, Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if lerr != nil {
		t.Fatal(lerr)
	}
	if sres.Sent != 3 || res.Verdict != nic.Pass || res.Counts.Tagged != 3 {
		t.Fatalf("sent %d, got %s with counts %+v", sres.Sent, res.Verdict, res.Counts)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("listen returned after %v, not when the count was reached", el)
	}
	for _, f := range res.Frames {
		if !f.Test || f.Marker.RunID != sres.RunID || f.DstMAC != "ff:ff:ff:ff:ff:ff" {
			t.Errorf("frame %+v, want a broadcast test frame of run %x", f, sres.RunID)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	testutil.NeedRoot(t)
	for _, name := range []string{"smnic-nope0", "", "a-name-longer-than-15"} {
		if _, err := nic.OpenReceiver(name, nic.Options{}); !errors.Is(err, nic.ErrNoInterface) {
			t.Errorf("OpenReceiver(%q) = %v, want ErrNoInterface", name, err)
		}
		if _, err := nic.OpenSender(name, nic.Options{}); !errors.Is(err, nic.ErrNoInterface) {
			t.Errorf("OpenSender(%q) = %v, want ErrNoInterface", name, err)
		}
	}
	if _, err := nic.ReadState("lo", nic.Options{Netns: "smnic-no-such-ns"}); err == nil {
		t.Error("ReadState in a missing namespace succeeded")
	}
}
