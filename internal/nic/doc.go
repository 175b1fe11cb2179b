// Package nic is the NIC qualification test behind smnic: it sends 802.1Q
// tagged frames modelled on a VoIP RTP packet through an AF_PACKET socket,
// listens for them on another interface, and tells whether the tag survived
// and, when it did not, why.
//
// The test replaces the original product's manual procedure (a hub, a packet
// analyser retargeting a sample VLAN 85 frame to the NIC's MAC, WinDump
// reading the screen). On Linux the trap is not only a driver that drops
// tagged frames: with rx-vlan-offload the driver strips the tag and hands it
// over out of band (PACKET_AUXDATA, TP_STATUS_VLAN_VALID), so a capture that
// only looks in the frame sees no VLAN. The listener reads both.
//
// The pieces:
//   - BuildFrame writes a test frame (Ethernet, 802.1Q, IPv4, UDP, RTP with a
//     marker in the payload naming the run and the frame's index);
//     ParseMarker reads the marker back.
//   - Sender and Receiver are plain AF_PACKET sockets (one frame per
//     system call, which is plenty for a qualification test); the receiver
//     asks for PACKET_AUXDATA and kernel timestamps and turns promiscuous
//     mode on for its lifetime.
//   - ReadState reads an interface's flags, driver and offload features
//     through the kernel's ethtool interface (SIOCETHTOOL).
//   - Listen, Send and Selftest run the test; Diagnose turns the counts and
//     the interface state into a verdict with a cause and a fix.
//
// Every socket and ioctl may be opened inside another network namespace
// (Options.Netns), so one process can test a veth pair that spans two
// namespaces.
//
// Everything here needs CAP_NET_RAW (and CAP_SYS_ADMIN for Netns); the
// package builds without cgo.
package nic
