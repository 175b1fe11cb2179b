package tls

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
)

// BenchmarkLockoutAllow measures the per-connection check of a source
// that is not locked out, with 10,000 other sources tracked.
func BenchmarkLockoutAllow(b *testing.B) {
	lo := NewLockout(LockoutConfig{})
	for i := 0; i < 10000; i++ {
		lo.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	src := netip.MustParseAddr("192.0.2.1")
	b.ReportAllocs()
	for b.Loop() {
		if lo.Allow(src) != nil {
			b.Fatal("locked")
		}
	}
}

func BenchmarkFingerprint(b *testing.B) {
	dir := quickDir(b, QuickstartOptions{})
	p, err := ReadPair(dir + "/" + ClientFile)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(p.Leaf.Raw)))
	b.ReportAllocs()
	for b.Loop() {
		_ = Fingerprint(p.Leaf.Raw)
	}
}

// BenchmarkHandshake measures one full mutual-TLS handshake (both sides,
// in memory) with the quickstart set, per key algorithm.
func BenchmarkHandshake(b *testing.B) {
	for _, alg := range []KeyAlgorithm{ECDSAP256, RSA2048} {
		b.Run(string(alg), func(b *testing.B) {
			dir := quickDir(b, QuickstartOptions{KeyAlgorithm: alg})
			scfg, err := ServerConfig(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			ccfg, err := ClientConfig(dir, Options{})
			if err != nil {
				b.Fatal(err)
			}
			ccfg.ServerName = "localhost"
			b.ReportAllocs()
			for b.Loop() {
				a, c := net.Pipe()
				srv := tls.Server(a, scfg)
				errc := make(chan error, 1)
				go func() { errc <- srv.Handshake() }()
				cli := tls.Client(c, ccfg)
				if err := cli.Handshake(); err != nil {
					b.Fatal(err)
				}
				if err := <-errc; err != nil {
					b.Fatal(err)
				}
				a.Close()
				c.Close()
			}
		})
	}
}
