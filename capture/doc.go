// Package capture reads frames from packet sources (an AF_PACKET TPACKET_V3
// ring on the SPAN interface; pcap and pcapng files), decodes them in place
// (Ethernet, 802.1Q and 802.1ad tags in the frame or from the kernel's
// ancillary data, IPv4, IPv6, UDP, RTP, RTCP) and tracks RTP streams with
// RFC 3550 statistics.
//
// It imports no other package of the project.
package capture
