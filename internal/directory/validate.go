package directory

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of one agent's values, and the default bounds of a directory.
const (
	MaxIDLen        = 64
	MaxNameLen      = 128 // characters
	MaxTeamLen      = 64
	MaxExtensionLen = 32
	MaxExtensions   = 64 // per agent
	MaxDevices      = 16 // per agent

	DefaultMaxBytes  = 16 << 20
	DefaultMaxAgents = 100_000
)

// Options bound what Load, Parse and Unmarshal accept. The zero value
// means the defaults.
type Options struct {
	// MaxBytes bounds the file or the wire form; 0 means DefaultMaxBytes
	// (16 MiB).
	MaxBytes int64
	// MaxAgents bounds the number of agents; 0 means DefaultMaxAgents
	// (100,000).
	MaxAgents int
}

func (o Options) maxBytes() int64 {
	if o.MaxBytes > 0 {
		return o.MaxBytes
	}
	return DefaultMaxBytes
}

func (o Options) maxAgents() int {
	if o.MaxAgents > 0 {
		return o.MaxAgents
	}
	return DefaultMaxAgents
}

// source says where values come from, for error messages: a file (line
// numbers) or the wire form (agent numbers).
type source struct {
	name string // the file's path, or a description of the data
	wire bool
}

// at is the position of line in full: "agents.yaml line 12".
func (s source) at(line int) string {
	if s.wire {
		return fmt.Sprintf("%s, agent %d", s.name, line)
	}
	return fmt.Sprintf("%s line %d", s.name, line)
}

// short is the position of line within the same source: "line 12".
func (s source) short(line int) string {
	if s.wire {
		return fmt.Sprintf("agent %d", line)
	}
	return fmt.Sprintf("line %d", line)
}

// field is one value as written, with the line (YAML node or CSV row; the
// agent's number in the wire form) that holds it.
type field struct {
	val  string
	line int
}

type rawDevice struct {
	line          int
	ip, mac, vlan field
}

// rawAgent is one agent as read, before validation.
type rawAgent struct {
	line                   int
	id, name, team, mobile field
	exts                   []field
	devices                []rawDevice
}

// owner is the agent that first claimed a unique value, and where.
type owner struct {
	id   string
	line int
}

// build validates raw agents, all of them, and indexes them. The first
// problem refuses the whole directory.
func build(src source, raws []rawAgent) (*Directory, error) {
	agents := make([]Agent, 0, len(raws))
	ids := make(map[string]int, len(raws))
	exts := make(map[string]owner)
	ips := make(map[netip.Addr]owner)
	macs := make(map[[6]byte]owner)
	for i := range raws {
		r := &raws[i]
		a, err := validateAgent(src, r)
		if err != nil {
			return nil, err
		}
		if l, dup := ids[a.ID]; dup {
			return nil, newErr(ErrInvalid, "%s: agent id %q is already defined on %s", src.at(r.id.line), a.ID, src.short(l))
		}
		ids[a.ID] = r.id.line
		for j, x := range a.Extensions {
			line := r.exts[j].line
			if o, dup := exts[x]; dup {
				if o.id == a.ID {
					return nil, newErr(ErrInvalid, "%s: extension %q is listed twice for agent %s", src.at(line), x, a.ID)
				}
				return nil, newErr(ErrInvalid, "%s: extension %q of agent %s is already agent %s's (%s)", src.at(line), x, a.ID, o.id, src.short(o.line))
			}
			exts[x] = owner{a.ID, line}
		}
		for j, dev := range a.Devices {
			rd := &r.devices[j]
			if dev.IP.IsValid() {
				if o, dup := ips[dev.IP]; dup {
					if o.id == a.ID {
						return nil, newErr(ErrInvalid, "%s: phone IP %s is listed twice for agent %s", src.at(rd.ip.line), dev.IP, a.ID)
					}
					return nil, newErr(ErrInvalid, "%s: phone IP %s of agent %s is already agent %s's (%s)", src.at(rd.ip.line), dev.IP, a.ID, o.id, src.short(o.line))
				}
				ips[dev.IP] = owner{a.ID, rd.ip.line}
			}
			if dev.MAC != nil {
				m := [6]byte(dev.MAC)
				if o, dup := macs[m]; dup {
					if o.id == a.ID {
						return nil, newErr(ErrInvalid, "%s: phone MAC %s is listed twice for agent %s", src.at(rd.mac.line), dev.MAC, a.ID)
					}
					return nil, newErr(ErrInvalid, "%s: phone MAC %s of agent %s is already agent %s's (%s)", src.at(rd.mac.line), dev.MAC, a.ID, o.id, src.short(o.line))
				}
				macs[m] = owner{a.ID, rd.mac.line}
			}
		}
		agents = append(agents, a)
	}
	return newDirectory(agents), nil
}

