// Command smsupervisor is silentmon's supervisor-side service: it accepts
// the media that capture servers push over mutual TLS, jitter-buffers and
// decodes it, mixes both directions of the monitored call and plays it on
// the sound card (or writes a WAV file).
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/silentmon/silentmon/internal/cli"
	"github.com/silentmon/silentmon/internal/service"
	"github.com/silentmon/silentmon/playout"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

func main() { cli.Main(newRootCmd()) }

type config struct {
	cli.Service
	Output  string
	Playout playout.Config
}

func newRootCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "smsupervisor",
		Short: "silentmon supervisor service: receives monitored calls and plays them",
		Args:  cobra.NoArgs,
	}
	f := c.Flags()
	cfg := cli.NewConfig()
	cli.AddServiceFlags(f, cfg, "address where capture servers push media", "127.0.0.1:9229")
	f.String("output", "portaudio", "portaudio[:DEVICE], wav:PATH or null")
	f.Int("min-delay-ms", 40, "jitter buffer: smallest target delay")
	f.Int("max-delay-ms", 200, "jitter buffer: largest target delay")
	f.StringArray("codec", nil, "map a dynamic payload type to a codec, as 96=G729; repeatable")
	for key, flag := range map[string]string{
		"output": "output", "playout.min_delay_ms": "min-delay-ms", "playout.max_delay_ms": "max-delay-ms",
		"playout.payload_types": "codec",
	} {
		cfg.Bind(key, f, flag)
	}
	cfg.V.SetDefault("playout.initial_delay_ms", 60)
	c.RunE = cli.LoadAndRun(cfg, validate, run)
	return c
}

func validate(cfg *cli.Config) (*config, error) {
	c := &config{Output: cfg.String("output")}
	var err error
	if c.Service, err = cli.ReadService(cfg); err != nil {
		return nil, err
	}
	if c.Playout.MinDelay, err = cfg.Millis("playout.min_delay_ms", 10, 2000); err != nil {
		return nil, err
	}
	if c.Playout.MaxDelay, err = cfg.Millis("playout.max_delay_ms", 10, 2000); err != nil {
		return nil, err
	}
	if c.Playout.InitialDelay, err = cfg.Millis("playout.initial_delay_ms", 10, 2000); err != nil {
		return nil, err
	}
	if c.Playout.MaxDelay < c.Playout.MinDelay {
		return nil, cli.Usagef("configuration key playout.max_delay_ms has value %d, below playout.min_delay_ms (%d)",
			c.Playout.MaxDelay.Milliseconds(), c.Playout.MinDelay.Milliseconds())
	}
	if c.Playout.PayloadTypes, err = playout.ParsePayloadTypes(cfg.Strings("playout.payload_types")); err != nil {
		return nil, cli.Usagef("configuration key playout.payload_types: %v", err)
	}
	return c, nil
}

// supervisor is the running service; it implements relay.Handler.
type supervisor struct {
	relay.MediaOnly
	log    *slog.Logger
	player *playout.Player
	dedup  *relay.Dedup

	packets, dups, bad atomic.Uint64
}

func run(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	log, _ := cli.NewLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	sink, err := playout.OpenSink(cfg.Output)
	if err != nil {
		return cli.Usagef("configuration key output has value %q: %v", cfg.Output, err)
	}
	ln, err := service.Listen(service.ListenConfig{Addr: cfg.Listen, SecurityDir: cfg.SecurityDir,
		Insecure: cfg.Insecure, Strict: cfg.StrictKeys, Logger: log,
		Lockout: smtls.LockoutConfig{Threshold: cfg.LockThreshold, Duration: cfg.LockDuration, Logger: log}})
	if err != nil {
		sink.Close()
		return cli.Usage(err)
	}
	s := &supervisor{log: log, dedup: relay.NewDedup(),
		player: playout.NewPlayer(withLogger(cfg.Playout, log), sink)}

	reg := prometheus.NewRegistry()
	s.registerMetrics(reg)
	if ln.TLS != nil {
		reg.MustRegister(smtls.NewCollector(ln.Lockout, ln.TLS))
	}
	ms, err := service.StartMetrics(cfg.MetricsListen, reg, log)
	if err != nil {
		ln.Close()
		s.player.Close()
		return cli.Usage(err)
	}
	defer ms.Close()

	srv := relay.NewServer(relay.ServerConfig{Handler: s, Logger: log, Name: cfg.Name,
		Role: relay.RoleSupervisor, HeartbeatTimeout: cfg.HeartbeatTmo})
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	log.Info("smsupervisor started", "listen", ln.Addr().String(), "output", cfg.Output, "tls", !cfg.Insecure)
	<-ctx.Done()
	log.Info("stopping")
	srv.Close()
	<-done
	ln.Close()
	err = s.player.Close()
	st := s.player.Stats()
	fmt.Fprintf(stdout, "smsupervisor: received %d packets (%d duplicates dropped), wrote %.2f s of audio to %s\n",
		s.packets.Load(), s.dups.Load(), st.Seconds, cfg.Output)
	if err != nil {
		return cli.Failf("closing output %s: %v", cfg.Output, err)
	}
	return nil
}

