//go:build linux

package capturetest

import (
	"net"

	"golang.org/x/sys/unix"

	"github.com/silentmon/silentmon/internal/testutil"
)

// SendRaw writes frames, in order, count times over on interface ifname
// from inside network namespace ns, through one AF_PACKET raw socket: the
// frames go out as they are, VLAN tags included (a receiving veth strips
// the outer tag into the ancillary data). It needs root.
func SendRaw(ns, ifname string, count int, frames ...[]byte) error {
	return testutil.InNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		sa := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
		for i := 0; i < count; i++ {
			for _, f := range frames {
				if err := unix.Sendto(fd, f, 0, sa); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
