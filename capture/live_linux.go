//go:build linux

package capture

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Live is a live capture on one interface: Workers AF_PACKET sockets, each
// with a TPACKET_V3 ring mapped in memory, joined in one fanout group.
// Sources, Stats, DropCounter, DropHistory and Close are safe for
// concurrent use; each LiveSource belongs to one goroutine.
type Live struct {
	cfg     LiveConfig
	sources []*LiveSource
	drops   dropLog
	statsMu sync.Mutex
}

// LiveSource is one worker's ring. It implements Source: ReadBatch returns
// the frames of one ring block at a time, without copying; they alias the
// ring and stay valid until the next ReadBatch or Close, when the block is
// handed back to the kernel. A ReadBatch waiting for a block parks its
// goroutine in the runtime's network poller and holds no OS thread. It is
// not safe for concurrent use, except Close, which may be called from
// another goroutine to stop a blocked ReadBatch.
type LiveSource struct {
	live *Live
	fd   int // the socket's number; used only while opening, when nothing else can close it
	// sock owns the socket. Calls on it after the source is running go
	// through conn.Control, which holds the descriptor open until they
	// return: a Close in between closes the socket after them, so the
	// number is never reused under a call (Control fails after Close).
	sock *os.File
	conn syscall.RawConn
	// waiter is a duplicate of the socket's descriptor registered with
	// the runtime's network poller: a reader waiting for a block parks its
	// goroutine on it instead of holding an OS thread in poll. Closing it
	// waits for a parked reader to leave, which is why it is apart from
	// sock, whose Close must not wait (a statistics read may close the
	// source from inside conn.Control).
	waiter   *os.File
	wconn    syscall.RawConn
	getStats func(fd int) (*unix.TpacketStatsV3, error) // PACKET_STATISTICS; tests replace it
	ring     []byte
	bsize    int
	nblocks  int
	cur      int       // current block
	held     bool      // the current block belongs to us
	walk     blockWalk // the reader's position in the current block
	closed   atomic.Bool
	mu       sync.Mutex // guards reading and the end of the ring's life
	reading  bool
}

var _ Source = (*LiveSource)(nil)

// OpenLive opens cfg.Workers sockets on cfg.Interface, attaches the UDP
// pre-filter, maps a TPACKET_V3 ring per socket, sets promiscuous mode and
// joins them in a fanout group hashed by flow. It needs CAP_NET_RAW.
func OpenLive(cfg LiveConfig) (*Live, error) {
	cfg.setDefaults()
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("capture interface %q: %w", cfg.Interface, err)
	}
	pg := os.Getpagesize()
	if cfg.BlockSize%pg != 0 {
		return nil, fmt.Errorf("ring block size %d is not a multiple of the page size %d", cfg.BlockSize, pg)
	}
	if cfg.SnapLen+128 > cfg.BlockSize {
		return nil, fmt.Errorf("snap length %d does not fit in a ring block of %d bytes", cfg.SnapLen, cfg.BlockSize)
	}
	if cfg.FanoutGroup == 0 {
		cfg.FanoutGroup = uint16(os.Getpid()*31+ifi.Index) | 1
	}
	l := &Live{cfg: cfg}
	for i := 0; i < cfg.Workers; i++ {
		s, err := l.openSocket(ifi.Index)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("capture interface %q, worker %d: %w", cfg.Interface, i, err)
		}
		l.sources = append(l.sources, s)
	}
	return l, nil
}

