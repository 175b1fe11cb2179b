package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/nic"
)

// testFlags are the flags shared by the subcommands.
type testFlags struct {
	vlan     int
	priority int
	count    int
	interval time.Duration
	dstMAC   string
	json     bool
	engine   string
}

// validate checks the flags' ranges and returns --dst-mac parsed (zero
// when not given).
func (f *testFlags) validate() (dst [6]byte, err error) {
	switch {
	case f.vlan < 1 || f.vlan > 4094:
		return dst, cli.Usagef("--vlan %d is outside 1 to 4094", f.vlan)
	case f.priority < 0 || f.priority > 7:
		return dst, cli.Usagef("--priority %d is outside 0 to 7", f.priority)
	case f.count < 1 || f.count > 65535:
		return dst, cli.Usagef("--count %d is outside 1 to 65535", f.count)
	case f.interval < 0:
		return dst, cli.Usagef("--interval %s is negative", f.interval)
	case f.engine != "" && f.engine != nic.EngineSocket && f.engine != nic.EngineRing:
		return dst, cli.Usagef("--engine %q is not socket or ring", f.engine)
	case f.dstMAC == "":
		return dst, nil
	}
	if dst, err = nic.ParseMAC(f.dstMAC); err != nil {
		return dst, cli.Usagef("--dst-mac %q is not a MAC address such as 00:d0:59:d8:f7:d9", f.dstMAC)
	}
	return dst, nil
}

// sendInterval is the pause between frames for the library: --interval 0
// means none, where the library's zero value means its default.
func (f *testFlags) sendInterval() time.Duration {
	if f.interval == 0 {
		return -1
	}
	return f.interval
}

// frameLines returns the callback that prints one line per frame, or nil
// with --json, where stdout is the JSON document alone.
func (f *testFlags) frameLines(w io.Writer) func(*nic.Observation) {
	if f.json {
		return nil
	}
	return func(ob *nic.Observation) { fmt.Fprintln(w, ob.Line()) }
}

// addSendFlags registers the flags of the frames sent: --vlan (with
// vlanUsage), --priority, --count and --interval.
func (f *testFlags) addSendFlags(cmd *cobra.Command, vlanUsage string) {
	fl := cmd.Flags()
	fl.IntVar(&f.vlan, "vlan", nic.DefaultVLAN, vlanUsage)
	fl.IntVar(&f.priority, "priority", nic.DefaultPriority, "802.1p priority of the tag")
	fl.IntVar(&f.count, "count", nic.DefaultCount, "frames to send")
	fl.DurationVar(&f.interval, "interval", nic.DefaultInterval, "pause between frames")
}

// addVerdictFlags registers the flags of the commands that capture and give
// a verdict: --engine and --json.
func (f *testFlags) addVerdictFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.engine, "engine", nic.EngineSocket, "how to capture: socket (recvmsg with PACKET_AUXDATA, every frame) or ring (silentmon's own TPACKET_V3 capture path, UDP only)")
	fl.BoolVar(&f.json, "json", false, "print the report as JSON")
}

// checkInterface turns a missing interface into a usage error naming it,
// before any socket is opened.
func checkInterface(flag, name string, o nic.Options) error {
	if name == "" {
		return cli.Usagef("%s is required: name the network interface to test, such as eth0", flag)
	}
	if o.Netns == "" {
		// Needs no privilege, so a bad name is bad usage even for a user
		// who could not open the socket.
		if _, err := net.InterfaceByName(name); err != nil {
			return runErr(flag, name, o, nic.ErrNoInterface)
		}
	}
	_, err := nic.ReadState(name, o)
	return runErr(flag, name, o, err)
}

// runErr maps the library's errors to exit codes: a missing interface or
// namespace is bad usage, anything else a failed operation.
func runErr(flag, name string, o nic.Options, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nic.ErrNoInterface):
		where := ""
		if o.Netns != "" {
			where = fmt.Sprintf(" in network namespace %q", o.Netns)
		}
		return cli.Usagef("%s %q: no such network interface%s (see ip link show)", flag, name, where)
	case errors.Is(err, nic.ErrNotEthernet):
		return cli.Usagef("%s %q is not an Ethernet interface, so it cannot carry 802.1Q tags", flag, name)
	case strings.Contains(err.Error(), "network namespace") && !errors.Is(err, nic.ErrPermission):
		return cli.Usage(err)
	}
	return cli.Failf("%v", err)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// report prints the verdict of a listen or selftest and returns the error
