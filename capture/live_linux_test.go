//go:build linux

package capture_test

import (
	"errors"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/internal/testutil"
)

// TestLiveDecodeCases sends one frame of each kind through a veth and
// checks what the live source reports: tags stripped by the kernel come
// back from the ring's header with their priority, inner tags from the
// frame, and the BPF filter keeps non-UDP frames out of the ring.
func TestLiveDecodeCases(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip")
	v := testutil.NewVethPair(t, "smc")
	var live *capture.Live
	if err := testutil.InNetns(v.NsRx, func() (err error) {
		live, err = capture.OpenLive(capture.LiveConfig{Interface: v.IfRx, BlockTimeout: time.Millisecond, BlockSize: 1 << 16, NumBlocks: 8})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	// A packet socket's promiscuous membership raises the promiscuity
	// count (IFF_PROMISC as user-set stays off).
	out, _ := exec.Command("ip", "-d", "-n", v.NsRx, "link", "show", v.IfRx).CombinedOutput()
	if !strings.Contains(string(out), "promiscuity 1") {
		t.Errorf("interface not promiscuous while capturing: %s", out)
	}
	foreign := [6]byte{0x02, 0x99, 0x99, 0x99, 0x99, 0x99} // not the interface's MAC
	cases := []struct {
		name  string
		frame capturetest.Frame
		vlans []capture.VLANTag
	}{
		{"untagged", capturetest.Frame{DstMAC: foreign, RTP: rtp(1), Payload: payload160}, nil},
		{"802.1Q priority 5", capturetest.Frame{DstMAC: foreign, VLANs: []capture.VLANTag{tag(0x8100, 5, 85)}, RTP: rtp(2), Payload: payload160}, []capture.VLANTag{tag(0x8100, 5, 85)}},
		{"QinQ", capturetest.Frame{DstMAC: foreign, VLANs: []capture.VLANTag{tag(0x88a8, 3, 300), tag(0x8100, 6, 85)}, RTP: rtp(3), Payload: payload160}, []capture.VLANTag{tag(0x88a8, 3, 300), tag(0x8100, 6, 85)}},
		{"IPv6 802.1Q", capturetest.Frame{DstMAC: foreign, VLANs: []capture.VLANTag{tag(0x8100, 7, 4000)}, Src: v6a, Dst: v6b, RTP: rtp(4), Payload: payload160}, []capture.VLANTag{tag(0x8100, 7, 4000)}},
	}
	var frames [][]byte
	for _, c := range cases {
		frames = append(frames, capturetest.Build(c.frame))
	}
	// Frames the filter must drop: ARP and TCP.
	arp := capturetest.Build(capturetest.Frame{DstMAC: foreign, Payload: payload160})
	arp[12], arp[13] = 0x08, 0x06
	tcp := capturetest.Build(capturetest.Frame{DstMAC: foreign, Src: netip.MustParseAddrPort("10.0.0.1:1"), Payload: payload160[:40]})
	tcp[14+9] = 6
	if err := capturetest.SendRaw(v.NsTx, v.IfTx, 1, arp, tcp); err != nil {
		t.Fatalf("send: %v", err)
	}
	if err := capturetest.SendRaw(v.NsTx, v.IfTx, 1, frames...); err != nil {
		t.Fatalf("send: %v", err)
	}

	src := live.Sources()[0]
	fb := make([][]byte, 16)
	ib := make([]capture.Info, 16)
	got := 0
	timer := time.AfterFunc(5*time.Second, func() { live.Close() })
	defer timer.Stop()
	for got < len(cases) {
		n, err := src.ReadBatch(fb, ib)
		if err != nil {
			t.Fatalf("after %d frames: %v", got, err)
		}
		for i := 0; i < n; i++ {
			var p capture.Packet
			if err := p.Decode(fb[i], src.LinkType(), &ib[i]); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if p.Kind != capture.KindRTP {
				t.Fatalf("frame %d: kind %d; the filter let a non-UDP frame through", got, p.Kind)
			}
			c := cases[p.RTP.SequenceNumber-1]
			if p.NumVLANs != len(c.vlans) {
				t.Errorf("%s: %d tags, want %d", c.name, p.NumVLANs, len(c.vlans))
			}
			for j := range c.vlans {
				if p.VLANs[j].ID() != c.vlans[j].ID() || p.VLANs[j].Priority() != c.vlans[j].Priority() || p.VLANs[j].TPID != c.vlans[j].TPID {
					t.Errorf("%s: tag %d = %+v, want %+v", c.name, j, p.VLANs[j], c.vlans[j])
				}
			}
			if len(c.vlans) > 0 && !ib[i].VLANValid {
				t.Errorf("%s: the kernel did not report the stripped tag", c.name)
			}
			got++
		}
	}
	st := live.Stats()
	if st.Packets != uint64(len(cases)) || st.Drops != 0 {
		t.Errorf("kernel stats %+v, want %d packets (ARP and TCP filtered out), 0 drops", st, len(cases))
	}
}

// TestLiveCloseUnblocks checks that Close stops a ReadBatch blocked on an
// idle interface, and that a bad interface name is one clear error.
func TestLiveCloseUnblocks(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "ip")
	v := testutil.NewVethPair(t, "smc")
	var live *capture.Live
	if err := testutil.InNetns(v.NsRx, func() (err error) {
		live, err = capture.OpenLive(capture.LiveConfig{Interface: v.IfRx, Workers: 3, BlockSize: 1 << 16, NumBlocks: 4})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(live.Sources()) != 3 {
		t.Fatalf("%d sources, want 3", len(live.Sources()))
	}
	done := make(chan error, 3)
	for _, s := range live.Sources() {
		go func(s *capture.LiveSource) {
			_, err := s.ReadBatch(make([][]byte, 4), make([]capture.Info, 4))
			done <- err
		}(s)
	}
	time.Sleep(20 * time.Millisecond)
	live.Close()
	for i := 0; i < 3; i++ {
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("ReadBatch after Close: %v, want net.ErrClosed", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("Close did not unblock ReadBatch")
		}
	}
	_, err := capture.OpenLive(capture.LiveConfig{Interface: "nosuchif0"})
	if err == nil || !strings.Contains(err.Error(), `"nosuchif0"`) {
		t.Errorf("OpenLive on a missing interface: %v", err)
	}
	_, err = capture.OpenLive(capture.LiveConfig{Interface: "lo", BlockSize: 1000})
	if err == nil || !strings.Contains(err.Error(), "1000") {
		t.Errorf("OpenLive with a bad block size: %v", err)
	}
}
