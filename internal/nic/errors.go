package nic

import "errors"

// Errors callers branch on. They are wrapped with the interface or value
// they concern; test with errors.Is.
var (
	// ErrNoInterface means the named interface does not exist (in the
	// namespace the test runs in).
	ErrNoInterface = errors.New("no such network interface")
	// ErrNotEthernet means the interface does not carry Ethernet frames
	// (loopback, a tunnel, ...), so it cannot carry 802.1Q tags.
	ErrNotEthernet = errors.New("not an Ethernet interface")
	// ErrBadMAC means a MAC address could not be parsed.
	ErrBadMAC = errors.New("not a MAC address")
	// ErrPermission means the kernel refused a raw socket or a namespace
	// switch: the test needs root or CAP_NET_RAW.
	ErrPermission = errors.New("permission denied")
	// ErrInterfaceDown is returned by Receiver.Read when the interface is
	// administratively down (ENETDOWN); reading again may succeed once it
	// is up.
	ErrInterfaceDown = errors.New("interface is down")
	// ErrTimeout is returned by Receiver.Read when its deadline passes.
	ErrTimeout = errors.New("timed out")
	// ErrFrameTooShort means a frame is too short for the header asked of it.
	ErrFrameTooShort = errors.New("frame too short")
	// ErrUnsupported is returned on systems without AF_PACKET.
	ErrUnsupported = errors.New("not supported on this system")
)
