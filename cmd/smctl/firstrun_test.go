package main

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/silentmon/silentmon/internal/cli"
	smtls "github.com/silentmon/silentmon/tls"
)

// startTLSOnly accepts connections on loopback and runs a TLS server
// handshake with cfg on each, as a capture server does before anything
// else; it returns the address.
func startTLSOnly(t *testing.T, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tls.Server(c, cfg).Handshake()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

// TestFirstRunErrors: what a new operator gets wrong first is answered
// with one sentence that says what to do: a missing flag of monitor
// start, monitor stop or status, a missing security directory or client
// file (exit 2, bad usage or configuration); --insecure against a TLS
// server, TLS against an --insecure one and nothing listening (exit 1, a
// failed connection). (Before:
// `Supervisor "" is not HOST:PORT.`, "Security file ... does not exist.",
// "EOF." and "first record does not look like a TLS handshake".)
func TestFirstRunErrors(t *testing.T) {
	sec := filepath.Join(t.TempDir(), "security")
	if err := smtls.Quickstart(sec, smtls.QuickstartOptions{}); err != nil {
		t.Fatal(err)
	}
	scfg, err := smtls.ServerConfig(sec, smtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tlsAddr := startTLSOnly(t, scfg)
	plainAddr := startRelayServer(t, fakeServer{})
	noClient := filepath.Join(t.TempDir(), "security")
	if err := os.MkdirAll(noClient, 0o755); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(sec, smtls.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noClient, smtls.RootCertFile), root, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "nowhere", "security")
	start := []string{"monitor", "start", "--server", plainAddr, "--insecure", "--timeout", "2s"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String() // nothing listens there once closed
	ln.Close()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		// Bad usage or configuration: exit 2.
		{"monitor alone", []string{"monitor"},
			"smctl: No subcommand given: use monitor start or monitor stop.\n"},
		{"monitor start without --agent", append(start, "--supervisor", "127.0.0.1:9"),
			"smctl: No agent given: monitor start needs --agent ID (or --extension N), the agent to monitor.\n"},
		{"monitor start without --supervisor", append(start, "--agent", "1001", "--endpoint", "10.0.0.1"),
			"smctl: No supervisor given: monitor start needs --supervisor HOST:PORT, the supervisor service that receives the audio.\n"},
		{"monitor start with a bad --supervisor", append(start, "--agent", "1001", "--supervisor", "sup"),
			"smctl: Supervisor address \"sup\" (--supervisor) is not HOST:PORT.\n"},
		{"monitor stop without --session", []string{"monitor", "stop", "--server", plainAddr, "--insecure"},
			"smctl: No session given: monitor stop needs --session ID, the id that monitor start printed.\n"},
		{"status without --server", []string{"status", "--insecure"},
			"smctl: No capture server given: --server HOST:PORT is required (repeat it to name failovers).\n"},
		{"no security directory", []string{"status", "--server", tlsAddr, "--security-dir", missing},
			"smctl: Security directory " + missing + " does not exist: create a working set with `smctl certs quickstart --dir " + missing + "`, or give --security-dir DIR (or --insecure, for a lab only).\n"},
		{"no client file", []string{"status", "--server", tlsAddr, "--security-dir", noClient},
			"smctl: Security file " + filepath.Join(noClient, smtls.ClientFile) + " (the client certificate and key) does not exist: make it with `smctl certs quickstart --dir " + noClient + " --role client` (add --ca-dir CADIR to sign with an existing CA), or with `smctl certs request`, `smctl certs sign` and `smctl certs bundle`.\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cli.Run(newRootCmd(), tc.args, &out, &errb)
			if code != cli.ExitUsage || errb.String() != tc.want {
				t.Fatalf("exit %d, stderr\n%q\nwant exit %d, stderr\n%q", code, errb.String(), cli.ExitUsage, tc.want)
			}
		})
	}
	// Connections that fail: exit 1, with the cause.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"--insecure against TLS", []string{"status", "--server", tlsAddr, "--insecure", "--timeout", "2s"},
			"smctl: The server at " + tlsAddr + " closed the connection during the greeting: it expects TLS; leave out --insecure.\n"},
		{"TLS against --insecure", []string{"status", "--server", plainAddr, "--security-dir", sec, "--timeout", "2s"},
			"smctl: The server at " + plainAddr + " does not speak TLS (started with --insecure?): give --insecure to talk to it in plaintext.\n"},
		{"nothing listening", []string{"status", "--server", closed, "--insecure", "--timeout", "2s"},
			"smctl: Cannot reach " + closed + ": connection refused: nothing listens there (is the server running, and is the port right?).\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := cli.Run(newRootCmd(), tc.args, &out, &errb)
			if code != cli.ExitFailed || errb.String() != tc.want {
				t.Fatalf("exit %d, stderr\n%q\nwant exit %d, stderr\n%q", code, errb.String(), cli.ExitFailed, tc.want)
			}
		})
	}
}
