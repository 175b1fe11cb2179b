//go:build linux

package bench

import (
	"testing"
	"time"

	"github.com/gopacket/gopacket/afpacket"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/capture/capturetest"
	"github.com/silentmon/silentmon/internal/testutil"
)

// ringChunk is how many frames are queued in the ring, outside the timer,
// before each timed read: fewer than the veth backlog (netdev_max_backlog,
// 1000) holds, so the kernel drops none before they reach the ring.
const ringChunk = 500

// BenchmarkCaptureRing compares reading a TPACKET_V3 ring with the live
// source of package capture and with gopacket's afpacket (zero-copy reads,
// VLAN from the ancillary data), one frame per op: 218-byte VLAN-tagged
// G.711 frames the kernel has already queued in the ring, read and their
// VLAN tag looked at. Needs root.
func BenchmarkCaptureRing(b *testing.B) {
	testutil.NeedRoot(b)
	testutil.NeedTool(b, "ip")
	frames, _, _ := loadPacketPath(b)
	frame := frames[0]
	v := testutil.NewVethPair(b, "smb")

	b.Run("capture.LiveSource", func(b *testing.B) {
		var live *capture.Live
		if err := testutil.InNetns(v.NsRx, func() (err error) {
			live, err = capture.OpenLive(capture.LiveConfig{Interface: v.IfRx, BlockTimeout: time.Millisecond})
			return err
		}); err != nil {
			b.Fatal(err)
		}
		defer live.Close()
		// Should the kernel drop a frame before the ring, fail rather than
		// wait for ever.
		watchdog := time.AfterFunc(time.Minute, func() { live.Close() })
		defer watchdog.Stop()
		src := live.Sources()[0]
		fb := make([][]byte, 512)
		ib := make([]capture.Info, 512)
		readChunks(b, v, frame, func(chunk int) (vlans int) {
			for got := 0; got < chunk; {
				n, err := src.ReadBatch(fb, ib)
				if err != nil {
					b.Fatal(err)
				}
				for i := 0; i < n; i++ {
					if ib[i].VLANValid && ib[i].VLANTCI&0xfff == 85 {
						vlans++
					}
				}
				got += n
			}
			return vlans
		})
	})
	b.Run("gopacket.afpacket", func(b *testing.B) {
		var tp *afpacket.TPacket
		if err := testutil.InNetns(v.NsRx, func() (err error) {
			tp, err = afpacket.NewTPacket(afpacket.OptInterface(v.IfRx), afpacket.TPacketVersion3,
				afpacket.OptBlockSize(1<<20), afpacket.OptNumBlocks(64), afpacket.OptFrameSize(2048),
				afpacket.OptBlockTimeout(time.Millisecond), afpacket.OptPollTimeout(10*time.Second))
			return err
		}); err != nil {
			b.Fatal(err)
		}
		defer tp.Close()
		readChunks(b, v, frame, func(chunk int) (vlans int) {
			for got := 0; got < chunk; got++ {
				_, ci, err := tp.ZeroCopyReadPacketData()
				if err != nil {
					b.Fatal(err)
				}
				for _, a := range ci.AncillaryData {
					if av, ok := a.(afpacket.AncillaryVLAN); ok && av.VLAN == 85 {
						vlans++
					}
				}
			}
			return vlans
		})
	})
}

// readChunks times reading b.N copies of frame from a ring on v.IfRx: it
// has the kernel queue them ringChunk at a time, outside the timer, and
// times read, which must take chunk frames from the ring and return how
// many carried VLAN 85. It fails b unless every frame did.
func readChunks(b *testing.B, v *testutil.VethPair, frame []byte, read func(chunk int) (vlans int)) {
	vlans := 0
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		chunk := min(ringChunk, b.N-done)
		b.StopTimer()
		if err := capturetest.SendRaw(v.NsTx, v.IfTx, chunk, frame); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		vlans += read(chunk)
		done += chunk
	}
	b.StopTimer()
	if vlans < b.N {
		b.Fatalf("%d of %d frames had VLAN 85", vlans, b.N)
	}
}
