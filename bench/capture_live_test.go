//go:build linux

package bench

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/testutil"
)

// TestLiveVethTcpreplay replays a generator capture of 1,000 VLAN-tagged
// calls with tcpreplay into one end of a veth pair and checks that the live
// source on the other end sees every RTP packet, with the VLAN ID and
// priority the kernel stripped, and no kernel drops; with rx-vlan-offload
// on and off.
func TestLiveVethTcpreplay(t *testing.T) {
	testutil.NeedRoot(t)
	testutil.NeedTool(t, "tcpreplay", "ip", "ethtool")
	if testing.Short() {
		t.Skip("skipping the 1,000-call replay in -short mode")
	}
	const calls, vlan, prio = 1000, 85, 5
	built, err := gen.Build(gen.BuildConfig{Calls: calls, VLAN: vlan, Priority: prio, Duration: 2 * time.Second, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "calls.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := gen.Write(f, &gen.Config{Calls: built, Seed: 3})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := uint64(res.Frames)

	for _, offload := range []string{"on", "off"} {
		t.Run("rx-vlan-offload "+offload, func(t *testing.T) {
			v := testutil.NewVethPair(t, "smb")
			if out, err := exec.Command("ip", "netns", "exec", v.NsRx, "ethtool", "-K", v.IfRx, "rxvlan", offload).CombinedOutput(); err != nil {
				t.Logf("ethtool -K %s rxvlan %s: %v: %s (the kernel strips the tag in software anyway)", v.IfRx, offload, err, strings.TrimSpace(string(out)))
			}
			var live *capture.Live
			err := testutil.InNetns(v.NsRx, func() (err error) {
				live, err = capture.OpenLive(capture.LiveConfig{Interface: v.IfRx, Workers: 2, BlockTimeout: 5 * time.Millisecond})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			var rtp, badVLAN, other atomic.Uint64
			var wg sync.WaitGroup
			tables := make([]*capture.StreamTable, len(live.Sources()))
			for i, src := range live.Sources() {
				tables[i] = capture.NewStreamTable(capture.StreamTableConfig{Drops: live.DropCounter()})
				wg.Add(1)
				go func(src *capture.LiveSource, tab *capture.StreamTable) {
					defer wg.Done()
					frames := make([][]byte, 256)
					infos := make([]capture.Info, 256)
					var p capture.Packet
					for {
						n, err := src.ReadBatch(frames, infos)
						if err != nil {
							if !errors.Is(err, net.ErrClosed) {
								t.Errorf("ReadBatch: %v", err)
							}
							return
						}
						for j := 0; j < n; j++ {
							if p.Decode(frames[j], src.LinkType(), &infos[j]) != nil || p.Kind != capture.KindRTP {
								other.Add(1)
								continue
							}
							rtp.Add(1)
							if tg, ok := p.OuterVLAN(); !ok || tg.ID() != vlan || tg.Priority() != prio {
								badVLAN.Add(1)
							}
							tab.Update(&p, infos[j].Timestamp)
						}
					}
				}(src, tables[i])
			}
			out, err := exec.Command("ip", "netns", "exec", v.NsTx, "tcpreplay", "-q", "-K", "--pps=300000", "-i", v.IfTx, path).CombinedOutput()
			if err != nil {
				live.Close()
				wg.Wait()
				t.Fatalf("tcpreplay: %v: %s", err, out)
			}
			deadline := time.Now().Add(5 * time.Second)
			for rtp.Load() < want && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond) // anything extra would show
			st := live.Stats()
			live.Close()
			wg.Wait()
			streams := 0
			for _, tab := range tables {
				for _, s := range tab.Snapshot(nil) {
					streams++
					if s.Lost != 0 || s.Duplicates != 0 {
						t.Errorf("stream %v → %v: lost %d, duplicates %d", s.Src, s.Dst, s.Lost, s.Duplicates)
					}
				}
			}
			t.Logf("%d RTP packets of %d, %d streams, kernel: %d packets, %d drops, %d freezes", rtp.Load(), want, streams, st.Packets, st.Drops, st.FreezeQueue)
			if rtp.Load() != want {
				t.Errorf("saw %d RTP packets, want %d", rtp.Load(), want)
			}
			if st.Drops != 0 {
				t.Errorf("kernel dropped %d packets", st.Drops)
			}
			if badVLAN.Load() != 0 {
				t.Errorf("%d packets without VLAN %d priority %d", badVLAN.Load(), vlan, prio)
			}
			if streams != 2*calls {
				t.Errorf("%d streams, want %d", streams, 2*calls)
			}
			if other.Load() != 0 {
				t.Errorf("%d frames were not RTP although the filter passes only UDP", other.Load())
			}
		})
	}
}
