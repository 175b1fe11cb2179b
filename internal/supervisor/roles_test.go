package supervisor

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/silentmon/silentmon/filter"
	"github.com/silentmon/silentmon/relay"
	smtls "github.com/silentmon/silentmon/tls"
)

// TestForgedMediaRefused: over real mutual TLS, a holder of a client
// certificate of the site CA (every desk has one) runs a forwarder that
// says it is a capture server and pushes a call to the supervisor. The
// handshake succeeds (clients may ask for status) but no media is played:
// no session opens, no file is written, the refusal is counted. The same
// forwarder with a capture server's certificate is played, so the refusal
// is the certificate's doing.
func TestForgedMediaRefused(t *testing.T) {
	base := t.TempDir()
	pw := []byte("correct horse battery staple")
	if err := smtls.Quickstart(base, smtls.QuickstartOptions{Password: pw}); err != nil {
		t.Fatal(err)
	}
	set := func(r smtls.Role) string {
		d := t.TempDir()
		if err := smtls.Quickstart(d, smtls.QuickstartOptions{Role: r, Password: pw, CADir: filepath.Join(base, smtls.QuickstartCADir)}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	supDir, captureDir, clientDir := set(smtls.RoleSupervisor), set(smtls.RoleCapture), set(smtls.RoleClient)

	for _, tc := range []struct {
		name   string
		dial   func() (*tls.Config, error)
		wantOK bool
	}{
		{"client certificate posing as a capture server", func() (*tls.Config, error) {
			return smtls.ClientConfig(clientDir, smtls.Options{PeerRoles: []smtls.Role{smtls.RoleSupervisor}})
		}, false},
		{"capture server", func() (*tls.Config, error) {
			return smtls.ClientConfig(captureDir, smtls.Options{File: smtls.ServerFile, Roles: []smtls.Role{smtls.RoleCapture},
				PeerRoles: []smtls.Role{smtls.RoleSupervisor}})
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sup, err := New(Config{Output: "wav:" + filepath.Join(dir, "{agent}.wav"), Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			scfg, err := smtls.ServerConfig(supDir, smtls.Options{Roles: []smtls.Role{smtls.RoleSupervisor},
				PeerRoles: []smtls.Role{smtls.RoleCapture, smtls.RoleClient, smtls.RoleAdmin}})
			if err != nil {
				t.Fatal(err)
			}
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := smtls.Listen(inner, scfg, nil)
			srv := relay.NewServer(relay.ServerConfig{Handler: sup, Logger: quiet(), Role: relay.RoleSupervisor})
			done := make(chan struct{})
			go func() { srv.Serve(ln); close(done) }()
			ccfg, err := tc.dial()
			if err != nil {
				t.Fatal(err)
			}
			fw := relay.NewForwarder(relay.ForwarderConfig{Logger: quiet(), Name: "capture-1", Dial: relay.DialConfig{TLS: ccfg}})
			s := &filter.Session{ID: "s1", Agent: "1001", Supervisor: ln.Addr().String()}
			c := newCall("s1", 1000, 1)
			for range 50 {
				fw.Forward(s, &relay.MediaPacket{Direction: filter.FromAgent, Time: time.Now().UnixNano(), Src: c.src, Dst: c.dst, Data: c.next()})
				time.Sleep(5 * time.Millisecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			fw.Flush(ctx)
			cancel()
			// Give the supervisor the time to take (or refuse) the frames.
			deadline := time.Now().Add(3 * time.Second)
			for time.Now().Before(deadline) && sup.Totals().SessionsOpened == 0 && sup.Totals().Unauthorized == 0 {
				time.Sleep(10 * time.Millisecond)
			}
			fw.Close()
			srv.Close()
			<-done
			tot := sup.Totals()
			if err := sup.Close(); err != nil {
				t.Fatal(err)
			}
			_, statErr := os.Stat(filepath.Join(dir, "1001.wav"))
			if tc.wantOK {
				if tot.SessionsOpened != 1 || tot.Unauthorized != 0 || statErr != nil {
					t.Fatalf("capture server's media not played: %+v, wav %v", tot, statErr)
				}
				checkTone(t, "1001.wav", readWAV(t, filepath.Join(dir, "1001.wav")), 1000)
				return
			}
			if tot.SessionsOpened != 0 || tot.Unauthorized == 0 || statErr == nil {
				t.Fatalf("forged media: totals %+v, wav written: %v", tot, statErr == nil)
			}
		})
	}
}
