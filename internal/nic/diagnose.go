package nic

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Verdicts.
const (
	Pass = "PASS"
	Fail = "FAIL"
)

// Diagnosis codes, one per outcome the test tells apart.
const (
	CodeTagInFrame    = "tag-in-frame"    // PASS: the tag is in the frame
	CodeTagOutOfBand  = "tag-out-of-band" // PASS: stripped by the driver, reported out of band
	CodeTagStripped   = "tag-stripped"    // FAIL: frames arrived with no tag at all
	CodeWrongVLAN     = "wrong-vlan"      // FAIL: frames arrived tagged with another VLAN
	CodeIncomplete    = "incomplete"      // FAIL: fewer tagged frames than expected
	CodeInterfaceDown = "interface-down"  // FAIL: nothing arrived, the interface is down
	CodeNoCarrier     = "no-carrier"      // FAIL: nothing arrived, no link
	CodeNothing       = "nothing-arrived" // FAIL: nothing arrived, the link is up
	CodeSendFailed    = "send-failed"     // FAIL (selftest): the frames could not be sent
)

// Diagnosis is the verdict with what it means: for a FAIL, the likely cause
// and the fix.
type Diagnosis struct {
	Verdict string   `json:"verdict"`
	Code    string   `json:"code"`
	Summary string   `json:"summary"`
	Cause   string   `json:"cause,omitempty"`
	Fix     string   `json:"fix,omitempty"`
	Notes   []string `json:"notes,omitempty"`
}

// Situation is what Diagnose needs besides the counts.
type Situation struct {
	VLAN    uint16
	Timeout time.Duration // how long the listener waited
	// Rx is the receiving interface's state, read after listening; nil if
	// it could not be read.
	Rx *State
	// PromiscError says why promiscuous mode could not be turned on.
	PromiscError error
	// Selftest says the frames were sent by this process (from Tx), so
	// every test frame belongs to the run.
	Selftest bool
	Tx       *State
	// SendError says why the selftest's sender stopped early, or nil.
	SendError error
}

// Diagnose turns the counts and the situation into a verdict. PASS needs
// every expected frame tagged with the expected VLAN, in the frame or out
// of band; each FAIL names the likely cause and the fix.
func Diagnose(c *Counts, s *Situation) Diagnosis {
	ifn := "the interface"
	if s.Rx != nil {
		ifn = s.Rx.Name
	}
	var d Diagnosis
	switch {
	case c.Expected > 0 && c.Tagged >= c.Expected:
		d.Verdict = Pass
		if c.OutOfBand > 0 {
			d.Code = CodeTagOutOfBand
			d.Summary = fmt.Sprintf("%d of %d frames arrived on %s with 802.1Q VLAN %d; the tag of %d was taken out of the frame (by the driver with rx-vlan-offload, or by the kernel) and reported out of band, which is fine for silentmon: it reads the tag from the kernel's ancillary data",
				c.Tagged, c.Expected, ifn, s.VLAN, c.OutOfBand)
		} else {
			d.Code = CodeTagInFrame
			d.Summary = fmt.Sprintf("%d of %d frames arrived on %s with 802.1Q VLAN %d, the tag seen in the frame", c.Tagged, c.Expected, ifn, s.VLAN)
		}
	case c.Untagged > 0 && c.Untagged >= c.WrongVLAN:
		d.Verdict, d.Code = Fail, CodeTagStripped
		d.Summary = fmt.Sprintf("%d test frames arrived on %s with no VLAN tag at all, neither in the frame nor reported out of band (%d of %d arrived tagged with VLAN %d)",
			c.Untagged, ifn, c.Tagged, c.Expected, s.VLAN)
		d.Cause = fmt.Sprintf("the tag was removed before the capture socket saw it: the driver strips tags without reporting them, a VLAN sub-interface such as %s.%d consumes the tagged frames, or something on the way pops the tag (a switch port in access mode, a SPAN session that does not replicate tags, a tc filter)", ifn, s.VLAN)
		d.Fix = fmt.Sprintf("remove VLAN sub-interfaces of %s (ip link del %s.%d) and tc filters on the path; try ethtool -K %s rxvlan on (the kernel then reports the tag out of band) or off; make the SPAN session keep tags (encapsulation replicate) and the sending port a trunk; otherwise use a NIC whose driver passes tagged frames", ifn, ifn, s.VLAN, ifn)
	case c.WrongVLAN > 0 || (c.Tagged == 0 && len(c.OtherVLANs) > 0 && !s.Selftest):
		d.Verdict, d.Code = Fail, CodeWrongVLAN
		n := c.WrongVLAN
		what := "test frames"
		if n == 0 {
			what = "tagged frames"
			for _, v := range c.OtherVLANs {
				n += v
			}
		}
		d.Summary = fmt.Sprintf("%d %s arrived on %s tagged with VLAN %s, not VLAN %d (%d of %d with VLAN %d)",
			n, what, ifn, vlanList(c.OtherVLANs), s.VLAN, c.Tagged, c.Expected, s.VLAN)
		d.Cause = "the frames carry another VLAN: the sender tags another VLAN, or a switch rewrote the tag (native VLAN, VLAN translation, a SPAN source on the wrong VLAN)"
		d.Fix = fmt.Sprintf("send and listen on the voice VLAN (smnic --vlan %d if that is the voice VLAN), or fix the switch so the frames keep VLAN %d", firstVLAN(c.OtherVLANs), s.VLAN)
	case c.Tagged > 0:
		d.Verdict, d.Code = Fail, CodeIncomplete
		d.Summary = fmt.Sprintf("only %d of %d frames arrived on %s with VLAN %d within %s", c.Tagged, c.Expected, ifn, s.VLAN, s.Timeout)
		d.Cause = "frames were lost on the way or in the NIC, or the sender stopped early or sent fewer frames"
		d.Fix = fmt.Sprintf("rerun with a longer --timeout and check drop counters (ip -s link show %s, ethtool -S %s)", ifn, ifn)
	case s.SendError != nil && c.Accounted() == 0:
		d.Verdict, d.Code = Fail, CodeSendFailed
		d.Summary = fmt.Sprintf("nothing arrived on %s because the frames could not be sent: %v", ifn, s.SendError)
		d.Cause = "the sending interface refused the frames (it is down, or the driver rejects them)"
		d.Fix = "bring the sending interface up (ip link set IF up) and rerun the test"
		if s.Tx != nil {
			d.Fix = fmt.Sprintf("bring %s up (ip link set %s up) and rerun the test", s.Tx.Name, s.Tx.Name)
		}
	case s.Rx != nil && !s.Rx.Up:
		d.Verdict, d.Code = Fail, CodeInterfaceDown
		d.Summary = fmt.Sprintf("nothing arrived on %s: the interface is administratively down", ifn)
		d.Cause = "the interface is not up, so the driver delivers no frames"
		d.Fix = fmt.Sprintf("ip link set %s up, then rerun the test", ifn)
	case s.Rx != nil && !s.Rx.Running:
		d.Verdict, d.Code = Fail, CodeNoCarrier
		d.Summary = fmt.Sprintf("nothing arrived on %s: the link is down (no carrier)", ifn)
		d.Cause = "no link: the cable is unplugged or broken, the switch port, hub or peer is down"
		d.Fix = fmt.Sprintf("check the cabling and the switch port (or the peer of a veth pair); ip link show %s must say LOWER_UP", ifn)
	default:
		d.Verdict, d.Code = Fail, CodeNothing
		var b strings.Builder
		fmt.Fprintf(&b, "nothing of the test arrived on %s within %s", ifn, s.Timeout)
		if c.Seen > 0 {
			fmt.Fprintf(&b, " (%d other frames did, so the link works)", c.Seen)
		}
		d.Summary = b.String()
		d.Cause = "the frames are not delivered to this NIC: the SPAN session's source or destination is wrong, the sender's destination MAC is neither this NIC's nor broadcast behind a switch, promiscuous mode is refused (a VM port group), or the NIC filters VLANs it does not know (rx-vlan-filter)"
		d.Fix = fmt.Sprintf("check the cabling and the SPAN session (source: the voice gateway's port, destination: this NIC's port), send to this NIC's MAC (smnic send --dst-mac"+" %s), allow promiscuous mode in the VM port group, turn VLAN filtering off (ethtool -K %s rx-vlan-filter off)", rxMAC(s), ifn)
	}
	d.Notes = notes(s, ifn)
	return d
}

