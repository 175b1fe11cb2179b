package directory

import "net/netip"

// Merge returns one directory made of parts, given in order of
// precedence: an agent id found in several parts is taken whole from the
// first part that has it, and an extension, phone IP or phone MAC that an
// agent of an earlier part (or an earlier agent of the same part) already
// has is left out of the later agent, so that each stays on one agent as
// in a loaded file. Nil parts are skipped; Merge of no part is an empty
// directory. The parts are not modified. A cluster merges the directories
// its members loaded this way, every member in the same order, so that
// every member ends with the same directory.
func Merge(parts ...*Directory) *Directory {
	n := 0
	for _, p := range parts {
		if p != nil {
			n += len(p.agents)
		}
	}
	agents := make([]Agent, 0, n)
	ids := make(map[string]bool, n)
	exts := make(map[string]bool)
	ips := make(map[netip.Addr]bool)
	macs := make(map[[6]byte]bool)
	for _, p := range parts {
		if p == nil {
			continue
		}
		for _, a := range p.agents {
			if ids[a.ID] {
				continue
			}
			ids[a.ID] = true
			a = a.clone()
			a.Extensions = keep(a.Extensions, func(x string) bool {
				if exts[x] {
					return false
				}
				exts[x] = true
				return true
			})
			var devs []Device
			for _, d := range a.Devices {
				if d.IP.IsValid() && ips[d.IP] {
					d.IP = netip.Addr{}
				}
				if len(d.MAC) == 6 && macs[[6]byte(d.MAC)] {
					d.MAC = nil
				}
				if !d.IP.IsValid() && d.MAC == nil {
					continue
				}
				if d.IP.IsValid() {
					ips[d.IP] = true
				}
				if d.MAC != nil {
					macs[[6]byte(d.MAC)] = true
				}
				devs = append(devs, d)
			}
			a.Devices = devs
			agents = append(agents, a)
		}
	}
	return newDirectory(agents)
}

// keep returns the elements of s that ok accepts, in order; nil when
// none is, as a loaded agent without values has.
func keep[T any](s []T, ok func(T) bool) []T {
	var out []T
	for _, v := range s {
		if ok(v) {
			out = append(out, v)
		}
	}
	return out
}
