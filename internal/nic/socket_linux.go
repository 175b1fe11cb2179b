package nic

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// Packet types of a received frame (sll_pkttype).
const (
	PacketHost      = unix.PACKET_HOST
	PacketBroadcast = unix.PACKET_BROADCAST
	PacketMulticast = unix.PACKET_MULTICAST
	PacketOtherHost = unix.PACKET_OTHERHOST
	PacketOutgoing  = unix.PACKET_OUTGOING
)

// Sender sends raw Ethernet frames on one interface through an AF_PACKET
// socket. Methods may be called from several goroutines, but Close must
// not race with Send.
type Sender struct {
	fd      int
	ifindex int
	mac     [6]byte
	name    string
}

// openPacket opens an AF_PACKET socket of protocol 0 (no frame queues on
// it until it is bound) inside o.Netns, looks interface name up through it
// and runs setup, if not nil, on it inside the namespace. On any error the
// socket is closed.
func openPacket(name string, o Options, setup func(fd, ifindex int) error) (fd, ifindex int, mac [6]byte, err error) {
	fd = -1
	err = inNetns(o.Netns, func() error {
		var err error
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return fmt.Errorf("opening an AF_PACKET socket on %q: %w", name, mapErrno(err))
		}
		if ifindex, mac, err = lookup(fd, name); err != nil {
			return err
		}
		if setup != nil {
			return setup(fd, ifindex)
		}
		return nil
	})
	if err != nil && fd >= 0 {
		unix.Close(fd)
	}
	return fd, ifindex, mac, err
}

