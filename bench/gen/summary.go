package gen

import (
	"fmt"
	"io"
	"net"
	"text/tabwriter"
)

// WriteSummary prints one line per call: agent ID, agent address and port,
// far address and port, MACs, VLAN, codec, and the tone each side sends,
// so the monitored agent's phone is easy to find.
func WriteSummary(w io.Writer, calls []Call) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "agent\tagent_addr\tfar_addr\tagent_mac\tvlan\tcodec\tagent_tone\tfar_tone")
	for i := range calls {
		c := &calls[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.AgentID, c.Agent.Addr, c.Far.Addr,
			net.HardwareAddr(c.Agent.MAC[:]), vlanString(c), c.Codec, toneString(&c.FromAgent), toneString(&c.ToAgent))
	}
	return tw.Flush()
}

func vlanString(c *Call) string {
	switch {
	case c.OuterVLAN != 0:
		return fmt.Sprintf("%d.%d/p%d", c.OuterVLAN, c.VLAN, c.Priority)
	case c.VLAN != 0 || c.Priority != 0:
		return fmt.Sprintf("%d/p%d", c.VLAN, c.Priority)
	}
	return "-"
}

func toneString(d *Direction) string {
	switch {
	case d.PCM != nil:
		return fmt.Sprintf("pcm(%d)", len(d.PCM))
	case d.ToneHz == 0:
		return "silence"
	}
	return fmt.Sprintf("%gHz", d.ToneHz)
}
