package directory

import (
	"net"
	"net/netip"
	"slices"
)

// Agent is one contact-centre agent as the directory knows it.
type Agent struct {
	// ID identifies the agent (smctl monitor start --agent): 1 to 64 of
	// A-Z a-z 0-9 . _ -.
	ID string
	// Name is the agent's display name, up to 128 printable characters;
	// it may be empty.
	Name string
	// Team is the agent's team, for team lists and authorization; it may
	// be empty.
	Team string
	// Extensions are the agent's telephone extensions (SIP user parts),
	// in the order the file gives them.
	Extensions []string
	// Devices are the agent's phones, in the order the file gives them.
	Devices []Device
	// Mobile marks an agent whose calls go through a voice gateway rather
	// than a phone of its own.
	Mobile bool
}

// Device is one of an agent's phones: by IP, by MAC (desktop mode) or
// both, optionally on one voice VLAN.
type Device struct {
	// IP is the phone's address; the zero Addr if the file gives none.
	IP netip.Addr
	// MAC is the phone's Ethernet address (6 bytes); nil if none.
	MAC net.HardwareAddr
	// VLAN is the phone's voice VLAN, 1 to 4094; 0 means any.
	VLAN uint16
}

// clone returns a deep copy of a.
func (a Agent) clone() Agent {
	a.Extensions = slices.Clone(a.Extensions)
	if a.Devices != nil {
		ds := make([]Device, len(a.Devices))
		for i, d := range a.Devices {
			d.MAC = slices.Clone(d.MAC)
			ds[i] = d
		}
		a.Devices = ds
	}
	return a
}

// Directory is a validated set of agents. It is immutable and safe for
// concurrent use; every method returns copies. The zero value is an empty
// directory.
type Directory struct {
	agents []Agent // sorted by ID
	byID   map[string]int
	byExt  map[string]int
	byIP   map[netip.Addr]int
	byMAC  map[[6]byte]int
	byTeam map[string][]int // indexes sorted by ID
	teams  []string         // sorted
}

// Len returns the number of agents.
func (d *Directory) Len() int { return len(d.agents) }

// Agents returns every agent, sorted by ID.
func (d *Directory) Agents() []Agent {
	out := make([]Agent, len(d.agents))
	for i, a := range d.agents {
		out[i] = a.clone()
	}
	return out
}

// ByID returns the agent with the given ID.
func (d *Directory) ByID(id string) (Agent, bool) { return d.lookup(d.byID[id]) }

// ByExtension returns the agent that has the given extension.
func (d *Directory) ByExtension(ext string) (Agent, bool) { return d.lookup(d.byExt[ext]) }

// ByIP returns the agent whose phone has the given address (IPv4-mapped
// IPv6 addresses are unmapped first).
func (d *Directory) ByIP(ip netip.Addr) (Agent, bool) { return d.lookup(d.byIP[ip.Unmap()]) }

// ByMAC returns the agent whose phone has the given Ethernet address.
func (d *Directory) ByMAC(mac net.HardwareAddr) (Agent, bool) {
	if len(mac) != 6 {
		return Agent{}, false
	}
	return d.lookup(d.byMAC[[6]byte(mac)])
}

// lookup turns a map's index plus one (0: absent) into the agent.
func (d *Directory) lookup(i1 int) (Agent, bool) {
	if i1 == 0 {
		return Agent{}, false
	}
	return d.agents[i1-1].clone(), true
}

// ByTeam returns the agents of a team, sorted by ID; none for an unknown
// team or the empty name.
func (d *Directory) ByTeam(team string) []Agent {
	idx := d.byTeam[team]
	if len(idx) == 0 {
		return nil
	}
	out := make([]Agent, len(idx))
	for i, j := range idx {
		out[i] = d.agents[j].clone()
	}
	return out
}

// Teams returns the names of the teams that have at least one agent,
// sorted.
func (d *Directory) Teams() []string { return slices.Clone(d.teams) }

// newDirectory indexes validated agents; it sorts them by ID. The maps
// hold an index plus one, so that a missing key reads as 0.
func newDirectory(agents []Agent) *Directory {
	slices.SortFunc(agents, func(a, b Agent) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	d := &Directory{
		agents: agents,
		byID:   make(map[string]int, len(agents)),
		byExt:  make(map[string]int),
		byIP:   make(map[netip.Addr]int),
		byMAC:  make(map[[6]byte]int),
		byTeam: make(map[string][]int),
	}
	for i, a := range agents {
		d.byID[a.ID] = i + 1
		for _, x := range a.Extensions {
			d.byExt[x] = i + 1
		}
		for _, dev := range a.Devices {
			if dev.IP.IsValid() {
				d.byIP[dev.IP] = i + 1
			}
			if len(dev.MAC) == 6 {
				d.byMAC[[6]byte(dev.MAC)] = i + 1
			}
		}
		if a.Team != "" {
			if d.byTeam[a.Team] == nil {
				d.teams = append(d.teams, a.Team)
			}
			d.byTeam[a.Team] = append(d.byTeam[a.Team], i)
		}
	}
	slices.Sort(d.teams)
	return d
}