// OpenSender opens a sender on interface name. The error wraps
// ErrNoInterface when name does not exist and ErrPermission without
// CAP_NET_RAW.
func OpenSender(name string, o Options) (*Sender, error) {
	fd, ifindex, mac, err := openPacket(name, o, func(fd, ifindex int) error {
		// Protocol 0: the socket sends only, it never queues frames.
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex}); err != nil {
			return fmt.Errorf("binding to %q: %w", name, mapErrno(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Sender{fd: fd, ifindex: ifindex, mac: mac, name: name}, nil
}

// HardwareAddr returns the interface's MAC address.
func (s *Sender) HardwareAddr() [6]byte { return s.mac }

// Name returns the interface name.
func (s *Sender) Name() string { return s.name }

// State reads the sending interface's state.
func (s *Sender) State() (State, error) { return stateOf(s.fd, s.name) }

// Send transmits one Ethernet frame as it is. The kernel's skb protocol is
// the frame's EtherType, so a tagged frame leaves as 802.1Q.
func (s *Sender) Send(frame []byte) error {
	if len(frame) < ethLen {
		return fmt.Errorf("send on %q: %d-byte frame: %w", s.name, len(frame), ErrFrameTooShort)
	}
	sa := unix.SockaddrLinklayer{
		Ifindex:  s.ifindex,
		Protocol: htons(binary.BigEndian.Uint16(frame[12:14])),
		Halen:    6,
	}
	copy(sa.Addr[:], frame[0:6])
	for {
		err := unix.Sendto(s.fd, frame, 0, &sa)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			if errors.Is(err, unix.ENETDOWN) {
				return fmt.Errorf("send on %q: the interface is down: %w", s.name, err)
			}
			return fmt.Errorf("send on %q: %w", s.name, mapErrno(err))
		}
		return nil
	}
}

// Close closes the socket.
func (s *Sender) Close() error { return unix.Close(s.fd) }

// RxInfo describes one received frame.
type RxInfo struct {
	// Len is the number of bytes read into the buffer; WireLen the
	// frame's length (larger when the buffer was too small).
	Len, WireLen int
	// Time is the kernel's receive timestamp.
	Time time.Time
	// PktType is the frame's packet type (PacketHost, ...).
	PktType uint8
	// VLANValid says the kernel reported a tag out of band (the driver or
	// the stack removed it from the frame): TP_STATUS_VLAN_VALID in
	// PACKET_AUXDATA. VLANTPID is 0x8100 unless the kernel says otherwise.
	VLANValid bool
	VLANTCI   uint16
	VLANTPID  uint16
}

// Receiver reads every frame arriving on one interface, in promiscuous
// mode, with the kernel's out-of-band VLAN data and receive timestamps. It
// is not safe for concurrent use; Close may be called from another
// goroutine only after Read has returned.
type Receiver struct {
	fd      int
	ifindex int
	mac     [6]byte
	name    string
	promisc error // why promiscuous mode could not be turned on, or nil

	oob  [256]byte
	from unix.RawSockaddrLinklayer
	iov  unix.Iovec
	msg  unix.Msghdr
	pfd  [1]unix.PollFd
}

// OpenReceiver opens a receiver on interface name, turns promiscuous mode
// on for the socket's lifetime and asks for PACKET_AUXDATA and
// SO_TIMESTAMPNS. Frames the host itself sends are left out.
func OpenReceiver(name string, o Options) (*Receiver, error) {
	r := &Receiver{name: name}
	var err error
	// Protocol 0 until bound, so frames of other interfaces never queue.
	r.fd, r.ifindex, r.mac, err = openPacket(name, o, func(fd, ifindex int) error {
		if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
			return fmt.Errorf("PACKET_AUXDATA on %q: %w", name, err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1); err != nil {
			return fmt.Errorf("SO_TIMESTAMPNS on %q: %w", name, err)
		}
		// Kernels before 4.20 lack it; outgoing frames are also skipped
		// by packet type in Read.
		_ = unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
		mreq := unix.PacketMreq{Ifindex: int32(ifindex), Type: unix.PACKET_MR_PROMISC}
		if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
			r.promisc = err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifindex, Protocol: htons(unix.ETH_P_ALL)}); err != nil {
			return fmt.Errorf("binding to %q: %w", name, mapErrno(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// HardwareAddr returns the interface's MAC address.
func (r *Receiver) HardwareAddr() [6]byte { return r.mac }

// Name returns the interface name.
func (r *Receiver) Name() string { return r.name }

// PromiscError says why promiscuous mode could not be turned on, or nil.
func (r *Receiver) PromiscError() error { return r.promisc }

// State reads the receiving interface's state.
func (r *Receiver) State() (State, error) { return stateOf(r.fd, r.name) }

// Read reads one frame into buf, waiting until deadline (a zero deadline
// waits forever). It returns ErrTimeout when the deadline passes first.
// Outgoing frames are skipped. It does not allocate.
func (r *Receiver) Read(buf []byte, deadline time.Time) (RxInfo, error) {
	if len(buf) == 0 {
		return RxInfo{}, fmt.Errorf("read on %q: empty buffer: %w", r.name, ErrFrameTooShort)
	}
	for {
		wait := -1
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return RxInfo{}, ErrTimeout
			}
			wait = int((d + time.Millisecond - 1) / time.Millisecond)
		}
		r.pfd[0] = unix.PollFd{Fd: int32(r.fd), Events: unix.POLLIN}
		n, err := unix.Poll(r.pfd[:], wait)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return RxInfo{}, fmt.Errorf("poll on %q: %w", r.name, err)
		}
		if n == 0 {
			continue // the deadline check above decides
		}
		info, ok, err := r.recv(buf)
		if err != nil {
			return RxInfo{}, err
		}
		if ok {
			return info, nil
		}
	}
}

func (r *Receiver) recv(buf []byte) (RxInfo, bool, error) {
	r.iov.Base = &buf[0]
	r.iov.SetLen(len(buf))
	r.msg = unix.Msghdr{
		Name:    (*byte)(unsafe.Pointer(&r.from)),
		Namelen: uint32(unsafe.Sizeof(r.from)),
		Iov:     &r.iov,
		Iovlen:  1,
		Control: &r.oob[0],
	}
	r.msg.SetControllen(len(r.oob))
	n, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&r.msg)), unix.MSG_TRUNC|unix.MSG_DONTWAIT)
	if errno != 0 {
		if errno == unix.EAGAIN || errno == unix.EINTR {
			return RxInfo{}, false, nil
		}
		if errno == unix.ENETDOWN {
			return RxInfo{}, false, fmt.Errorf("recvmsg on %q: %w (%w)", r.name, ErrInterfaceDown, errno)
		}
		return RxInfo{}, false, fmt.Errorf("recvmsg on %q: %w", r.name, errno)
	}
	if r.from.Pkttype == unix.PACKET_OUTGOING {
		return RxInfo{}, false, nil
	}
	info := RxInfo{WireLen: int(n), Len: min(int(n), len(buf)), PktType: r.from.Pkttype}
	parseControl(r.oob[:r.msg.Controllen], &info)
	return info, true, nil
}

// parseControl reads PACKET_AUXDATA and SCM_TIMESTAMPNS from control
// messages without allocating.
func parseControl(b []byte, info *RxInfo) {
	const hdr = unix.SizeofCmsghdr
	for len(b) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < hdr || l > len(b) {
			return
		}
		data := b[hdr:l]
		switch {
		case h.Level == unix.SOL_PACKET && h.Type == unix.PACKET_AUXDATA && len(data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})):
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&data[0]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
				info.VLANValid = true
				info.VLANTCI = aux.Vlan_tci
				info.VLANTPID = etherTypeVLAN
				if aux.Status&unix.TP_STATUS_VLAN_TPID_VALID != 0 && aux.Vlan_tpid != 0 {
					info.VLANTPID = aux.Vlan_tpid
				}
			}
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_TIMESTAMPNS && len(data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&data[0]))
			info.Time = time.Unix(ts.Unix())
		}
		adv := (l + unix.SizeofPtr - 1) &^ (unix.SizeofPtr - 1)
		if adv >= len(b) {
			return
		}
		b = b[adv:]
	}
}

// Close closes the socket; promiscuous mode ends with it.
func (r *Receiver) Close() error { return unix.Close(r.fd) }
