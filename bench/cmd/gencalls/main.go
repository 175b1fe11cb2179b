// Command gencalls writes a synthetic VoIP call capture (pcap) for the demo,
// the tests and the benchmarks: N concurrent calls, both directions, RTP
// carrying real tones, optional VLAN tags and impairments.
//
//	gencalls --calls 20 --vlan 85 --duration 10s --agent-tone 1000 --out demo.pcap
//
// It prints one line per call (agent ID, phone and gateway addresses, tones)
// and a final "wrote PATH" line. Exit codes: 0 success, 1 the file could not
// be written, 2 bad usage.
package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/spf13/cobra"
)

func main() { cli.Main(newRootCmd()) }

type options struct {
	calls      int
	vlan       uint16
	priority   uint8
	outerVLAN  uint16
	codec      string
	ptime      time.Duration
	duration   time.Duration
	spread     time.Duration
	agentTone  float64
	agentWAV   string
	firstAgent int
	ipv6       bool
	startSeq   int
	seed       uint64
	loss       float64
	burstRate  float64
	burstLen   int
	jitter     time.Duration
	reorder    float64
	duplicate  float64
	nanosecond bool
	vad        bool
	out        string
	quiet      bool
}

func newRootCmd() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "gencalls --out FILE [flags]",
		Short: "Write a synthetic VoIP call capture (pcap)",
		Long: `gencalls writes a pcap of N concurrent calls, both directions, RTP over UDP over
IPv4 (or IPv6), optionally 802.1Q tagged. Call i (from 0) is agent 1001+i: phone
10.10.a.b port 20000+2i talking to gateway 10.20.a.b port 30000+2i, where
a = i/250 and b = i%250+1. Agent 1001's phone sends --agent-tone (or --agent-wav)
and its far side sends digital silence; every other call carries two tones of its
own. Impairment rates are percentages; the same --seed writes the same file.`,
		Example: `  gencalls --calls 20 --vlan 85 --duration 10s --agent-tone 1000 --out demo.pcap
  gencalls --calls 1000 --duration 10s --loss 2 --jitter 30ms --reorder 1 --duplicate 1 --out load.pcap
  gencalls --calls 1 --start-seq 65500 --codec PCMA --out wrap.pcap`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return run(cmd, &o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.calls, "calls", 20, "number of concurrent calls")
	f.Uint16Var(&o.vlan, "vlan", 0, "802.1Q VLAN ID (0: untagged)")
	f.Uint8Var(&o.priority, "priority", 5, "802.1p priority of the VLAN tag (used with --vlan)")
	f.Uint16Var(&o.outerVLAN, "outer-vlan", 0, "802.1ad (QinQ) outer VLAN ID (0: none)")
	f.StringVar(&o.codec, "codec", "PCMU", "codec: PCMU, PCMA or G729")
	f.DurationVar(&o.ptime, "ptime", 20*time.Millisecond, "packet time")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "duration of every call")
	f.DurationVar(&o.spread, "spread", 0, "stagger call starts over this span (0: one packet time)")
	f.Float64Var(&o.agentTone, "agent-tone", 1000, "tone in Hz sent by the first agent's phone")
	f.StringVar(&o.agentWAV, "agent-wav", "", "WAV file (16-bit mono 8 kHz) sent by the first agent's phone instead of the tone")
	f.IntVar(&o.firstAgent, "first-agent", 1001, "agent ID of the first call")
	f.BoolVar(&o.ipv6, "ipv6", false, "use IPv6 (fd00:10::a:b phones, fd00:20::a:b gateways)")
	f.IntVar(&o.startSeq, "start-seq", -1, "first RTP sequence number of every stream (-1: random from --seed)")
	f.Uint64Var(&o.seed, "seed", 1, "seed for SSRCs, sequence numbers and impairments")
	f.Float64Var(&o.loss, "loss", 0, "random loss, percent of packets")
	f.Float64Var(&o.burstRate, "burst-rate", 0, "percent of packets that start a loss burst")
	f.IntVar(&o.burstLen, "burst-len", 5, "packets lost per burst")
	f.DurationVar(&o.jitter, "jitter", 0, "capture time delayed uniformly by up to this much")
	f.Float64Var(&o.reorder, "reorder", 0, "percent of packets delayed by 1.5 packet times (reordered)")
	f.Float64Var(&o.duplicate, "duplicate", 0, "percent of packets written twice")
	f.BoolVar(&o.vad, "vad", false, "G.729 only: voice activity detection (SID frames, no packets during silence)")
	f.BoolVar(&o.nanosecond, "nanosecond", false, "write a nanosecond-resolution pcap")
	f.StringVarP(&o.out, "out", "o", "", "output pcap file (- for standard output)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "do not print the per-call summary")
	return cmd
}

