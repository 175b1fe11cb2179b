package tls

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestExplainHandshake(t *testing.T) {
	// A high threshold so no case is refused before its handshake.
	s := newListenerSetup(t, 1<<20)
	good := s.good
	_, foreign, _ := configs(t, quickDir(t, QuickstartOptions{}))
	tests := []struct {
		name       string
		cfg        *tls.Config
		serverName string
		sentinel   error
		want       string
	}{
		{"server from another CA", foreign, "", ErrUnknownCA, "not by the CA in CtiosRootCert.pem"},
		{"wrong name", good, "other.example", nil, `not valid for "other.example"; it covers localhost`},
		{"client certificate refused", func() *tls.Config {
			c := good.Clone()
			c.Certificates = foreign.Certificates
			return c
		}(), "", nil, "refused our client certificate"},
		{"server certificate expired by the client's clock", func() *tls.Config {
			c := good.Clone()
			c.Time = func() time.Time { return time.Now().AddDate(5, 0, 0) }
			return c
		}(), "", ErrExpired, "expired on"},
	}
	addr := s.ln.Addr().String()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg.Clone()
			c.ServerName = tc.serverName
			_, err := dialRead(c, addr, nil)
			if err == nil {
				t.Fatal("connection succeeded")
			}
			got := ExplainHandshake(err, addr)
			if !strings.Contains(got.Error(), tc.want) || !strings.Contains(got.Error(), addr) {
				t.Fatalf("explained %q, want it to name %s and contain %q (from %v)", got, addr, tc.want, err)
			}
			if tc.sentinel != nil && !errors.Is(got, tc.sentinel) {
				t.Errorf("%v does not match %v", got, tc.sentinel)
			}
			if !errors.Is(got, err) {
				t.Error("explained error does not wrap the original")
			}
		})
	}
	if ExplainHandshake(nil, addr) != nil {
		t.Error("nil error explained as non-nil")
	}
	plain := errors.New("connection refused")
	if ExplainHandshake(plain, addr) != plain {
		t.Error("a non-TLS error was changed")
	}
}
