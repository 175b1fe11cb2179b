package tls

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secDir returns a security directory as a server reads it: the CA
// certificate and the bundles, no CA key, nothing writable by others.
func secDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, mode := range map[string]os.FileMode{RootCertFile: 0o644, ServerFile: 0o600, PeerFile: 0o600, ClientFile: 0o600} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("-"), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// warnings runs CheckSecurityDir without strict and returns its warning
// lines.
func warnings(t *testing.T, dir string) []string {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := CheckSecurityDir(dir, false, log); err != nil {
		t.Fatalf("CheckSecurityDir without strict returned %v", err)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		if !strings.Contains(l, "level=WARN") {
			t.Errorf("log line is not a warning: %s", l)
		}
		out = append(out, l)
	}
	return out
}

// TestCheckSecurityDirClean: a directory a server may read as it is gives
// no warning and no strict error, and neither does the CA that
// Quickstart keeps in its ca/ subdirectory.
func TestCheckSecurityDirClean(t *testing.T) {
	dir := secDir(t)
	if err := os.MkdirAll(filepath.Join(dir, QuickstartCADir), 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, QuickstartCADir, RootKeyFile), []byte("-"), 0o600)
	if w := warnings(t, dir); len(w) != 0 {
		t.Errorf("warnings for a clean directory: %q", w)
	}
	if err := CheckSecurityDir(dir, true, nil); err != nil {
		t.Errorf("strict check of a clean directory: %v", err)
	}
	if err := CheckSecurityDir(filepath.Join(dir, "missing"), true, nil); err != nil {
		t.Errorf("strict check of a missing directory: %v (loading reports it)", err)
	}
}

// TestCheckSecurityDirProblems: each problem gives one warning naming the
// file and the fix, and with strict an error of one sentence wrapping its
// sentinel. Nothing warned before.
func TestCheckSecurityDirProblems(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the path the message names
		want  error
		fix   string
	}{
		{"CA key", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, RootKeyFile)
			os.WriteFile(p, []byte("-"), 0o600)
			return p
		}, ErrCAKeyOnServer, "move CtiosRoot.pem off this host"},
		{"CA key as a dangling link", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, RootKeyFile)
			os.Symlink("/nonexistent/CtiosRoot.pem", p)
			return p
		}, ErrCAKeyOnServer, "move CtiosRoot.pem off this host"},
		{"CA password file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, QuickstartPasswordFile)
			os.WriteFile(p, []byte("pw\n"), 0o600)
			return p
		}, ErrCAKeyOnServer, "move CtiosRoot.password off this host"},
		{"directory world-writable", func(t *testing.T, dir string) string {
			os.Chmod(dir, 0o777)
			return dir
		}, ErrWritableByOthers, "run chmod go-w " + "DIR"},
		{"directory group-writable", func(t *testing.T, dir string) string {
			os.Chmod(dir, 0o770)
			return dir
		}, ErrWritableByOthers, "mode 0770"},
		{"CA certificate world-writable", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, RootCertFile)
			os.Chmod(p, 0o666)
			return p
		}, ErrWritableByOthers, "run chmod go-w " + "PATH"},
		{"server bundle group-writable", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, ServerFile)
			os.Chmod(p, 0o620)
			return p
		}, ErrWritableByOthers, "mode 0620"},
		{"peer bundle world-writable", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, PeerFile)
			os.Chmod(p, 0o602)
			return p
		}, ErrWritableByOthers, "run chmod go-w " + "PATH"},
		{"client bundle a link to a writable file", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, ClientFile)
			target := filepath.Join(t.TempDir(), "client.pem")
			os.WriteFile(target, []byte("-"), 0o600)
			os.Chmod(target, 0o666)
			os.Remove(p)
			os.Symlink(target, p)
			return p
		}, ErrWritableByOthers, "writable by group or others"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := secDir(t)
			named := tc.setup(t, dir)
			fix := strings.NewReplacer("DIR", dir, "PATH", named).Replace(tc.fix)
			w := warnings(t, dir)
			if len(w) != 1 {
				t.Fatalf("%d warnings, want 1: %q", len(w), w)
			}
			if !strings.Contains(w[0], named) || !strings.Contains(w[0], fix) {
				t.Errorf("warning %s does not name %s and say %q", w[0], named, fix)
			}
			err := CheckSecurityDir(dir, true, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("strict: %v, want %v", err, tc.want)
			}
			if msg := err.Error(); !strings.Contains(msg, named) || !strings.Contains(msg, fix) || strings.Count(msg, ". ") > 0 || strings.Contains(msg, "\n") {
				t.Errorf("strict error %q is not one sentence naming %s and saying %q", msg, named, fix)
			}
		})
	}
}

// TestCheckSecurityDirSeveral: one warning per problem; strict reports the
// first (the directory before the files).
func TestCheckSecurityDirSeveral(t *testing.T) {
	dir := secDir(t)
	os.WriteFile(filepath.Join(dir, RootKeyFile), []byte("-"), 0o600)
	os.WriteFile(filepath.Join(dir, QuickstartPasswordFile), []byte("-"), 0o600)
	os.Chmod(filepath.Join(dir, RootCertFile), 0o666)
	os.Chmod(dir, 0o777)
	if w := warnings(t, dir); len(w) != 4 {
		t.Fatalf("%d warnings, want 4: %q", len(w), w)
	}
	err := CheckSecurityDir(dir, true, nil)
	if !errors.Is(err, ErrWritableByOthers) || !strings.Contains(err.Error(), "security directory "+dir) {
		t.Errorf("strict: %v, want the directory's problem first", err)
	}
}