func run(cmd *cobra.Command, o *options) error {
	if o.out == "" {
		return cli.Usagef("--out is required (a pcap file name, or - for standard output)")
	}
	codec, err := gen.ParseCodec(o.codec)
	if err != nil {
		return cli.Usagef("--codec: %v", err)
	}
	if o.startSeq < -1 || o.startSeq > 65535 {
		return cli.Usagef("--start-seq %d is outside [0, 65535]", o.startSeq)
	}
	for _, p := range []struct {
		name string
		v    float64
	}{{"--loss", o.loss}, {"--burst-rate", o.burstRate}, {"--reorder", o.reorder}, {"--duplicate", o.duplicate}} {
		if !(p.v >= 0 && p.v <= 100) {
			return cli.Usagef("%s %v is outside [0, 100] percent", p.name, p.v)
		}
	}
	if o.burstLen < 1 {
		return cli.Usagef("--burst-len %d must be at least 1", o.burstLen)
	}
	if o.jitter < 0 {
		return cli.Usagef("--jitter %v is negative", o.jitter)
	}
	if o.agentTone <= 0 || o.agentTone >= 4000 {
		return cli.Usagef("--agent-tone %v Hz is outside (0, 4000)", o.agentTone)
	}
	bc := gen.BuildConfig{
		Calls: o.calls, VLAN: o.vlan, OuterVLAN: o.outerVLAN, Codec: codec, Ptime: o.ptime,
		Duration: o.duration, Spread: o.spread, AgentTone: o.agentTone, FirstAgentID: o.firstAgent,
		IPv6: o.ipv6, Seed: o.seed,
	}
	if o.vlan != 0 {
		bc.Priority = o.priority
	}
	if o.priority > 7 {
		return cli.Usagef("--priority %d is above 7", o.priority)
	}
	if o.startSeq >= 0 {
		bc.FixedSeq, bc.StartSeq = true, uint16(o.startSeq)
	}
	if o.duration <= 0 {
		return cli.Usagef("--duration %v must be positive", o.duration)
	}
	calls, err := gen.Build(bc)
	if err != nil {
		return cli.Usage(err)
	}
	if o.vad && codec != gen.G729 {
		return cli.Usagef("--vad needs --codec G729, not %s", codec)
	}
	for i := range calls {
		calls[i].VAD = o.vad
	}
	if o.agentWAV != "" {
		fh, err := os.Open(o.agentWAV)
		if err != nil {
			return cli.Usagef("--agent-wav: %v", err)
		}
		pcm, err := gen.ReadWAV(fh)
		fh.Close()
		if err != nil {
			return cli.Usagef("--agent-wav %s: %v", o.agentWAV, err)
		}
		calls[0].FromAgent.PCM = pcm
	}
	cfg := &gen.Config{
		Calls: calls,
		Seed:  o.seed,
		Impair: gen.Impairments{
			Loss: o.loss / 100, BurstRate: o.burstRate / 100, BurstLen: o.burstLen,
			Jitter: o.jitter, Reorder: o.reorder / 100, Duplicate: o.duplicate / 100,
		},
		Nanosecond: o.nanosecond,
	}
	if err := cfg.Validate(); err != nil {
		return cli.Usage(err)
	}
	info := cmd.OutOrStdout()
	var w io.Writer
	var fh *os.File
	if o.out == "-" {
		w, info = cmd.OutOrStdout(), cmd.ErrOrStderr()
	} else {
		fh, err = os.Create(o.out)
		if err != nil {
			return cli.Failf("cannot create %s: %v", o.out, err)
		}
		w = fh
	}
	res, err := gen.Write(w, cfg)
	if err != nil {
		if fh != nil {
			fh.Close()
			os.Remove(o.out)
		}
		return cli.Failf("writing %s: %v", o.out, err)
	}
	if fh != nil {
		if err := fh.Close(); err != nil {
			return cli.Failf("writing %s: %v", o.out, err)
		}
	}
	if !o.quiet {
		if err := gen.WriteSummary(info, calls); err != nil {
			return cli.Failf("printing the summary: %v", err)
		}
	}
	var lost, dups int
	for _, s := range res.Streams {
		lost += s.Lost
		dups += s.Duplicates
	}
	fmt.Fprintf(info, "%d calls, %d streams, %d frames (%d lost, %d duplicates), %d bytes\n",
		len(calls), len(res.Streams), res.Frames, lost, dups, res.Bytes)
	fmt.Fprintf(info, "wrote %s\n", o.out)
	return nil
}
