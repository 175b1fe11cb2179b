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
// servicePorts. RTP endpoints take their ports from high ranges (16384-32767
// for most phones and gateways), so a datagram with either port in the set
// is plain UDP, whatever its first bytes say.

// servicePorts are the registered UDP services at 1024 and above that never
// carry plain RTP or RTCP. Port 5004/5005 (RTP/RTCP's own) is not here.
var servicePorts = [...]uint16{
	1194,       // OpenVPN
	1434,       // Microsoft SQL Server browser
	1645, 1646, // RADIUS (old ports)
	1701,       // L2TP
	1719,       // H.323 RAS
	1812, 1813, // RADIUS authentication, accounting
	1900,       // SSDP
	1985,       // HSRP
	2123, 2152, // GTP-C, GTP-U
	2427, 2727, // MGCP
	3222,       // GLBP
	3478, 5349, // STUN, TURN (relayed media is framed as TURN there)
	3544,       // Teredo
	3702,       // WS-Discovery
	3784, 3785, // BFD
	4500,       // IKE NAT traversal
	4789,       // VXLAN
	5060, 5061, // SIP (SIP is not RTP, even when its first byte looks so)
	5246, 5247, // CAPWAP
	5351,       // NAT-PMP, PCP
	5353,       // mDNS
	5355,       // LLMNR
	5683, 5684, // CoAP
	6081,  // Geneve
	8472,  // VXLAN (Linux default)
	47808, // BACnet/IP (its first byte is 0x81)
}

// notRTPPort has bit p set for every UDP port p of a well-known service:
// below 1024 and servicePorts. Two loads test both ports of a datagram.
var notRTPPort = func() (m [65536 / 64]uint64) {
	for p := 0; p < 1024; p++ {
		m[p/64] |= 1 << (p % 64)
	}
	for _, p := range servicePorts {
		m[p/64] |= 1 << (p % 64)
	}
	return m
}()

// ServicePort reports whether port belongs to a well-known UDP service
// (any port below 1024, or a registered one such as SIP 5060, mDNS 5353,
// SSDP 1900) that Decode never takes for RTP or RTCP: a datagram to or from
// such a port decodes as KindUDP.
func ServicePort(port uint16) bool {
	return notRTPPort[port/64]>>(port%64)&1 != 0
}

// servicePorts2 reports whether either port of ports (source << 16 |
// destination, as in the UDP header) is a service port.
func servicePorts2(ports uint32) bool {
	return (notRTPPort[ports>>22]>>(ports>>16&63)|notRTPPort[ports>>6&1023]>>(ports&63))&1 != 0
}