func (l *Live) openSocket(ifindex int) (*LiveSource, error) {
	cfg := &l.cfg
	// Protocol 0: nothing is queued until bind, after filter and ring are
	// in place.
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	s := &LiveSource{live: l, fd: fd, bsize: cfg.BlockSize, nblocks: cfg.NumBlocks, getStats: packetStats}
	// A blocking descriptor: os.File keeps it out of the runtime's poller,
	// and its Close does not wait for calls in flight.
	s.sock = os.NewFile(uintptr(fd), "AF_PACKET socket")
	if s.conn, err = s.sock.SyscallConn(); err != nil {
		s.sock.Close()
		return nil, fmt.Errorf("AF_PACKET socket: %w", err)
	}
	fail := func(what string, err error) (*LiveSource, error) {
		s.Close()
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !cfg.NoFilter {
		prog := udpFilter(uint32(cfg.SnapLen))
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER,
			&unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}); err != nil {
			return fail("attach BPF filter", err)
		}
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VERSION, unix.TPACKET_V3); err != nil {
		return fail("set TPACKET_V3", err)
	}
	req := unix.TpacketReq3{
		Block_size:     uint32(cfg.BlockSize),
		Block_nr:       uint32(cfg.NumBlocks),
		Frame_size:     uint32(2048),
		Frame_nr:       uint32(cfg.BlockSize / 2048 * cfg.NumBlocks),
		Retire_blk_tov: uint32(max(1, cfg.BlockTimeout.Milliseconds())),
	}
	if err := unix.SetsockoptTpacketReq3(fd, unix.SOL_PACKET, unix.PACKET_RX_RING, &req); err != nil {
		return fail(fmt.Sprintf("set up a ring of %d blocks of %d bytes", cfg.NumBlocks, cfg.BlockSize), err)
	}
	s.ring, err = unix.Mmap(fd, 0, cfg.BlockSize*cfg.NumBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_LOCKED|unix.MAP_POPULATE)
	if err != nil {
		// MAP_LOCKED fails under a low RLIMIT_MEMLOCK; the ring works
		// without it.
		s.ring, err = unix.Mmap(fd, 0, cfg.BlockSize*cfg.NumBlocks, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			return fail("map the ring", err)
		}
	}
	sa := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if !cfg.NoPromiscuous {
		mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			return fail("set promiscuous mode", err)
		}
	}
	// One worker needs no fanout, and skips the kernel's per-packet flow
	// hash and defragmentation.
	if cfg.Workers > 1 {
		fanout := int(cfg.FanoutGroup) | (unix.PACKET_FANOUT_HASH|unix.PACKET_FANOUT_FLAG_DEFRAG)<<16
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, fanout); err != nil {
			return fail(fmt.Sprintf("join fanout group %d", cfg.FanoutGroup), err)
		}
	}
	// The duplicate shares the socket's open file description, so the
	// non-blocking flag os.NewFile needs to register it applies to both;
	// only the ring is read, never the socket itself.
	wfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fail("duplicate the socket", err)
	}
	if err := unix.SetNonblock(wfd, true); err != nil {
		unix.Close(wfd)
		return fail("set the socket non-blocking", err)
	}
	s.waiter = os.NewFile(uintptr(wfd), "AF_PACKET socket (poller)")
	if s.wconn, err = s.waiter.SyscallConn(); err != nil {
		return fail("register the socket with the poller", err)
	}
	return s, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Sources returns the workers' sources, one per fanout member. Run each in
// its own goroutine.
func (l *Live) Sources() []*LiveSource { return l.sources }

// Stats reads and accumulates the kernel's counters of every worker.
func (l *Live) Stats() LiveStats {
	l.statsMu.Lock()
	for _, s := range l.sources {
		s.pollStats(time.Now())
	}
	l.statsMu.Unlock()
	return LiveStats{Packets: l.drops.packets.Load(), Drops: l.drops.total.Load(), FreezeQueue: l.drops.freeze.Load()}
}

// DropCounter returns the running count of kernel drops, updated as soon
// as a worker sees a block marked as following a loss. Give it to
// StreamTableConfig.Drops.
func (l *Live) DropCounter() *atomic.Uint64 { return &l.drops.total }

// DropHistory returns when drops were seen, oldest first (the last 1024
// occasions).
func (l *Live) DropHistory() []DropSample { return l.drops.samples() }

