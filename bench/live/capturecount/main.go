//go:build linux

// Command capturecount is the capture half of smserver without the relay:
// it opens the live source on an interface (TPACKET_V3 ring, UDP
// pre-filter, fanout), decodes every frame in place and updates the RTP
// stream table, until SIGINT or SIGTERM. Then it prints one line:
//
//	packets N rtp N streams N drops N freezes N
//
// bench/live/run.sh runs it next to tcpdump when smserver is not given.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/silentmon/silentmon/capture"
)

func main() {
	ifname := flag.String("i", "", "capture interface")
	workers := flag.Int("workers", 1, "fanout workers")
	blocks := flag.Int("blocks", 64, "ring blocks of 1 MiB per worker")
	flag.Parse()
	if *ifname == "" {
		fmt.Fprintln(os.Stderr, "capturecount: give the interface with -i IF.")
		os.Exit(2)
	}
	live, err := capture.OpenLive(capture.LiveConfig{Interface: *ifname, Workers: *workers, NumBlocks: *blocks})
	if err != nil {
		fmt.Fprintf(os.Stderr, "capturecount: %v.\n", err)
		os.Exit(1)
	}
	var rtp atomic.Uint64
	var streams atomic.Int64
	var wg sync.WaitGroup
	for _, src := range live.Sources() {
		wg.Add(1)
		go func(src *capture.LiveSource) {
			defer wg.Done()
			tab := capture.NewStreamTable(capture.StreamTableConfig{Drops: live.DropCounter()})
			frames := make([][]byte, 512)
			infos := make([]capture.Info, 512)
			pkts := make([]capture.Packet, 512)
			times := make([]time.Time, 512)
			var n uint64
			lastExpire := time.Now()
			for {
				k, err := src.ReadBatch(frames, infos)
				if err != nil {
					if !errors.Is(err, net.ErrClosed) {
						fmt.Fprintf(os.Stderr, "capturecount: %v.\n", err)
					}
					break
				}
				for i := 0; i < k; i++ {
					if pkts[i].Decode(frames[i], capture.LinkEthernet, &infos[i]) != nil {
						pkts[i].Kind = capture.KindOther
					}
					times[i] = infos[i].Timestamp
				}
				n += uint64(tab.UpdateBatch(pkts[:k], times[:k]))
				if k > 0 && infos[k-1].Timestamp.Sub(lastExpire) > time.Second {
					lastExpire = infos[k-1].Timestamp
					tab.Expire(lastExpire)
				}
			}
			rtp.Add(n)
			streams.Add(int64(tab.Len()))
		}(src)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	st := live.Stats()
	live.Close()
	wg.Wait()
	fmt.Printf("packets %d rtp %d streams %d drops %d freezes %d\n", st.Packets, rtp.Load(), streams.Load(), st.Drops, st.FreezeQueue)
}
