package cluster

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/silentmon/silentmon/filter"
)

// The multi-process tests run this test binary as cluster members, one per
// network namespace: memberEnv holds the member's configuration as JSON,
// and the member obeys JSON requests on stdin, one per line, answering
// each on stdout. Its log goes to stderr.
const memberEnv = "SILENTMON_CLUSTER_TEST_MEMBER"

type memberConfig struct {
	Name     string        `json:"name"`
	Listen   string        `json:"listen"`
	Peers    []string      `json:"peers"`
	CertDir  string        `json:"cert_dir"` // ca.pem, NAME-server.pem, NAME-client.pem
	Insecure bool          `json:"insecure"`
	TTL      time.Duration `json:"ttl"`
	Refresh  time.Duration `json:"refresh"`
	Ping     time.Duration `json:"ping"`
}

type memberRequest struct {
	Op      string          `json:"op"` // announce, withdraw, sessions, status, advance, ends
	Session *filter.Session `json:"session,omitempty"`
	ID      string          `json:"id,omitempty"`
	By      time.Duration   `json:"by,omitempty"` // advance: how far to move the member's clock
}

type memberReply struct {
	Err      string   `json:"err,omitempty"`
	Sessions []string `json:"sessions,omitempty"`
	Status   *Status  `json:"status,omitempty"`
	Ends     []End    `json:"ends,omitempty"`
}

// memberMain runs this process as a cluster member when memberEnv is set
// and reports whether it did.
func memberMain() bool {
	raw := os.Getenv(memberEnv)
	if raw == "" {
		return false
	}
	if err := runMember(raw); err != nil {
		fmt.Fprintln(os.Stderr, "member:", err)
		os.Exit(1)
	}
	return true
}

func runMember(raw string) error {
	var mc memberConfig
	if err := json.Unmarshal([]byte(raw), &mc); err != nil {
		return err
	}
	var offset atomic.Int64 // the injected clock: wall clock plus offset
	cfg := Config{
		Name: mc.Name, Listen: mc.Listen, Peers: mc.Peers, Insecure: mc.Insecure,
		SessionTTL: mc.TTL, Refresh: mc.Refresh, PingInterval: mc.Ping,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
		Now:    func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
	}
	if !mc.Insecure {
		caPEM, err := os.ReadFile(filepath.Join(mc.CertDir, "ca.pem"))
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		load := func(role string) (tls.Certificate, error) {
			b, err := os.ReadFile(filepath.Join(mc.CertDir, mc.Name+"-"+role+".pem"))
			if err != nil {
				return tls.Certificate{}, err
			}
			return tls.X509KeyPair(b, b)
		}
		sc, err := load("server")
		if err != nil {
			return err
		}
		cc, err := load("client")
		if err != nil {
			return err
		}
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{sc}, ClientCAs: pool}
		cfg.ClientTLS = &tls.Config{Certificates: []tls.Certificate{cc}, RootCAs: pool}
	}
	n, err := Start(cfg)
	if err != nil {
		return err
	}
	defer n.Close()
	var mu sync.Mutex
	var ends []End
	n.SubscribeEnds(func(id, reason string) {
		mu.Lock()
		ends = append(ends, End{ID: id, Reason: reason})
		mu.Unlock()
	})
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var req memberRequest
		var rep memberReply
		if err := json.Unmarshal(in.Bytes(), &req); err != nil {
			rep.Err = err.Error()
		} else {
			switch req.Op {
			case "announce":
				err = n.Announce(req.Session)
			case "withdraw":
				err = n.Withdraw(req.ID)
			case "sessions":
				rep.Sessions = []string{}
				for _, s := range n.Sessions() {
					rep.Sessions = append(rep.Sessions, s.ID)
				}
			case "status":
				st := n.Status()
				rep.Status = &st
			case "advance":
				offset.Add(int64(req.By))
			case "ends":
				mu.Lock()
				rep.Ends = slices.Clone(ends)
				mu.Unlock()
			default:
				err = fmt.Errorf("unknown op %q", req.Op)
			}
			if err != nil {
				rep.Err = err.Error()
			}
		}
		if err := out.Encode(&rep); err != nil {
			return err
		}
	}
	return nil
}
