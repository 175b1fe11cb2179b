package relay

import (
	"strings"

	"golang.org/x/sys/unix"
)

func setTOS(network string, fd uintptr, tos int) error {
	if strings.HasSuffix(network, "6") {
		// Dual-stack sockets carry IPv4 too; set both, ignore the IPv4 one
		// failing on a v6-only socket.
		unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, tos)
		return unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_TCLASS, tos)
	}
	return unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_TOS, tos)
}
