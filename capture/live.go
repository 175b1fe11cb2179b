package capture

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// ErrLiveUnsupported is returned by OpenLive on systems without AF_PACKET.
var ErrLiveUnsupported = errors.New("live capture needs Linux (AF_PACKET)")

// LiveConfig configures OpenLive. Zero fields take the defaults written
// next to them.
type LiveConfig struct {
	// Interface is the capture interface (the SPAN port), e.g. "eth1".
	Interface string
	// Workers is the number of sockets joined in one PACKET_FANOUT group
	// with a flow hash, each with its own ring, so that every packet of a
	// stream reaches the same worker (default 1).
	Workers int
	// BlockSize is the size of one ring block in bytes, a multiple of the
	// page size (default 1 MiB); NumBlocks the blocks per worker's ring
	// (default 64, so 64 MiB per worker).
	BlockSize int
	NumBlocks int
	// BlockTimeout is how long the kernel waits before handing over a
	// block that is not full (default 10 ms; rounded to milliseconds).
	// It bounds the latency a quiet link adds.
	BlockTimeout time.Duration
	// SnapLen is the most bytes kept per frame (default 2048).
	SnapLen int
	// NoPromiscuous leaves the interface's promiscuous mode alone; by
	// default each socket adds a promiscuous membership, which the kernel
	// removes when the socket closes.
	NoPromiscuous bool
	// NoFilter captures every frame; by default a kernel BPF program
	// passes only UDP over IPv4 or IPv6, untagged or behind up to two
	// 802.1Q/802.1ad tags (IPv6 fragments included).
	NoFilter bool
	// FanoutGroup is the fanout group ID (default derived from the process
	// ID and the interface index). Two Live captures on one interface in
	// one process need distinct IDs.
	FanoutGroup uint16
}

func (c *LiveConfig) setDefaults() {
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 1 << 20
	}
	if c.NumBlocks <= 0 {
		c.NumBlocks = 64
	}
	if c.BlockTimeout <= 0 {
		c.BlockTimeout = 10 * time.Millisecond
	}
	if c.SnapLen <= 0 {
		c.SnapLen = 2048
	}
}

// LiveStats are the kernel's counters for a live capture, summed over its
// workers since OpenLive.
type LiveStats struct {
	// Packets is the number of frames that passed the BPF filter, drops
	// included (the kernel counts them so).
	Packets uint64
	// Drops is the number of frames dropped because the ring was full.
	Drops uint64
	// FreezeQueue is the number of times a ring had no free block.
	FreezeQueue uint64
}

// DropSample records that the kernel reported drops: at Time, the
// capture's cumulative drop count was Drops.
type DropSample struct {
	Time  time.Time
	Drops uint64
}

// dropLog keeps the running drop count, read on the packet path, and a
// bounded history of the times drops were seen. Safe for concurrent use.
type dropLog struct {
	total   atomic.Uint64
	packets atomic.Uint64
	freeze  atomic.Uint64

	mu      sync.Mutex
	history []DropSample // ring of the last maxDropSamples
	next    int
}

const maxDropSamples = 1024

func (d *dropLog) add(now time.Time, packets, drops, freeze uint64) {
	d.packets.Add(packets)
	d.freeze.Add(freeze)
	if drops == 0 {
		return
	}
	total := d.total.Add(drops)
	d.mu.Lock()
	s := DropSample{Time: now, Drops: total}
	if len(d.history) < maxDropSamples {
		d.history = append(d.history, s)
	} else {
		d.history[d.next] = s
		d.next = (d.next + 1) % maxDropSamples
	}
	d.mu.Unlock()
}

func (d *dropLog) samples() []DropSample {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]DropSample, 0, len(d.history))
	out = append(out, d.history[d.next:]...)
	return append(out, d.history[:d.next]...)
}
