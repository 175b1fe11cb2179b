package main

import (
	"errors"
	"io"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/cli"
)

// loadFrames reads up to max frames tagged with 802.1Q from the capture at
// path: frames of VLAN vlan, or of any VLAN when vlan is negative. Each is
// copied. A capture that cannot be read, is not Ethernet or has no such
// frame is a usage error naming the file.
func loadFrames(path string, vlan, max int) ([][]byte, error) {
	src, err := capture.OpenFile(path, capture.FileOptions{})
	if err != nil {
		return nil, cli.Usagef("--pcap %q cannot be read: %v", path, errors.Unwrap(err))
	}
	defer src.Close()
	if src.LinkType() != capture.LinkEthernet {
		return nil, cli.Usagef("--pcap %q has link type %d, not Ethernet", path, src.LinkType())
	}
	var (
		out    [][]byte
		pkt    capture.Packet
		frames = make([][]byte, 16)
		infos  = make([]capture.Info, 16)
	)
	for len(out) < max {
		n, err := src.ReadBatch(frames, infos)
		for i := 0; i < n && len(out) < max; i++ {
			_ = pkt.Decode(frames[i], capture.LinkEthernet, nil) // the tags decode before any error
			tag, ok := pkt.OuterVLAN()
			if !ok || tag.TPID != 0x8100 || (vlan >= 0 && int(tag.ID()) != vlan) {
				continue
			}
			out = append(out, append([]byte(nil), frames[i]...))
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, cli.Usagef("--pcap %q cannot be read: %v", path, err)
		}
	}
	if len(out) == 0 {
		if vlan >= 0 {
			return nil, cli.Usagef("--pcap %q has no frame tagged with 802.1Q VLAN %d", path, vlan)
		}
		return nil, cli.Usagef("--pcap %q has no 802.1Q-tagged frame", path)
	}
	return out, nil
}