// validateAgent checks one agent's values on their own.
func validateAgent(src source, r *rawAgent) (Agent, error) {
	var a Agent
	if r.id.val == "" {
		return a, newErr(ErrInvalid, "%s: agent has no id", src.at(r.line))
	}
	if !ValidID(r.id.val) {
		return a, newErr(ErrInvalid, "%s: agent id %s is not 1 to %d of A-Z a-z 0-9 . _ -", src.at(r.id.line), quote(r.id.val), MaxIDLen)
	}
	a.ID = r.id.val
	if !ValidName(r.name.val) {
		return a, newErr(ErrInvalid, "%s: name %s of agent %s is not up to %d printable characters", src.at(r.name.line), quote(r.name.val), a.ID, MaxNameLen)
	}
	a.Name = r.name.val
	if r.team.val != "" && !ValidTeam(r.team.val) {
		return a, newErr(ErrInvalid, "%s: team %s of agent %s is not 1 to %d of A-Z a-z 0-9 . _ -", src.at(r.team.line), quote(r.team.val), a.ID, MaxTeamLen)
	}
	a.Team = r.team.val
	if len(r.exts) > MaxExtensions {
		return a, newErr(ErrInvalid, "%s: agent %s has more than %d extensions", src.at(r.exts[MaxExtensions].line), a.ID, MaxExtensions)
	}
	for _, x := range r.exts {
		if !ValidExtension(x.val) {
			return a, newErr(ErrInvalid, "%s: extension %s of agent %s is not 1 to %d of A-Z a-z 0-9 + * # . _ -", src.at(x.line), quote(x.val), a.ID, MaxExtensionLen)
		}
		a.Extensions = append(a.Extensions, x.val)
	}
	if len(r.devices) > MaxDevices {
		return a, newErr(ErrInvalid, "%s: agent %s has more than %d devices", src.at(r.devices[MaxDevices].line), a.ID, MaxDevices)
	}
	for i := range r.devices {
		dev, err := validateDevice(src, &r.devices[i], a.ID)
		if err != nil {
			return a, err
		}
		a.Devices = append(a.Devices, dev)
	}
	m, ok := parseBool(r.mobile.val)
	if !ok {
		return a, newErr(ErrInvalid, "%s: mobile %s of agent %s is not true or false", src.at(r.mobile.line), quote(r.mobile.val), a.ID)
	}
	a.Mobile = m
	return a, nil
}

func validateDevice(src source, r *rawDevice, id string) (Device, error) {
	var d Device
	if r.ip.val != "" {
		ip, err := netip.ParseAddr(r.ip.val)
		if err != nil || ip.Zone() != "" || ip.IsUnspecified() || ip.IsMulticast() || ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
			return d, newErr(ErrInvalid, "%s: phone IP %s of agent %s is not a unicast IP address", src.at(r.ip.line), quote(r.ip.val), id)
		}
		d.IP = ip.Unmap()
	}
	if r.mac.val != "" {
		hw, err := net.ParseMAC(r.mac.val)
		if err != nil || len(hw) != 6 || hw[0]&1 != 0 || [6]byte(hw) == [6]byte{} {
			return d, newErr(ErrInvalid, "%s: phone MAC %s of agent %s is not a unicast Ethernet address", src.at(r.mac.line), quote(r.mac.val), id)
		}
		d.MAC = hw
	}
	if r.vlan.val != "" {
		v, err := strconv.ParseUint(r.vlan.val, 10, 16)
		if err != nil || v > 4094 {
			return d, newErr(ErrInvalid, "%s: VLAN %s of agent %s is not between 0 and 4094", src.at(r.vlan.line), quote(r.vlan.val), id)
		}
		d.VLAN = uint16(v)
	}
	if !d.IP.IsValid() && d.MAC == nil {
		return d, newErr(ErrInvalid, "%s: a device of agent %s has no phone IP or MAC", src.at(r.line), id)
	}
	return d, nil
}

// ValidID reports whether id can identify an agent: 1 to MaxIDLen of
// A-Z a-z 0-9 . _ -, not "." or "..".
func ValidID(id string) bool {
	return id != "." && id != ".." && validToken(id, MaxIDLen, "._-")
}

// ValidTeam reports whether team can name a team: 1 to MaxTeamLen of
// A-Z a-z 0-9 . _ -.
func ValidTeam(team string) bool { return validToken(team, MaxTeamLen, "._-") }

// ValidExtension reports whether x can be an extension (a SIP user part):
// 1 to MaxExtensionLen of A-Z a-z 0-9 + * # . _ -.
func ValidExtension(x string) bool { return validToken(x, MaxExtensionLen, "+*#._-") }

// ValidName reports whether name can be an agent's display name: up to
// MaxNameLen printable characters (spaces included, no control or
// formatting characters), valid UTF-8.
func ValidName(name string) bool {
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen {
		return false
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func validToken(s string, maxLen int, extra string) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// parseBool reads a mobile flag: true/false, yes/no, 1/0 in any case; empty
// is false.
func parseBool(s string) (v, ok bool) {
	switch strings.ToLower(s) {
	case "", "false", "no", "0":
		return false, true
	case "true", "yes", "1":
		return true, true
	}
	return false, false
}

// quote quotes a value for an error message, cut to its first 64 bytes so
// that a hostile file cannot make a huge log line.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
