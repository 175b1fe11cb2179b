package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/playout"
)

func newRenderCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "render FILE --out OUT.wav",
		Short: "Decode the RTP of a capture through the jitter buffer into a WAV file",
		Long: `Decode the RTP of a pcap or pcapng capture through the same jitter buffer,
decoders and mixer as the supervisor service, offline: as fast as possible,
with the capture's timestamps as the clock. Both directions are mixed (sum
with saturation) into a 16-bit PCM WAV at 8 kHz, mono unless --stereo.

With --endpoint, RTP from an endpoint is the agent's side and RTP to it the
customer's; an endpoint is IP or IP:PORT. Without it, the source of the first
RTP packet is taken as the agent's endpoint.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRender(cmd, args[0])
		},
	}
	c.Flags().String("out", "", "WAV file to write")
	c.Flags().StringArray("endpoint", nil, "keep only RTP to or from this endpoint (IP or IP:PORT); repeatable")
	c.Flags().Bool("stereo", false, "agent on the left channel, customer on the right")
	c.Flags().StringArray("codec", nil, "map a dynamic payload type to a codec, as 96=G729; repeatable")
	c.Flags().Duration("min-delay", playout.DefaultMinDelay, "jitter buffer's smallest target")
	c.Flags().Duration("max-delay", playout.DefaultMaxDelay, "jitter buffer's largest target")
	return c
}

type endpoint struct {
	addr netip.Addr
	port uint16 // 0: any
}

func (e endpoint) match(a netip.AddrPort) bool {
	return a.Addr().Unmap() == e.addr && (e.port == 0 || a.Port() == e.port)
}

func parseEndpoint(s string) (endpoint, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return endpoint{ap.Addr().Unmap(), ap.Port()}, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return endpoint{addr: a.Unmap()}, nil
	}
	return endpoint{}, cli.Usagef("endpoint %q is not an IP address or IP:PORT", s)
}

func parseCodecMap(specs []string) (map[uint8]playout.Codec, error) {
	m, err := playout.ParsePayloadTypes(specs)
	return m, cli.Usage(err)
}

func runRender(cmd *cobra.Command, path string) error {
	fl := cmd.Flags()
	out, _ := fl.GetString("out")
	if out == "" {
		return cli.Usagef("smctl render needs --out OUT.wav")
	}
	specs, _ := fl.GetStringArray("endpoint")
	var eps []endpoint
	for _, s := range specs {
		e, err := parseEndpoint(s)
		if err != nil {
			return err
		}
		eps = append(eps, e)
	}
	codecSpecs, _ := fl.GetStringArray("codec")
	codecs, err := parseCodecMap(codecSpecs)
	if err != nil {
		return err
	}
	minD, _ := fl.GetDuration("min-delay")
	maxD, _ := fl.GetDuration("max-delay")
	cfg := playout.Config{MinDelay: minD, MaxDelay: maxD, PayloadTypes: codecs}
	if err := cfg.Validate(); err != nil {
		return cli.Usage(err)
	}
	stereo, _ := fl.GetBool("stereo")
	channels := 1
	if stereo {
		channels = 2
	}

	src, err := capture.OpenFile(path, capture.FileOptions{})
	if err != nil {
		return cli.Usage(err)
	}
	defer src.Close()
	sink, err := playout.CreateWAV(out, channels)
	if err != nil {
		return cli.Failf("%v", err)
	}
	st, err := render(src, eps, cfg, sink)
	if cerr := sink.Close(); err == nil && cerr != nil {
		err = cli.Failf("write %s: %v", out, cerr)
	}
	if err != nil {
		return err
	}
	t := st.Total()
	if t.Packets == 0 {
		if len(eps) > 0 {
			return cli.Failf("capture %q holds no RTP to or from %s", path, strings.Join(specs, ", "))
		}
		return cli.Failf("capture %q holds no RTP", path)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "rendered %d packets (%d lost, %d late, %d concealed frames), %.2f s\n",
		t.Packets, t.Lost, t.Late, t.Concealed, st.Seconds)
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
	return nil
}

// render feeds the capture's RTP through a Renderer into sink, with the
// capture's timestamps as the clock.
func render(src capture.Source, eps []endpoint, cfg playout.Config, sink playout.Sink) (playout.Stats, error) {
	r := playout.NewRenderer(cfg, sink.Channels(), false)
	defer r.Close()
	frames := make([][]byte, 64)
	infos := make([]capture.Info, 64)
	var p capture.Packet
	lt := src.LinkType()
	auto := len(eps) == 0
	write := func(b []int16) error {
		if err := sink.Write(b); err != nil {
			return cli.Failf("%v", err)
		}
		return nil
	}
	for {
		n, err := src.ReadBatch(frames, infos)
		for i := range n {
			if p.Decode(frames[i], lt, &infos[i]) != nil || p.Kind != capture.KindRTP {
				continue
			}
			if auto {
				eps = []endpoint{{addr: p.Src.Addr().Unmap(), port: p.Src.Port()}}
				auto = false
			}
			var dir playout.Direction
			for _, e := range eps {
				if e.match(p.Src) {
					dir = playout.FromAgent
					break
				}
				if e.match(p.Dst) {
					dir = playout.ToAgent
				}
			}
			if dir == 0 {
				continue
			}
			ts := infos[i].Timestamp
			for b := r.Render(ts); len(b) > 0; b = r.Render(ts) {
				if err := write(b); err != nil {
					return r.Stats(), err
				}
			}
			r.Push(dir, ts, p.UDP)
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return r.Stats(), cli.Failf("%v", err)
		}
	}
	for b := r.Flush(); len(b) > 0; b = r.Flush() {
		if err := write(b); err != nil {
			return r.Stats(), err
		}
	}
	return r.Stats(), nil
}
