package filter

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Endpoint is one address that carries a monitored agent's voice: the
// agent's phone (by IP or, in desktop mode, by MAC) or a voice gateway IP
// with the RTP port range used for the agent's calls (mobile agents).
// The zero value matches nothing.
type Endpoint struct {
	// IP is the phone's or gateway's address; invalid for a MAC endpoint.
	IP netip.Addr
	// MAC is the phone's hardware address when HasMAC is set.
	MAC    [6]byte
	HasMAC bool
	// PortLo and PortHi bound the UDP port on the endpoint's side,
	// inclusive. Both zero means any port.
	PortLo, PortHi uint16
	// VLAN restricts the endpoint to one VLAN ID (outer tag); 0 means any.
	VLAN uint16
}

// ParseEndpoint parses an endpoint written as one of
//
//	10.1.2.3                   an IP (IPv4 or IPv6)
//	10.1.2.3:20000-20999       an IP with a UDP port range (or one port)
//	[2001:db8::7]:20000-20999  the same for IPv6
//	00:1b:54:aa:bb:cc          a MAC address (desktop mode)
//
// each optionally prefixed with "vlanN/" to restrict it to VLAN N.
func ParseEndpoint(s string) (Endpoint, error) {
	var e Endpoint
	orig := s
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "vlan"); ok {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return Endpoint{}, fmt.Errorf("endpoint %q: a VLAN prefix is written vlanN/ADDRESS", orig)
		}
		v, err := strconv.ParseUint(rest[:i], 10, 16)
		if err != nil || v == 0 || v > 4094 {
			return Endpoint{}, fmt.Errorf("endpoint %q: VLAN %q is not between 1 and 4094", orig, rest[:i])
		}
		e.VLAN = uint16(v)
		s = s[len("vlan")+i+1:]
	}
	if s == "" {
		return Endpoint{}, fmt.Errorf("endpoint %q is empty", orig)
	}
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return Endpoint{}, fmt.Errorf("endpoint %q: zoned IPv6 addresses are not supported", orig)
		}
		e.IP = a.Unmap()
		return e, nil
	}
	if strings.Count(s, ":") == 5 && !strings.Contains(s, "[") {
		if hw, err := net.ParseMAC(s); err == nil && len(hw) == 6 {
			copy(e.MAC[:], hw)
			e.HasMAC = true
			return e, nil
		}
	}
	host, ports, err := net.SplitHostPort(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q is not an IP address, IP:PORT[-PORT] or MAC address", orig)
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return Endpoint{}, fmt.Errorf("endpoint %q: %q is not an IP address", orig, host)
	}
	e.IP = a.Unmap()
	lo, hi, found := strings.Cut(ports, "-")
	if !found {
		hi = lo
	}
	l, err1 := strconv.ParseUint(lo, 10, 16)
	h, err2 := strconv.ParseUint(hi, 10, 16)
	if err1 != nil || err2 != nil || l == 0 || h < l {
		return Endpoint{}, fmt.Errorf("endpoint %q: %q is not a port or a port range LOW-HIGH between 1 and 65535", orig, ports)
	}
	e.PortLo, e.PortHi = uint16(l), uint16(h)
	return e, nil
}

// String returns the endpoint in the form ParseEndpoint reads.
func (e Endpoint) String() string {
	var b strings.Builder
	if e.VLAN != 0 {
		fmt.Fprintf(&b, "vlan%d/", e.VLAN)
	}
	switch {
	case e.HasMAC:
		b.WriteString(net.HardwareAddr(e.MAC[:]).String())
	case e.PortLo == 0 && e.PortHi == 0:
		b.WriteString(e.IP.String())
	case e.PortLo == e.PortHi:
		b.WriteString(netip.AddrPortFrom(e.IP, e.PortLo).String())
	default:
		b.WriteString(netip.AddrPortFrom(e.IP, e.PortLo).String())
		fmt.Fprintf(&b, "-%d", e.PortHi)
	}
	return b.String()
}

// Valid reports whether e names an address.
func (e Endpoint) Valid() bool { return e.HasMAC || e.IP.IsValid() }

// MarshalText implements encoding.TextMarshaler.
func (e Endpoint) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (e *Endpoint) UnmarshalText(b []byte) error {
	x, err := ParseEndpoint(string(b))
	if err != nil {
		return err
	}
	*e = x
	return nil
}
