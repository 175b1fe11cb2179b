package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/capture"
	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/playout"
)

func newRenderCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "render FILE --out OUT.wav",
		Short: "Decode the RTP of a capture through the jitter buffer into a WAV file",
		Long: `Decode the RTP of a pcap or pcapng capture through the same jitter buffers,
decoders and mixer as the supervisor service, offline: as fast as possible,
with the capture's timestamps as the clock. Every RTP stream (SSRC within
its addresses and VLAN) has its own jitter buffer, so SSRC changes,
overlapping calls, stray packets and held calls all render. Both directions
are mixed (sum with saturation) into a 16-bit PCM WAV, mono unless
--stereo. The WAV's rate is the best of the codecs rendered: 8 kHz for
G.711 and G.729 (narrowband streams beside wideband ones are resampled
with libspeexdsp), 16 kHz when a G.722 stream is among them, 48 kHz with
Opus; --rate 8000, 16000 or 48000 forces one.

With --endpoint, RTP from an endpoint is the agent's side and RTP to it the
customer's. An endpoint is written as for "smctl monitor start": IP,
IP:PORT, IP:PORT-PORT, or a MAC address (desktop mode), each optionally
prefixed vlanN/. Without --endpoint, the IP address with the most decodable
RTP (payload types 0, 8, 18 and those mapped with --codec) is taken as the
agent's endpoint, and named on stderr.

Streams of a payload type that cannot be decoded are named on stderr and
skipped; when nothing could be decoded, render exits 1 and writes no file.
The WAV is written next to OUT.wav under a temporary name and renamed when
complete.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRender(cmd, args[0])
		},
	}
	c.Flags().String("out", "", "WAV file to write")
	c.Flags().StringArray("endpoint", nil, "keep only RTP to or from this endpoint (IP, IP:PORT[-PORT] or MAC, optionally vlanN/...); repeatable")
	c.Flags().String("agent", "", "keep only the media of this agent's calls, found from the SIP and SDP in the capture (the id as a SIP user part)")
	c.Flags().StringArray("extension", nil, "with --agent: another of the agent's extensions (SIP user parts); repeatable")
	c.Flags().StringArray("sip-port", []string{"5060"}, "port of the SIP in the capture; repeatable")
	c.Flags().Bool("stereo", false, "agent on the left channel, customer on the right")
	c.Flags().StringArray("codec", nil, "map a dynamic payload type to a codec, as 96=G729; repeatable")
	c.Flags().Duration("min-delay", playout.DefaultMinDelay, "jitter buffer's smallest target")
	c.Flags().Duration("max-delay", playout.DefaultMaxDelay, "jitter buffer's largest target")
	c.Flags().Int("rate", 0, "WAV sample rate: 8000, 16000 or 48000 (default: 16000 with G.722, 48000 with Opus, else 8000)")
	return c
}

// renderRate returns the --rate given, 0 when none: the codecs decide.
func renderRate(cmd *cobra.Command) (int, error) {
	rate, _ := cmd.Flags().GetInt("rate")
	if !cmd.Flags().Changed("rate") {
		return 0, nil
	}
	if rate != 8000 && rate != 16000 && rate != 48000 {
		return 0, cli.Usagef("--rate %d is not 8000, 16000 or 48000", rate)
	}
	if rate != 8000 && !playout.ResamplerBuiltIn {
		return 0, cli.Usagef("--rate %d needs the resampler, which this build leaves out (it needs cgo and libspeexdsp)", rate)
	}
	return rate, nil
}

func parseCodecMap(specs []string) (map[uint8]playout.Codec, error) {
	m, err := playout.ParsePayloadTypes(specs)
	return m, cli.Usage(err)
}

func runRender(cmd *cobra.Command, path string) error {
	fl := cmd.Flags()
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	out, _ := fl.GetString("out")
	if out == "" {
		return cli.Usagef("smctl render needs --out OUT.wav")
	}
	specs, _ := fl.GetStringArray("endpoint")
	var eps []filter.Endpoint
	for _, s := range specs {
		e, err := filter.ParseEndpoint(s)
		if err != nil {
			return cli.Usage(err)
		}
		eps = append(eps, e)
	}
	codecSpecs, _ := fl.GetStringArray("codec")
	codecs, err := parseCodecMap(codecSpecs)
	if err != nil {
		return err
	}
	agent, _ := fl.GetString("agent")
	exts, _ := fl.GetStringArray("extension")
	ports, err := sipPorts(cmd)
	if err != nil {
		return err
	}
	portSpecs, _ := fl.GetStringArray("sip-port")
	var follow *sipFollower
	var sdpNames map[uint8]string // encoding names from the SDP
	skips := &srtpSkips{}
	if agent != "" {
		if !filter.ValidAgent(agent) {
			return cli.Usagef("agent %q is not 1 to %d printable characters without a slash", agent, filter.MaxAgentLen)
		}
		users := []string{agent}
		for _, x := range exts {
			if !filter.ValidExtension(x) {
				return cli.Usagef("extension %q is not 1 to %d of A-Z a-z 0-9 + * # . _ -", x, filter.MaxExtensionLen)
			}
			users = append(users, x)
		}
		// A first pass learns the payload types the SDP maps and whether
		// the agent has calls at all; the render itself follows the SIP
		// as it goes, so each call's media is matched only while the
		// call lasts (an address reused by another phone later is not).
		sdpCodecs, names, calls, err := sipCalls(path, users, ports)
		if err != nil {
			return cli.Usage(err)
		}
		if calls == 0 && len(eps) == 0 {
			return cli.Failf("capture %q holds no SIP call of agent %s (SIP on ports %s)", path, strings.Join(users, ", "), strings.Join(portSpecs, ", "))
		}
		sdpNames = names
		fmt.Fprintf(stderr, "render: agent %s: %s found in the SIP\n", agent, plural(calls, "call"))
		specs = append(specs, "agent "+agent)
		if codecs == nil {
			codecs = map[uint8]playout.Codec{}
		}
		for pt, c := range sdpCodecs {
			if _, given := codecs[pt]; !given {
				codecs[pt] = c
			}
		}
		follow = &sipFollower{users: users, ports: ports, static: slices.Clone(eps), skips: skips}
	} else if len(exts) > 0 {
		return cli.Usagef("--extension needs --agent")
	} else {
		// The SDP of every call maps the dynamic payload types.
		sdpCodecs, names, _, err := sipCalls(path, nil, ports)
		if err != nil {
			return cli.Usage(err)
		}
		sdpNames = names
		for pt, c := range sdpCodecs {
			if codecs == nil {
				codecs = map[uint8]playout.Codec{}
			}
			if _, given := codecs[pt]; !given {
				codecs[pt] = c
			}
		}
	}
	rate, err := renderRate(cmd)
	if err != nil {
		return err
	}
	minD, _ := fl.GetDuration("min-delay")
	maxD, _ := fl.GetDuration("max-delay")
	unknown := &skipLog{sdpNames: sdpNames}
	cfg := playout.Config{MinDelay: minD, MaxDelay: maxD, PayloadTypes: codecs, Logger: slog.New(unknown)}
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

	// The WAV goes to a temporary file beside out, renamed on success: a
	// failed render leaves nothing behind and never truncates out.
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".*.tmp")
	if err != nil {
		return cli.Failf("cannot write %s: %v", out, osErr(err))
	}
	tmpPath := tmp.Name()
	done := false
	defer func() {
		if !done {
			tmp.Close() // an error once the sink closed it
			os.Remove(tmpPath)
		}
	}()

	if len(eps) == 0 && follow == nil {
		pk, err := pickEndpoint(path, cfg, ports)
		if err != nil {
			return err
		}
		if !pk.addr.IsValid() {
			return cli.Failf("capture %q holds no RTP", path)
		}
		eps = []filter.Endpoint{{IP: pk.addr}}
		specs = []string{pk.addr.String()}
		if pk.decodable > 0 {
			fmt.Fprintf(stderr, "render: no --endpoint given; using %s, the endpoint with the most decodable RTP (%s packets in %s)\n",
				pk.addr, thousands(pk.decodable), plural(pk.streams, "stream"))
		} else {
			fmt.Fprintf(stderr, "render: no --endpoint given and no decodable RTP; using %s, the endpoint with the most RTP (%s packets in %s)\n",
				pk.addr, thousands(pk.packets), plural(pk.streams, "stream"))
		}
	}
	// prepare returns a fresh filter and the SIP and SDP state of one
	// pass over the capture, reporting skipped SRTP to sk.
	prepare := func(sk *srtpSkips) (*filter.Filter, func(*capture.Packet, time.Time), func(*capture.Packet, bool) ([]byte, bool)) {
		f := filter.New()
		f.Set([]*filter.Session{{ID: "render", Agent: "render", Endpoints: eps}})
		if follow != nil {
			sf := &sipFollower{users: follow.users, ports: follow.ports, static: slices.Clone(follow.static), skips: sk}
			sf.start(f)
			return f, sf.packet, sf.payload
		}
		sr := &sdpRender{idx: newSDPIndex(ports), skips: sk}
		return f, sr.packet, sr.payload
	}
	if rate == 0 {
		f, other, payload := prepare(&srtpSkips{})
		if rate, err = codecsRate(path, f, cfg, other, payload); err != nil {
			return err
		}
	}
	cfg.SampleRate = rate
	f, other, payload := prepare(skips)

	sink, err := playout.NewWAVSinkRate(tmp, channels, rate)
	if err != nil {
		tmp.Close()
		return cli.Failf("cannot write %s: %v", out, osErr(err))
	}
	st, err := render(src, f, cfg, sink, other, payload)
	if cerr := sink.Close(); err == nil && cerr != nil {
		err = cli.Failf("write %s: %v", out, cerr)
	}
	if err != nil {
		return err
	}

	t := st.Total()
	encrypted := skips.report(stderr)
	if t.Packets == 0 && encrypted > 0 {
		return cli.Failf("capture %q: no stream to or from %s could be rendered: %s of SRTP whose keys the capture does not show (SIP over TLS, or keys exchanged another way)",
			path, strings.Join(specs, ", "), plural(encrypted, "stream"))
	}
	if t.Packets == 0 {
		return cli.Failf("capture %q holds no RTP to or from %s", path, strings.Join(specs, ", "))
	}
	// In order of first packet, retired or not.
	slices.SortStableFunc(st.Streams, func(a, b playout.StreamStats) int { return a.First.Compare(b.First) })
	for _, s := range st.Streams {
		fmt.Fprintln(stdout, streamLine(s, unknown.of(s).types))
	}
	if st.RetiredDropped > 0 {
		fmt.Fprintf(stdout, "(%s, retired early in the capture, not listed or counted)\n",
			plural(int(st.RetiredDropped), "more stream"))
	}
	skipped := reportSkipped(stderr, st, unknown)
	if st.Seconds == 0 {
		if skipped.streams > 0 {
			return cli.Failf("capture %q: no RTP to or from %s could be decoded (%s of payload type %s skipped)",
				path, strings.Join(specs, ", "), plural(skipped.streams, "stream"), unknown.typeNames(skipped.types))
		}
		return cli.Failf("capture %q: %s to or from %s decoded to no audio (comfort noise, events or invalid payloads only)",
			path, plural(int(t.Packets), "RTP packet"), strings.Join(specs, ", "))
	}
	fmt.Fprintf(stdout, "rendered %d packets (%d lost, %d late, %d concealed frames), %.2f s\n",
		t.Packets, t.Lost, t.Late, t.Concealed, st.Seconds)
	if err := os.Rename(tmpPath, out); err != nil {
		return cli.Failf("cannot write %s: %v", out, osErr(err))
	}
	done = true
	fmt.Fprintf(stdout, "wrote %s\n", out)
	return nil
}

// osErr strips the operation and path from a file system error, for a
// message that names the path itself.
func osErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// render feeds the capture's RTP that f matches through a Renderer into
// sink, with the capture's timestamps as the clock: each packet goes to
// the jitter buffer of its stream (direction, addresses and VLAN, SSRC).
// render plays the RTP of src that f matches into sink; other, if not
// nil, sees every other packet first (the SIP that updates f), and
// payload, if not nil, gives each matched packet's RTP (SRTP decrypted;
// false drops the packet).
func render(src capture.Source, f *filter.Filter, cfg playout.Config, sink playout.Sink, other func(*capture.Packet, time.Time),
	payload func(*capture.Packet, bool) ([]byte, bool)) (playout.Stats, error) {
	r := playout.NewRenderer(cfg, sink.Channels(), false)
	defer r.Close()
	write := func(b []int16) error {
		if err := sink.Write(b); err != nil {
			return cli.Failf("%v", err)
		}
		return nil
	}
	var werr error
	err := eachMatched(src, f, other, func(p *capture.Packet, ts time.Time, dir filter.Direction) bool {
		for b := r.Render(ts); len(b) > 0; b = r.Render(ts) {
			if werr = write(b); werr != nil {
				return false
			}
		}
		data, ok := p.UDP, true
		if payload != nil {
			if data, ok = payload(p, dir == filter.FromAgent); !ok {
				return true
			}
		}
		r.PushFlow(playout.Direction(dir), packetFlow(p), ts, data)
		return true
	})
	if werr != nil {
		return r.Stats(), werr
	}
	if err != nil {
		return r.Stats(), cli.Failf("%v", err)
	}
	for b := r.Flush(); len(b) > 0; b = r.Flush() {
		if err := write(b); err != nil {
			return r.Stats(), err
		}
	}
	return r.Stats(), nil
}

// codecsRate reads the capture at path once, as render would, and returns
// the rate its rendered streams are best written at (playout.RateFor of
// the codecs of the RTP it matches).
func codecsRate(path string, f *filter.Filter, cfg playout.Config, other func(*capture.Packet, time.Time),
	payload func(*capture.Packet, bool) ([]byte, bool)) (int, error) {
	src, err := capture.OpenFile(path, capture.FileOptions{})
	if err != nil {
		return 0, cli.Usage(err)
	}
	defer src.Close()
	var seen [128]bool
	var codecs []playout.Codec
	err = eachMatched(src, f, other, func(p *capture.Packet, ts time.Time, dir filter.Direction) bool {
		data, ok := p.UDP, true
		if payload != nil {
			data, ok = payload(p, dir == filter.FromAgent)
		}
		if !ok || len(data) < 2 {
			return true
		}
		if pt := data[1] & 0x7f; !seen[pt] {
			seen[pt] = true
			codecs = append(codecs, cfg.Codec(pt))
		}
		return true
	})
	if err != nil {
		return 0, cli.Failf("read capture %q: %v", path, err)
	}
	return playout.RateFor(codecs...), nil
}

// eachMatched calls fn with every RTP packet of src that f matches, its
// capture time and direction, in the capture's order, until fn returns
// false or src ends; other, if not nil, sees every other packet first
// (the SIP that updates f). It returns the read error that ended src, nil
// at its end. p is reused between calls.
func eachMatched(src capture.Source, f *filter.Filter, other func(*capture.Packet, time.Time),
	fn func(p *capture.Packet, ts time.Time, dir filter.Direction) bool) error {
	return eachPacket(src, func(p *capture.Packet, ts time.Time) bool {
		if p.Kind != capture.KindRTP {
			if other != nil {
				other(p, ts)
			}
			return true
		}
		m, ok := f.Match(p)
		return !ok || fn(p, ts, m.Direction)
	})
}

// eachRTP calls fn with every RTP packet of src and its capture time, in
// the capture's order, until fn returns false or src ends. It returns the
// read error that ended src, nil at its end. p is reused between calls.
func eachRTP(src capture.Source, fn func(p *capture.Packet, ts time.Time) bool) error {
	return eachPacket(src, func(p *capture.Packet, ts time.Time) bool {
		return p.Kind != capture.KindRTP || fn(p, ts)
	})
}

// eachPacket calls fn with every packet of src that decodes, until fn
// returns false.
func eachPacket(src capture.Source, fn func(p *capture.Packet, ts time.Time) bool) error {
	frames := make([][]byte, 64)
	infos := make([]capture.Info, 64)
	var p capture.Packet
	lt := src.LinkType()
	for {
		n, err := src.ReadBatch(frames, infos)
		for i := range n {
			if p.Decode(frames[i], lt, &infos[i]) != nil {
				continue
			}
			if !fn(&p, infos[i].Timestamp) {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// packetFlow is the playout.Flow of p: its addresses and outer VLAN.
func packetFlow(p *capture.Packet) playout.Flow {
	flow := playout.Flow{Src: p.Src, Dst: p.Dst}
	if v, ok := p.OuterVLAN(); ok {
		flow.VLAN = v.ID()
	}
	return flow
}

// streamLine describes one rendered stream for stdout.
func streamLine(s playout.StreamStats, skipped []int) string {
	codec := s.Codec.String()
	switch {
	case s.Frames == 0 && len(skipped) > 0:
		codec = "PT " + joinInts(skipped) + " (not decoded)"
	case s.Frames == 0 && s.Ignored > 0 && s.Ignored+s.Invalid == s.Packets:
		codec = "comfort noise or events only"
	case s.Frames == 0 && s.Codec == playout.CodecUnknown:
		codec = "-"
	}
	mos := "-"
	if s.MOS > 0 {
		mos = strconv.FormatFloat(s.MOS, 'f', 2, 64)
	}
	return fmt.Sprintf("%-10s ssrc 0x%08x %s %s: %d packets, %d lost, %d late, MOS %s",
		s.Direction, s.SSRC, s.Flow, codec, s.Packets, s.Lost, s.Late, mos)
}

type skipSummary struct {
	streams int
	types   []int // payload types skipped, in order of first report
}

// reportSkipped writes one line to w per stream with packets of a payload
// type that could not be decoded, naming the stream and the types.
func reportSkipped(w io.Writer, st playout.Stats, skips *skipLog) skipSummary {
	var sum skipSummary
	for _, s := range st.Streams {
		if s.UnknownCodec == 0 {
			continue
		}
		sum.streams++
		skip := skips.of(s)
		pts := skip.types
		what := "of a payload type"
		if len(pts) > 0 {
			names := make([]string, len(pts))
			for i, pt := range pts {
				names[i] = skips.ptName(pt)
				if !slices.Contains(sum.types, pt) {
					sum.types = append(sum.types, pt)
				}
			}
			what = "of payload type " + strings.Join(names, ", ")
		}
		reason := "smctl render cannot decode"
		if skips.sdpName(pts) != "" {
			reason = "this build cannot play"
		}
		if why := skip.reason; why != "" && !strings.HasPrefix(why, "unknown payload type") {
			reason = "smctl render cannot decode (" + why + ")"
		}
		verb := "skipped stream"
		if s.Frames > 0 {
			verb = "stream"
		}
		fmt.Fprintf(w, "render: %s ssrc 0x%08x %s (%s): %s %s, which %s; not rendered\n",
			verb, s.SSRC, s.Flow, s.Direction, plural(int(s.UnknownCodec), "packet"), what, reason)
	}
	return sum
}

// staticPTNames are the static payload types (RFC 3551) smctl render
// cannot decode.
var staticPTNames = map[int]string{2: "G721", 3: "GSM", 4: "G723", 5: "DVI4", 6: "DVI4/16000", 7: "LPC",
	9: "G722", 10: "L16 stereo", 11: "L16", 12: "QCELP", 14: "MPA", 15: "G728", 16: "DVI4/11025",
	17: "DVI4/22050", 25: "CelB", 26: "JPEG", 28: "nv", 31: "H261", 32: "MPV", 33: "MP2T", 34: "H263"}

// ptName names a payload type for a message: its number and, for a
// static type, its codec; a dynamic type suggests --codec.
func ptName(pt int) string {
	if n, ok := staticPTNames[pt]; ok {
		return fmt.Sprintf("%d (%s)", pt, n)
	}
	if pt >= 96 && pt <= 127 {
		return fmt.Sprintf("%d (dynamic; map it with --codec %d=NAME if it is PCMU, PCMA, G729, G722 or OPUS)", pt, pt)
	}
	return strconv.Itoa(pt)
}

// skipLog is the slog.Handler given to the Renderer: it keeps, per stream,
// the payload types the Renderer reported it could not decode (it reports
// each once per stream, with the stream's direction, flow and SSRC).
type skipLog struct {
	byStream map[string]*skipEntry
	// sdpNames are the encoding names the capture's SDP gives payload
	// types.
	sdpNames map[uint8]string
}

// sdpName returns the SDP's name of the first of pts it names, or "".
func (l *skipLog) sdpName(pts []int) string {
	for _, pt := range pts {
		if n := l.sdpNames[uint8(pt)]; pt >= 0 && pt < 128 && n != "" {
			return n
		}
	}
	return ""
}

// ptName names a payload type for a message, by the SDP's name when the
// capture's SDP gives one: "99 (iLBC, named by the SDP)"; else as the
// package's ptName.
func (l *skipLog) ptName(pt int) string {
	if n := l.sdpName([]int{pt}); n != "" {
		return fmt.Sprintf("%d (%s, named by the SDP)", pt, n)
	}
	return ptName(pt)
}

// typeNames lists payload types, each with the SDP's name if any: "99
// (iLBC), 98".
func (l *skipLog) typeNames(pts []int) string {
	out := make([]string, len(pts))
	for i, pt := range pts {
		out[i] = strconv.Itoa(pt)
		if n := l.sdpName([]int{pt}); n != "" {
			out[i] += " (" + n + ")"
		}
	}
	return strings.Join(out, ", ")
}

type skipEntry struct {
	types  []int
	reason string
}

func skipKey(dir, flow, ssrc string) string { return dir + " " + flow + " " + ssrc }

// of returns what was reported for stream s, nothing if it was not.
func (l *skipLog) of(s playout.StreamStats) skipEntry {
	if e := l.byStream[skipKey(s.Direction.String(), s.Flow.String(), fmt.Sprintf("0x%08x", s.SSRC))]; e != nil {
		return *e
	}
	return skipEntry{}
}

func (l *skipLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *skipLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *skipLog) WithGroup(string) slog.Handler            { return l }

func (l *skipLog) Handle(_ context.Context, r slog.Record) error {
	var dir, flow, ssrc string
	pt := -1
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "direction":
			dir = a.Value.String()
		case "flow":
			flow = a.Value.String()
		case "ssrc":
			ssrc = a.Value.String()
		case "payload_type":
			if a.Value.Kind() == slog.KindInt64 {
				pt = int(a.Value.Int64())
			}
		}
		return true
	})
	if pt < 0 {
		return nil
	}
	if l.byStream == nil {
		l.byStream = make(map[string]*skipEntry)
	}
	k := skipKey(dir, flow, ssrc)
	e := l.byStream[k]
	if e == nil {
		e = &skipEntry{reason: r.Message}
		l.byStream[k] = e
	}
	if !slices.Contains(e.types, pt) {
		e.types = append(e.types, pt)
	}
	return nil
}

// picked is the endpoint pickEndpoint chose.
type picked struct {
	addr      netip.Addr
	decodable int // decodable RTP packets to or from addr
	packets   int // RTP packets to or from addr
	streams   int // streams counted in decodable (or packets when it is 0)
}

type pickKey struct {
	flow playout.Flow
	ssrc uint32
}

type pickStream struct {
	decodable, packets int
	lastSeq            uint16
	confirmed          bool // sequence numbers advance: a real RTP stream
}

// pickEndpoint reads the capture at path once and returns the IP address
// with the most decodable RTP packets (as source or destination), the first
// seen on a tie; with no decodable RTP, the one with the most RTP. Only
// streams whose sequence numbers advance are counted, so a flow of another
// protocol that happens to look like RTP packet by packet is not picked.
// It returns the zero picked when the capture holds no RTP stream.
func pickEndpoint(path string, cfg playout.Config, sipPorts []uint16) (picked, error) {
	src, err := capture.OpenFile(path, capture.FileOptions{})
	if err != nil {
		return picked{}, cli.Usage(err)
	}
	defer src.Close()
	streams := make(map[pickKey]*pickStream)
	var order []pickKey
	feed, hidden := srtpWithoutKeys(sipPorts)
	err = eachPacket(src, func(p *capture.Packet, ts time.Time) bool {
		if p.Kind != capture.KindRTP {
			feed(p, ts)
			return true
		}
		k := pickKey{packetFlow(p), p.RTP.SSRC}
		s := streams[k]
		if s == nil {
			s = &pickStream{lastSeq: p.RTP.SequenceNumber}
			streams[k] = s
			order = append(order, k)
		} else {
			if d := p.RTP.SequenceNumber - s.lastSeq; d >= 1 && d <= 100 {
				s.confirmed = true
			}
			s.lastSeq = p.RTP.SequenceNumber
		}
		s.packets++
		if decodable(cfg.Codec(p.RTP.PayloadType)) && !hidden(p) {
			s.decodable++
		}
		return true
	})
	if err != nil {
		return picked{}, cli.Failf("read capture %q: %v", path, err)
	}
	type tally struct {
		decodable, packets, dstreams, streams int
	}
	byAddr := make(map[netip.Addr]*tally)
	var addrs []netip.Addr // in order of first packet
	for _, k := range order {
		s := streams[k]
		if !s.confirmed {
			continue
		}
		for _, a := range []netip.Addr{k.flow.Src.Addr().Unmap(), k.flow.Dst.Addr().Unmap()} {
			t := byAddr[a]
			if t == nil {
				t = &tally{}
				byAddr[a] = t
				addrs = append(addrs, a)
			}
			t.packets += s.packets
			t.streams++
			if s.decodable > 0 {
				t.decodable += s.decodable
				t.dstreams++
			}
		}
	}
	var best picked
	for _, a := range addrs {
		t := byAddr[a]
		if t.decodable > best.decodable || (best.decodable == 0 && t.decodable == 0 && t.packets > best.packets) {
			best = picked{addr: a, decodable: t.decodable, packets: t.packets, streams: t.dstreams}
			if t.decodable == 0 {
				best.streams = t.streams
			}
		}
	}
	return best, nil
}

// decodable reports whether RTP of codec c (the payload type's, with the
// --codec mappings) can be rendered: G.711 or G.729.
func decodable(c playout.Codec) bool { return c.Decodable() }

// thousands formats n with commas: 1,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return thousands(n) + " " + what + "s"
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}