func (s *supervisor) registerMetrics(reg *prometheus.Registry) {
	c := func(name, help string, v *atomic.Uint64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "silentmon", Subsystem: "supervisor", Name: name, Help: help},
			func() float64 { return float64(v.Load()) }))
	}
	c("media_packets_total", "Media packets received from capture servers.", &s.packets)
	c("duplicate_packets_total", "Media packets dropped as duplicates (seen by two capture servers).", &s.dups)
	c("rejected_packets_total", "Media packets the player refused.", &s.bad)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Subsystem: "supervisor", Name: "seconds_written", Help: "Seconds of audio written to the output."},
		func() float64 { return s.player.Stats().Seconds }))
	for i, dir := range []string{"from-agent", "to-agent"} {
		stream := func(name, help string, get func(playout.StreamStats) float64) {
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "silentmon", Subsystem: "playout", Name: name, Help: help,
				ConstLabels: prometheus.Labels{"direction": dir}},
				func() float64 { return get(s.player.Stats().Streams[i]) }))
		}
		stream("mos", "E-model (ITU-T G.107) MOS estimate of the stream being played; 0 before its first packet.", func(x playout.StreamStats) float64 { return x.MOS })
		stream("jitter_ms", "RFC 3550 interarrival jitter of the stream, milliseconds.", func(x playout.StreamStats) float64 { return x.JitterMs })
		stream("target_ms", "Jitter buffer target delay, milliseconds.", func(x playout.StreamStats) float64 { return x.TargetMs })
		stream("lost_packets", "Sequence numbers never played.", func(x playout.StreamStats) float64 { return float64(x.Lost) })
		stream("late_packets", "Packets that arrived after their playout time.", func(x playout.StreamStats) float64 { return float64(x.Late) })
		stream("concealed_frames", "Frames filled by loss concealment.", func(x playout.StreamStats) float64 { return float64(x.Concealed) })
	}
}

// Media implements relay.Handler.
func (s *supervisor) Media(p *relay.Peer, f *relay.MediaFrame) error {
	var mp relay.MediaPacket
	for {
		ok, err := f.Next(&mp)
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		s.packets.Add(1)
		if s.dedup.Seen(f.Session, mp.Direction, mp.Data) {
			s.dups.Add(1)
			continue
		}
		// The capture time lets the player report the relay's delivery
		// delay; its jitter buffer times packets by its own clock.
		if err := s.player.Push(playout.Direction(mp.Direction), time.Unix(0, mp.Time), mp.Data); err != nil {
			s.bad.Add(1)
		}
	}
}

// Status implements relay.Handler.
func (s *supervisor) Status(context.Context, *relay.Peer) (any, error) {
	st := s.player.Stats()
	out := service.SupervisorStatus{Role: relay.RoleSupervisor, Packets: s.packets.Load(), Duplicates: s.dups.Load(),
		Rejected: s.bad.Load(), SecondsWritten: st.Seconds, DeliveryMs: st.DeliveryMs, Streams: []service.PlayoutStream{}}
	for i, x := range st.Streams {
		if x.Packets == 0 {
			continue
		}
		out.Streams = append(out.Streams, service.PlayoutStream{Direction: []string{"from-agent", "to-agent"}[i],
			SSRC: fmt.Sprintf("0x%08x", x.SSRC), Codec: x.Codec.String(), Packets: x.Packets, Lost: x.Lost,
			Late: x.Late, Concealed: x.Concealed, JitterMs: x.JitterMs, TargetMs: x.TargetMs, MOS: x.MOS})
	}
	return out, nil
}

// Closed implements relay.Handler.
func (s *supervisor) Closed(p *relay.Peer, err error) {
	if p.Hello.Role == relay.RoleCapture {
		s.log.Info("capture server disconnected", "peer", p.Addr, "name", p.Hello.Name)
	}
}

func withLogger(c playout.Config, log *slog.Logger) playout.Config {
	c.Logger = log
	return c
}