// Close closes every worker's socket and unmaps the rings. A ReadBatch
// blocked in another goroutine returns net.ErrClosed.
func (l *Live) Close() error {
	var errs []error
	for _, s := range l.sources {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

// pollStats reads PACKET_STATISTICS, which the kernel resets on each read,
// into the capture's counters. It may run while another goroutine closes
// the source: the read goes through conn.Control, so it reaches this
// socket or, once the source is closed, nothing (never a descriptor the
// system has since given to another file).
func (s *LiveSource) pollStats(now time.Time) {
	var st *unix.TpacketStatsV3
	var err error
	if cerr := s.conn.Control(func(fd uintptr) { st, err = s.getStats(int(fd)) }); cerr != nil || err != nil {
		return
	}
	s.live.drops.add(now, uint64(st.Packets), uint64(st.Drops), uint64(st.Freeze_q_cnt))
}

func packetStats(fd int) (*unix.TpacketStatsV3, error) {
	return unix.GetsockoptTpacketStatsV3(fd, unix.SOL_PACKET, unix.PACKET_STATISTICS)
}

// LinkType implements Source: frames start with an Ethernet header.
func (s *LiveSource) LinkType() LinkType { return LinkEthernet }

// blockBytes returns ring block i.
func (s *LiveSource) blockBytes(i int) []byte {
	return s.ring[i*s.bsize : (i+1)*s.bsize : (i+1)*s.bsize]
}

// block returns the header of ring block i, whose status the kernel and
// the reader hand over to each other.
func (s *LiveSource) block(i int) *unix.TpacketHdrV1 {
	return (*unix.TpacketHdrV1)(unsafe.Pointer(&s.ring[i*s.bsize+8]))
}

// ReadBatch implements Source. It blocks until the kernel hands over a
// block, then returns up to len(frames) of its frames. After Close it
// returns net.ErrClosed.
func (s *LiveSource) ReadBatch(frames [][]byte, infos []Info) (int, error) {
	s.mu.Lock()
	if s.closed.Load() {
		s.unmap()
		s.mu.Unlock()
		return 0, net.ErrClosed
	}
	s.reading = true
	s.mu.Unlock()
	n, err := s.readBatch(frames, infos)
	s.mu.Lock()
	s.reading = false
	if s.closed.Load() {
		s.unmap()
		n, err = 0, net.ErrClosed
	}
	s.mu.Unlock()
	return n, err
}

func (s *LiveSource) readBatch(frames [][]byte, infos []Info) (int, error) {
	max := min(len(frames), len(infos))
	if max == 0 {
		return 0, nil
	}
	if s.held && s.walk.left == 0 {
		s.release()
	}
	for !s.held {
		if s.closed.Load() {
			return 0, net.ErrClosed
		}
		h := s.block(s.cur)
		status := atomic.LoadUint32(&h.Block_status)
		if status&unix.TP_STATUS_USER == 0 {
			if err := s.wait(); err != nil {
				return 0, err
			}
			continue
		}
		if status&unix.TP_STATUS_LOSING != 0 {
			s.live.statsMu.Lock()
			s.pollStats(time.Now())
			s.live.statsMu.Unlock()
		}
		s.held = true
		s.walk = startBlock(s.blockBytes(s.cur))
		if s.walk.left == 0 {
			s.release()
		}
	}
	return s.walk.next(s.blockBytes(s.cur), frames[:max], infos[:max]), nil
}

// release hands the current block back to the kernel.
func (s *LiveSource) release() {
	atomic.StoreUint32(&s.block(s.cur).Block_status, unix.TP_STATUS_KERNEL)
	s.held = false
	s.cur = (s.cur + 1) % s.nblocks
}

// wait parks the goroutine in the runtime's network poller until the
// kernel hands over the current block (it signals the socket when it
// retires a block, full or timed out) or Close closes the socket. The
// check runs inside conn.Read, which holds the descriptor open, and
// re-runs on every readiness event, so a block retired between the check
// and the park is not missed.
func (s *LiveSource) wait() error {
	h := s.block(s.cur)
	err := s.wconn.Read(func(uintptr) bool {
		return s.closed.Load() || atomic.LoadUint32(&h.Block_status)&unix.TP_STATUS_USER != 0
	})
	if s.closed.Load() {
		// Close evicts the socket from the poller, which wakes the
		// reader with an error.
		return net.ErrClosed
	}
	if err != nil {
		return fmt.Errorf("wait for the capture ring: %w", err)
	}
	return nil
}

// Close implements Source: it closes the socket and wakes a ReadBatch
// blocked in another goroutine, which then returns net.ErrClosed; the
// socket is closed once that ReadBatch has stopped waiting. The ring is
// unmapped when no ReadBatch is running, so frames returned earlier are
// invalid after Close.
func (s *LiveSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	var werr error
	if s.waiter != nil {
		// Wakes a parked reader, and returns once it has left conn.Read.
		werr = s.waiter.Close()
	}
	err := errors.Join(s.sock.Close(), werr)
	if !s.reading {
		s.unmap()
	}
	return err
}

// unmap releases the ring; s.mu is held and no ReadBatch is running.
func (s *LiveSource) unmap() {
	if s.ring != nil {
		unix.Munmap(s.ring)
		s.ring = nil
	}
}

// udpFilter is a classic BPF program passing UDP over IPv4 or IPv6 (and
// IPv6 fragments), untagged or behind one or two 802.1Q/802.1ad tags still
// in the frame. Tags stripped by the driver are not in the frame the
// filter sees.
func udpFilter(snaplen uint32) []unix.SockFilter {
	const (
		ldhAbs = unix.BPF_LD | unix.BPF_H | unix.BPF_ABS
		ldbInd = unix.BPF_LD | unix.BPF_B | unix.BPF_IND
		ldxImm = unix.BPF_LDX | unix.BPF_IMM
		jeq    = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		ret    = unix.BPF_RET | unix.BPF_K
	)
	type ins struct {
		code   uint16
		k      uint32
		jt, jf string // labels; "" falls through
		label  string
	}
	prog := []ins{
		{code: ldxImm, k: 0},
		{code: ldhAbs, k: 12},
		{code: jeq, k: 0x8100, jt: "tag1"},
		{code: jeq, k: 0x88a8, jt: "tag1"},
		{code: jeq, k: 0x9100, jt: "tag1", jf: "ip"},
		{label: "tag1", code: ldxImm, k: 4},
		{code: ldhAbs, k: 16},
		{code: jeq, k: 0x8100, jt: "tag2"},
		{code: jeq, k: 0x88a8, jt: "tag2"},
		{code: jeq, k: 0x9100, jt: "tag2", jf: "ip"},
		{label: "tag2", code: ldxImm, k: 8},
		{code: ldhAbs, k: 20},
		{label: "ip", code: jeq, k: 0x0800, jt: "v4"},
		{code: jeq, k: 0x86dd, jt: "v6", jf: "drop"},
		{label: "v4", code: ldbInd, k: 14 + 9},
		{code: jeq, k: 17, jt: "accept", jf: "drop"},
		{label: "v6", code: ldbInd, k: 14 + 6},
		{code: jeq, k: 17, jt: "accept"},
		{code: jeq, k: 44, jt: "accept", jf: "drop"},
		{label: "accept", code: ret, k: snaplen},
		{label: "drop", code: ret, k: 0},
	}
	at := map[string]int{}
	for i, in := range prog {
		if in.label != "" {
			at[in.label] = i
		}
	}
	out := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		rel := func(l string) uint8 {
			if l == "" {
				return 0
			}
			return uint8(at[l] - i - 1)
		}
		out[i] = unix.SockFilter{Code: in.code, K: in.k, Jt: rel(in.jt), Jf: rel(in.jf)}
	}
	return out
}
