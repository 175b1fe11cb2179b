// Command gencalls writes a synthetic VoIP call capture (pcap) for the demo,
// the tests and the benchmarks: N concurrent calls, both directions, RTP
// carrying real tones, optional VLAN tags and impairments.
//
//	gencalls --calls 20 --vlan 85 --duration 10s --agent-tone 1000 --out demo.pcap
//
// It prints one line per call (agent ID, phone and gateway addresses, tones)
// and a final "wrote PATH" line. Exit codes: 0 success, 1 the file could not
// be written, 2 bad usage.
//
// With --scenario NAME it writes a call-flow scenario instead (hold and
// resume, consultation, transfers, conference, ...; see gencalls --help) and,
// next to the capture, its JSON manifest (FILE.pcap → FILE.json, or
// --manifest PATH): who is monitored, which leg carries which tone when.
//
//	gencalls --scenario consult-retrieve --out consult.pcap
//
// With --sip the scenario's capture also holds its SIP/SDP signalling
// (REGISTER, INVITE with SDP, re-INVITE for holds, REFER for transfers,
// BYE) between the phones and the PBX at 10.0.0.10:5060, and the manifest
// its Call-IDs and SDP media; the sip-* scenarios always have it.
//
//	gencalls --scenario hold-resume --sip --out hold.pcap
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/silentmon/silentmon/bench/gen"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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
	scenario   string
	manifest   string
	sip        bool
	dynamicPT  int
	digits     string
	hideKeys   bool
}