// that sets the exit code; err, the test's failure to run at all, is mapped
// by runErr for the interface given with flag.
func report(cmd *cobra.Command, res *nic.Result, err error, asJSON bool, flag, name string, o nic.Options) error {
	if err != nil {
		return runErr(flag, name, o, err)
	}
	w := cmd.OutOrStdout()
	if asJSON {
		if err := writeJSON(w, res); err != nil {
			return cli.Failf("writing the JSON report: %v", err)
		}
	} else {
		d := res.Diagnosis
		fmt.Fprintf(w, "%s: %s\n", d.Verdict, d.Summary)
		if d.Cause != "" {
			fmt.Fprintf(w, "  cause: %s\n", d.Cause)
		}
		if d.Fix != "" {
			fmt.Fprintf(w, "  fix: %s\n", d.Fix)
		}
		for _, n := range d.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	if !res.Passed() {
		return cli.Failf("NIC test failed on %s (%s)", res.Interface, res.Diagnosis.Code)
	}
	return nil
}

func newListenCmd() *cobra.Command {
	var (
		f       testFlags
		iface   string
		netns   string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "listen --interface IF [--vlan 85] [--count 5] [--timeout 10s] [--json]",
		Short: "Count the frames that arrive with the VLAN, then give the verdict and its diagnosis",
		Long: `listen captures on IF (in promiscuous mode) and counts the frames that carry
the VLAN, whether the tag is in the frame or reported by the kernel out of band.
It prints one line per frame, then PASS when --count frames arrived tagged
within --timeout, FAIL with the likely cause and the fix otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := f.validate(); err != nil {
				return err
			}
			if timeout <= 0 {
				return cli.Usagef("--timeout %s is not positive", timeout)
			}
			o := nic.Options{Netns: netns}
			if err := checkInterface("--interface", iface, o); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			cfg := nic.ListenConfig{Interface: iface, Options: o, VLAN: uint16(f.vlan), Count: f.count, Timeout: timeout, Engine: f.engine}
			// With --json the progress line goes to stderr, so that
			// stdout is the JSON document alone.
			progress := w
			if f.json {
				progress = cmd.ErrOrStderr()
			}
			cfg.Ready = func() {
				fmt.Fprintf(progress, "smnic: listening on %s for %d frames with 802.1Q VLAN %d (timeout %s)\n", iface, f.count, f.vlan, timeout)
			}
			cfg.OnFrame = f.frameLines(w)
			res, err := nic.Listen(cmd.Context(), cfg)
			return report(cmd, res, err, f.json, "--interface", iface, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&iface, "interface", "i", "", "network interface to listen on (required)")
	fl.IntVar(&f.vlan, "vlan", nic.DefaultVLAN, "VLAN ID the frames must carry")
	fl.IntVar(&f.count, "count", nic.DefaultCount, "tagged frames needed for PASS")
	fl.DurationVar(&timeout, "timeout", nic.DefaultListenTimeout, "how long to wait for the frames")
	f.addVerdictFlags(cmd)
	fl.StringVar(&netns, "netns", "", "network namespace of the interface (name under /run/netns or a path)")
	return cmd
}

func newSendCmd() *cobra.Command {
	var (
		f     testFlags
		iface string
		netns string
		pcap  string
	)
	cmd := &cobra.Command{
		Use:   "send --interface IF [--dst-mac MAC] [--vlan 85] [--priority 5] [--count 5] [--interval 100ms] [--pcap FILE]",
		Short: "Send 802.1Q-tagged test frames, modelled on a VoIP RTP frame",
		Long: `send transmits --count 802.1Q-tagged frames (VLAN --vlan, priority
--priority) modelled on a G.711 RTP packet, to --dst-mac or broadcast. With
--pcap it sends the tagged frames of a capture instead (testdata/vlan-sample.pcap
ships with silentmon), with the destination MAC rewritten as the original
procedure does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dst, err := f.validate()
			if err != nil {
				return err
			}
			var frames [][]byte
			if pcap != "" {
				vlan := -1
				if cmd.Flags().Changed("vlan") {
					vlan = f.vlan
				}
				if frames, err = loadFrames(pcap, vlan, f.count); err != nil {
					return err
				}
			}
			o := nic.Options{Netns: netns}
			if err := checkInterface("--interface", iface, o); err != nil {
				return err
			}
			cfg := nic.SendConfig{Frames: frames, Interface: iface, Options: o, Dst: dst, VLAN: uint16(f.vlan),
				Priority: uint8(f.priority), HasPriority: true, Count: f.count, Interval: f.sendInterval()}
			w := cmd.OutOrStdout()
			obs := &nic.Observer{VLAN: uint16(f.vlan)}
			cfg.OnSent = func(i int, frame []byte) {
				ob := obs.Observe(frame, &nic.RxInfo{Len: len(frame), WireLen: len(frame), Time: time.Now()})
				fmt.Fprintf(w, "sent %d/%d on %s: %s, %d bytes\n", i+1, f.count, iface, ob.Headers(), len(frame))
			}
			res, err := nic.Send(cmd.Context(), cfg)
			if err != nil {
				return runErr("--interface", iface, o, err)
			}
			fmt.Fprintf(w, "smnic: sent %d frames on %s to %s\n", res.Sent, iface, nic.FormatMAC(cfg.Dst))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&iface, "interface", "i", "", "network interface to send on (required)")
	fl.StringVar(&f.dstMAC, "dst-mac", "", "destination MAC (default broadcast); the target NIC's MAC in the original procedure")
	f.addSendFlags(cmd, "VLAN ID of the tag (with --pcap: send only frames of this VLAN)")
	fl.StringVar(&pcap, "pcap", "", "send the tagged frames of this pcap or pcapng file instead")
	fl.StringVar(&netns, "netns", "", "network namespace of the interface (name under /run/netns or a path)")
	return cmd
}

func newSelftestCmd() *cobra.Command {
	var (
		f             testFlags
		tx, rx        string
		txNetns, rxNs string
		wait          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "selftest --tx IF --rx IF [--json]",
		Short: "Send on one interface and listen on another, then give the verdict and its diagnosis",
		Long: `selftest runs both ends of the test in one command: two NICs on the same
switch, hub or SPAN session, or the two ends of a veth pair. Only the frames
of this run count.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dst, err := f.validate()
			if err != nil {
				return err
			}
			if wait <= 0 {
				return cli.Usagef("--timeout %s is not positive", wait)
			}
			if tx != "" && tx == rx && txNetns == rxNs {
				return cli.Usagef("--tx and --rx both name %q; the test needs two interfaces that see each other's frames", tx)
			}
			txo, rxo := nic.Options{Netns: txNetns}, nic.Options{Netns: rxNs}
			if err := checkInterface("--tx", tx, txo); err != nil {
				return err
			}
			if err := checkInterface("--rx", rx, rxo); err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			cfg := nic.SelftestConfig{Tx: tx, Rx: rx, TxOptions: txo, RxOptions: rxo, Dst: dst,
				VLAN: uint16(f.vlan), Priority: uint8(f.priority), HasPriority: true,
				Count: f.count, Interval: f.sendInterval(), Wait: wait, Engine: f.engine}
			if !f.json {
				fmt.Fprintf(w, "smnic: sending %d frames with 802.1Q VLAN %d, p %d on %s, listening on %s\n", f.count, f.vlan, f.priority, tx, rx)
			}
			cfg.OnFrame = f.frameLines(w)
			res, err := nic.Selftest(cmd.Context(), cfg)
			return report(cmd, res, err, f.json, "--rx", rx, rxo)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&tx, "tx", "", "interface that sends (required)")
	fl.StringVar(&rx, "rx", "", "interface under test, that listens (required)")
	fl.StringVar(&f.dstMAC, "dst-mac", "", "destination MAC (default the --rx interface's MAC)")
	f.addSendFlags(cmd, "VLAN ID of the tag")
	fl.DurationVar(&wait, "timeout", nic.DefaultSelftestWait, "how long to keep listening after the last frame")
	f.addVerdictFlags(cmd)
	fl.StringVar(&txNetns, "tx-netns", "", "network namespace of --tx (name under /run/netns or a path)")
	fl.StringVar(&rxNs, "rx-netns", "", "network namespace of --rx (name under /run/netns or a path)")
	return cmd
}
