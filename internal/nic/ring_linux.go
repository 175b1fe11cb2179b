package nic

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"github.com/silentmon/silentmon/capture"
)

// Engines: how the listener reads frames.
const (
	// EngineSocket reads one frame per recvmsg with PACKET_AUXDATA: the
	// simplest path, which sees every frame.
	EngineSocket = "socket"
	// EngineRing reads through silentmon's own capture path, the
	// TPACKET_V3 ring of capture.OpenLive with its UDP pre-filter, so a
	// PASS shows that smserver will see the tags too. Frames that are not
	// UDP are not seen.
	EngineRing = "ring"
)

// ringFrame is one frame copied out of the ring.
type ringFrame struct {
	data []byte
	info capture.Info
}

// ringReceiver adapts capture's live source to the listener. A goroutine
// reads blocks from the ring and hands over batches of copied frames;
// Close stops it and waits for it.
type ringReceiver struct {
	live *capture.Live
	ctl  int // protocol-0 packet socket in the interface's namespace, for ioctls
	name string
	mac  [6]byte

	batches chan []ringFrame
	quit    chan struct{}
	done    chan struct{}
	errc    chan error
	pending []ringFrame
}

// openRing opens capture's live source on name (inside o.Netns).
func openRing(name string, o Options) (*ringReceiver, error) {
	r := &ringReceiver{name: name}
	var err error
	r.ctl, _, r.mac, err = openPacket(name, o, func(int, int) (err error) {
		// Small ring, short block timeout: a test sends a few frames and
		// wants them at once.
		r.live, err = capture.OpenLive(capture.LiveConfig{Interface: name, BlockSize: 1 << 16, NumBlocks: 8, BlockTimeout: 5 * time.Millisecond})
		if err != nil {
			return fmt.Errorf("opening silentmon's capture ring on %q: %w", name, mapErrno(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.batches = make(chan []ringFrame, 16)
	r.quit = make(chan struct{})
	r.done = make(chan struct{})
	r.errc = make(chan error, 1)
	go r.run(r.live.Sources()[0])
	return r, nil
}

func (r *ringReceiver) run(src *capture.LiveSource) {
	defer close(r.done)
	frames := make([][]byte, 64)
	infos := make([]capture.Info, 64)
	for {
		n, err := src.ReadBatch(frames, infos)
		if n > 0 {
			batch := make([]ringFrame, n)
			for i := range n {
				batch[i] = ringFrame{data: append([]byte(nil), frames[i]...), info: infos[i]}
			}
			select {
			case r.batches <- batch:
			case <-r.quit:
				return
			}
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				r.errc <- err
			}
			return
		}
	}
}

// Read implements frameSource.
func (r *ringReceiver) Read(buf []byte, deadline time.Time) (RxInfo, error) {
	for len(r.pending) == 0 {
		d := time.Until(deadline)
		if d <= 0 {
			return RxInfo{}, ErrTimeout
		}
		t := time.NewTimer(d)
		select {
		case b := <-r.batches:
			r.pending = b
		case err := <-r.errc:
			t.Stop()
			return RxInfo{}, fmt.Errorf("reading the capture ring on %q: %w", r.name, err)
		case <-t.C:
			return RxInfo{}, ErrTimeout
		}
		t.Stop()
	}
	f := r.pending[0]
	r.pending = r.pending[1:]
	n := copy(buf, f.data)
	return RxInfo{Len: n, WireLen: f.info.Length, Time: f.info.Timestamp, VLANValid: f.info.VLANValid,
		VLANTCI: f.info.VLANTCI, VLANTPID: f.info.VLANTPID}, nil
}

func (r *ringReceiver) State() (State, error) { return stateOf(r.ctl, r.name) }
func (r *ringReceiver) PromiscError() error   { return nil }
func (r *ringReceiver) HardwareAddr() [6]byte { return r.mac }

// Close stops the reading goroutine and closes the ring.
func (r *ringReceiver) Close() error {
	close(r.quit)
	err := r.live.Close()
	<-r.done
	unix.Close(r.ctl)
	return err
}
