package filter

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/silentmon/silentmon/capture"
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
	// VLAN restricts the endpoint to the voice VLAN with this ID; 0 means
	// any. Alone, it matches a frame whose outer or inner tag (the first
	// or second, so either tag of an 802.1ad QinQ frame) carries it.
	VLAN uint16
	// OuterVLAN, when not 0, names the service VLAN that carries VLAN in
	// a QinQ frame: the endpoint then matches only frames whose outer tag
	// is OuterVLAN and whose inner tag is VLAN. It is 0 whenever VLAN is.
	OuterVLAN uint16
}

// ParseEndpoint parses an endpoint written as one of
//
//	10.1.2.3                   an IP (IPv4 or IPv6)
//	10.1.2.3:20000-20999       an IP with a UDP port range (or one port)
//	[2001:db8::7]:20000-20999  the same for IPv6
//	00:1b:54:aa:bb:cc          a MAC address (desktop mode)
//
// each optionally prefixed with "vlanN/" to restrict it to voice VLAN N,
// carried by the frame's outer or inner tag, or with "vlanS.N/" to restrict
// it to QinQ frames whose outer (service) tag is S and inner tag is N.
func ParseEndpoint(s string) (Endpoint, error) {
	var e Endpoint
	orig := s
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(strings.ToLower(s), "vlan"); ok {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			return Endpoint{}, fmt.Errorf("endpoint %q: a VLAN prefix is written vlanN/ADDRESS or vlanOUTER.INNER/ADDRESS", orig)
		}
		outer, inner, pair := strings.Cut(rest[:i], ".")
		if !pair {
			outer, inner = "", outer
		}
		if pair {
			v, ok := parseVLAN(outer)
			if !ok {
				return Endpoint{}, fmt.Errorf("endpoint %q: outer VLAN %q is not between 1 and 4094", orig, outer)
			}
			e.OuterVLAN = v
		}
		v, ok := parseVLAN(inner)
		if !ok {
			if pair {
				return Endpoint{}, fmt.Errorf("endpoint %q: inner VLAN %q is not between 1 and 4094", orig, inner)
			}
			return Endpoint{}, fmt.Errorf("endpoint %q: VLAN %q is not between 1 and 4094", orig, inner)
		}
		e.VLAN = v
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

// parseVLAN parses a VLAN ID between 1 and 4094 written in decimal.
func parseVLAN(s string) (uint16, bool) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 || v > 4094 {
		return 0, false
	}
	return uint16(v), true
}

// String returns the endpoint in the form ParseEndpoint reads.
func (e Endpoint) String() string {
	var b strings.Builder
	switch {
	case e.VLAN != 0 && e.OuterVLAN != 0:
		fmt.Fprintf(&b, "vlan%d.%d/", e.OuterVLAN, e.VLAN)
	case e.VLAN != 0:
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

// vlanTags are the VLAN IDs of a packet's outer and inner tags (the first
// and second, outermost first, whether the kernel stripped the outer one or
// not); 0 where the packet has no such tag.
type vlanTags struct{ outer, inner uint16 }

func packetVLANs(p *capture.Packet) vlanTags {
	var t vlanTags
	if p.NumVLANs > 0 {
		t.outer = p.VLANs[0].ID()
		if p.NumVLANs > 1 {
			t.inner = p.VLANs[1].ID()
		}
	}
	return t
}

// vlanRule is an endpoint's VLAN restriction on the packet path: vlan is
// the voice VLAN (0: any), outer the service VLAN that must carry it (0:
// the voice VLAN may be the outer or the inner tag).
type vlanRule struct{ vlan, outer uint16 }

func (r vlanRule) accepts(t vlanTags) bool {
	switch {
	case r.vlan == 0:
		return true
	case r.outer != 0:
		return t.outer == r.outer && t.inner == r.vlan
	}
	return t.outer == r.vlan || t.inner == r.vlan
}