func rxMAC(s *Situation) string {
	if s.Rx != nil && s.Rx.MAC != "" {
		return s.Rx.MAC
	}
	return "MAC"
}

func notes(s *Situation, ifn string) []string {
	var n []string
	if st := s.Rx; st != nil {
		n = append(n, fmt.Sprintf("%s: %s, %s, promiscuous %s%s", ifn,
			onOff(st.Up, "up", "down"), onOff(st.Running, "link up", "no carrier"),
			onOff(st.Promiscuous, "on (set by the administrator)", "on for the test (PACKET_MR_PROMISC)"),
			driverNote(st)))
		if s.PromiscError != nil {
			n = append(n, fmt.Sprintf("promiscuous mode could not be turned on (%v): frames for other MACs are dropped", s.PromiscError))
		}
		if on, ok := st.Feature(FeatureRxVLANParse); ok {
			if on {
				n = append(n, fmt.Sprintf("%s has rx-vlan-offload on: the driver strips tags and the kernel reports them out of band; silentmon reads them there, so this is fine", ifn))
			} else {
				n = append(n, fmt.Sprintf("%s has rx-vlan-offload off: the NIC leaves tags in the frame (the kernel may still move them out of band before capture, which is fine)", ifn))
			}
		} else if st.FeaturesError != "" {
			n = append(n, fmt.Sprintf("offload features of %s could not be read: %s", ifn, st.FeaturesError))
		}
		if on, ok := st.Feature(FeatureRxVLANFilter); ok && on {
			n = append(n, fmt.Sprintf("%s has rx-vlan-filter on: the NIC drops VLANs not configured on it (ethtool -K %s rx-vlan-filter off)", ifn, ifn))
		}
	}
	if st := s.Tx; st != nil {
		n = append(n, fmt.Sprintf("sender %s: %s, %s%s", st.Name, onOff(st.Up, "up", "down"),
			onOff(st.Running, "link up", "no carrier"), driverNote(st)))
		if on, ok := st.Feature(FeatureTxVLANInsert); ok && on {
			n = append(n, fmt.Sprintf("%s has tx-vlan-offload on: the kernel may move the tag out of the frame on the way, which is fine", st.Name))
		}
	}
	return n
}

func driverNote(st *State) string {
	if st.Driver == "" {
		return ""
	}
	return ", driver " + st.Driver
}

func onOff(b bool, yes, no string) string {
	if b {
		return yes
	}
	return no
}

func vlanList(m map[uint16]int) string {
	ids := make([]int, 0, len(m))
	for id := range m {
		ids = append(ids, int(id))
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return strings.Join(parts, ", ")
}

func firstVLAN(m map[uint16]int) uint16 {
	best, bestN := uint16(0), -1
	for id, n := range m {
		if n > bestN || (n == bestN && id < best) {
			best, bestN = id, n
		}
	}
	return best
}