// scenarioHelp lists the scenarios for the long help.
func scenarioHelp() string {
	var b strings.Builder
	b.WriteString("\n\nScenarios (--scenario NAME; each also writes a JSON manifest, FILE.json; --sip adds the\n" +
		"calls' SIP/SDP signalling between the phones and the PBX at 10.0.0.10:5060):\n")
	for _, s := range gen.Scenarios() {
		fmt.Fprintf(&b, "  %-18s %s", s.Name, s.Summary)
		if s.NeedsG729 {
			b.WriteString(" [needs bcg729]")
		}
		if s.SIP {
			b.WriteString(" [always with SIP]")
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
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
own. Impairment rates are percentages; the same --seed writes the same file.` + scenarioHelp(),
		Example: `  gencalls --calls 20 --vlan 85 --duration 10s --agent-tone 1000 --out demo.pcap
  gencalls --calls 1000 --duration 10s --loss 2 --jitter 30ms --reorder 1 --duplicate 1 --out load.pcap
  gencalls --calls 1 --start-seq 65500 --codec PCMA --out wrap.pcap
  gencalls --scenario consult-retrieve --seed 3 --out consult.pcap`,
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
	f.StringVar(&o.codec, "codec", "PCMU", "codec: PCMU, PCMA, G729, G722 or opus")
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
	f.StringVar(&o.scenario, "scenario", "", "write this call-flow scenario and its manifest (names below)")
	f.StringVar(&o.manifest, "manifest", "", "with --scenario: the manifest's path (default: --out with .json)")
	f.BoolVar(&o.sip, "sip", false, "with --scenario: also write the calls' SIP/SDP signalling (always on for the sip-* scenarios)")
	f.IntVar(&o.dynamicPT, "dynamic-pt", 0, "send the codec on this dynamic payload type (96-127, not 101; the SDP maps it, e.g. a=rtpmap:96 G729/8000)")
	f.StringVar(&o.digits, "digits", "", "DTMF digits the first agent's phone sends as RFC 4733 events on payload type 101, one every 300 ms from 1 s into its call")
	f.BoolVar(&o.hideKeys, "hide-srtp-keys", false, "with --scenario: leave SRTP calls' SDES keys out of the SDP (RTP/SAVP without a=crypto, as with SIP over TLS)")
	return cmd
}

func run(cmd *cobra.Command, o *options) error {
	if o.out == "" {
		return cli.Usagef("--out is required (a pcap file name, or - for standard output)")
	}
	if o.scenario != "" {
		return runScenario(cmd, o)
	}
	if o.manifest != "" {
		return cli.Usagef("--manifest %s needs --scenario", o.manifest)
	}
	if o.sip {
		return cli.Usagef("--sip needs --scenario")
	}
	if o.hideKeys {
		return cli.Usagef("--hide-srtp-keys needs --scenario")
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
		calls[i].PayloadType = uint8(o.dynamicPT)
	}
	if o.dynamicPT < 0 || o.dynamicPT > 127 {
		return cli.Usagef("--dynamic-pt %d is not a payload type from 96 to 127", o.dynamicPT)
	}
	for i := range len(o.digits) {
		calls[0].FromAgent.Events = append(calls[0].FromAgent.Events,
			gen.Event{At: time.Second + time.Duration(i)*300*time.Millisecond, Digit: o.digits[i]})
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
	out, err := createOutput(cmd, o.out)
	if err != nil {
		return err
	}
	res, err := gen.Write(out.w, cfg)
	if err := out.finish(err); err != nil {
		return err
	}
	info := out.info
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

// output is where a capture goes: standard output for --out -, else a file.
type output struct {
	path string
	w    io.Writer
	info io.Writer // for the summary: standard error when the capture is on standard output
	fh   *os.File  // nil on standard output
}

// createOutput creates the file path, or for "-" writes to standard output.
func createOutput(cmd *cobra.Command, path string) (*output, error) {
	out := &output{path: path, w: cmd.OutOrStdout(), info: cmd.OutOrStdout()}
	if path == "-" {
		out.info = cmd.ErrOrStderr()
		return out, nil
	}
	fh, err := os.Create(path)
	if err != nil {
		return nil, cli.Failf("cannot create %s: %v", path, err)
	}
	out.w, out.fh = fh, fh
	return out, nil
}

// finish closes the file once writing it returned err; if the writing or
// the close failed, it removes the file and returns the error to report.
func (out *output) finish(err error) error {
	if err == nil && out.fh != nil {
		err = out.fh.Close()
	}
	if err != nil {
		if out.fh != nil {
			out.fh.Close()
			os.Remove(out.path)
		}
		return cli.Failf("writing %s: %v", out.path, err)
	}
	return nil
}

// remove removes the file written; nothing for standard output.
func (out *output) remove() {
	if out.fh != nil {
		os.Remove(out.path)
	}
}

// scenarioFlags are the flags that make sense with --scenario.
var scenarioFlags = map[string]bool{"scenario": true, "manifest": true, "out": true, "seed": true,
	"nanosecond": true, "quiet": true, "sip": true, "codec": true, "dynamic-pt": true, "digits": true, "hide-srtp-keys": true}

func runScenario(cmd *cobra.Command, o *options) error {
	var bad []string
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if !scenarioFlags[f.Name] {
			bad = append(bad, "--"+f.Name)
		}
	})
	if len(bad) > 0 {
		return cli.Usagef("%s cannot be used with --scenario (a scenario fixes its calls; use --seed)",
			strings.Join(bad, ", "))
	}
	manifest := o.manifest
	if manifest == "" {
		if o.out == "-" {
			return cli.Usagef("--out - with --scenario needs --manifest PATH")
		}
		manifest = strings.TrimSuffix(o.out, filepath.Ext(o.out)) + ".json"
	}
	if manifest == o.out {
		return cli.Usagef("--manifest %s is the capture file", manifest)
	}
	opts := gen.ScenarioOptions{SIP: o.sip, Digits: o.digits, HideSRTPKeys: o.hideKeys}
	if cmd.Flags().Changed("codec") {
		c, err := gen.ParseCodec(o.codec)
		if err != nil {
			return cli.Usagef("--codec: %v", err)
		}
		opts.Codec = &c
	}
	if o.dynamicPT < 0 || o.dynamicPT > 127 {
		return cli.Usagef("--dynamic-pt %d is not a payload type from 96 to 127", o.dynamicPT)
	}
	opts.PayloadType = uint8(o.dynamicPT)
	spec, err := gen.ScenarioWith(o.scenario, o.seed, opts)
	if errors.Is(err, gen.ErrCodecUnavailable) {
		return cli.Failf("--scenario %s: %v", o.scenario, err)
	}
	if err != nil {
		return cli.Usagef("--scenario: %v", err)
	}
	spec.Config.Nanosecond = o.nanosecond
	out, err := createOutput(cmd, o.out)
	if err != nil {
		return err
	}
	res, err := spec.Write(out.w)
	if err := out.finish(err); err != nil {
		return err
	}
	info := out.info
	// A capture without its manifest is of no use to a listening test:
	// remove it when the manifest cannot be written.
	mf, err := os.Create(manifest)
	if err != nil {
		out.remove()
		return cli.Failf("cannot create %s: %v", manifest, err)
	}
	err = spec.Manifest.WriteJSON(mf)
	if cerr := mf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(manifest)
		out.remove()
		return cli.Failf("writing %s: %v", manifest, err)
	}
	if !o.quiet {
		if err := writeLegs(info, spec.Manifest); err != nil {
			return cli.Failf("printing the summary: %v", err)
		}
	}
	fmt.Fprintf(info, "scenario %s: %d streams, %d frames (%d non-RTP), %d bytes\n", spec.Name,
		len(res.Streams), res.Frames, res.Datagrams, res.Bytes)
	if m := spec.Manifest.SIP; m != nil {
		fmt.Fprintf(info, "SIP: %d registrations, %d calls\n", len(m.Registrations), len(m.Calls))
	}
	fmt.Fprintf(info, "wrote %s\n", manifest)
	fmt.Fprintf(info, "wrote %s\n", o.out)
	return nil
}

// writeLegs prints one line per leg of the manifest.
func writeLegs(w io.Writer, m *gen.Manifest) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "agent\tleg\tdirection\ttone\tsrc\tdst\tvlan\tmonitored\tactive_s")
	for _, l := range m.Legs {
		agent, vlan := l.Agent, "-"
		if agent == "" {
			agent = "-"
		}
		if l.VLAN != nil {
			vlan = fmt.Sprint(*l.VLAN)
		}
		var spans []string
		for _, s := range l.Active {
			spans = append(spans, fmt.Sprintf("%g-%g", float64(s.FromMS)/1000, float64(s.ToMS)/1000))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%gHz\t%s\t%s\t%s\t%v\t%s\n", agent, l.Name, l.Direction, l.ToneHz, l.Src, l.Dst,
			vlan, l.Monitored, strings.Join(spans, ","))
	}
	return tw.Flush()
}
