package capture

// Well-known UDP services are never taken for RTP or RTCP.
//
// Decode's RTP test is the one of Wireshark's RTP heuristic (version 2, a
// payload type outside the RTCP range 72-76, a header that fits): a test of
// two bits and seven, which a quarter of all UDP datagrams pass by chance. A
// DNS query with a random ID, an NBNS name query, an NTP reply or a DHCP
// request whose first byte falls in 0x80-0xbf looks like RTP. Wireshark is
// saved from most of these by its port table: a datagram to or from port 53
// goes to the DNS dissector before any heuristic runs. Decode has no
// dissectors, so it keeps the equivalent, a set of ports no RTP stream uses:
// every port below 1024 (the system ports: DNS 53, DHCP 67/68, TFTP 69,
// Kerberos 88, NTP 123, NBNS 137, NetBIOS datagram 138, SNMP 161/162, IKE
// 500, syslog 514, DHCPv6 546/547, ...) and the registered services in
// servicePorts (RADIUS, SSDP, IKE NAT traversal, SIP, mDNS, LLMNR). RTP
// endpoints take their ports from higher ranges, so a datagram with either
// port in the set is plain UDP, whatever its first bytes say.

// servicePorts are the registered UDP services at 1024 and above that never
// carry plain RTP or RTCP. Registered ports inside the RTP ranges of common
// equipment are left out even so (Avaya phones take 2048-3329, where GTP
// 2152 and MGCP 2427 are; Cisco 16384-32767; many 49152-65535, where BACnet
// 47808 is), and so is 5004/5005, RTP's own.
var servicePorts = [...]uint16{
	1645, 1646, // RADIUS (old ports)
	1719,       // H.323 RAS
	1812, 1813, // RADIUS authentication, accounting
	1900,       // SSDP
	4500,       // IKE NAT traversal
	5060, 5061, // SIP (SIP is not RTP, even when its first byte looks so)
	5353, // mDNS
	5355, // LLMNR
}

// maxServicePort is the highest port in servicePorts: a port above it is
// never a service's, which one comparison tells for nearly every RTP
// packet.
const maxServicePort = 5355

// notRTPPort has bit p set for every UDP port p of a well-known service:
// below 1024 and servicePorts (ports 0 to 8191; the index is masked so that
// the compiler drops the bounds check).
var notRTPPort = func() (m [8192 / 64]uint64) {
	for p := 0; p < 1024; p++ {
		m[p/64] |= 1 << (p % 64)
	}
	for _, p := range servicePorts {
		m[p/64] |= 1 << (p % 64) // TestServicePort checks p <= maxServicePort
	}
	return m
}()

// ServicePort reports whether port belongs to a well-known UDP service
// (any port below 1024; RADIUS 1645/1646 and 1812/1813, H.323 RAS 1719,
// SSDP 1900, IKE NAT traversal 4500, SIP 5060/5061, mDNS 5353, LLMNR 5355)
// that Decode never takes for RTP or RTCP: a datagram to or from such a port
// decodes as KindUDP.
func ServicePort(port uint16) bool {
	return port <= maxServicePort && notRTPPort[port>>6&127]>>(port&63)&1 != 0
}

// servicePorts2 reports whether either port of ports (source << 16 |
// destination, as in the UDP header) is a service port.
func servicePorts2(ports uint32) bool {
	return ServicePort(uint16(ports>>16)) || ServicePort(uint16(ports))
}
