package supervisor

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestartKeepsWAV: a supervisor restarted on the same plain wav:PATH
// (and the same session id) leaves the earlier recording byte for byte
// and writes the new one to PATH-1, 0600. The naming is documented on
// createNew and namer.
func TestRestartKeepsWAV(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.wav")
	r1 := newRig(t, Config{Output: "wav:" + out})
	r1.play(20, newCall("s1", 1000, 1))
	r1.settle()
	if err := r1.sup.Close(); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(out)
	if err != nil || len(first) <= 44 {
		t.Fatalf("first run wrote %d bytes to %s: %v", len(first), out, err)
	}

	r2 := newRig(t, Config{Output: "wav:" + out})
	r2.play(5, newCall("s1", 1400, 1))
	r2.settle()
	if o := r2.sup.Snapshot().Sessions[0].Output; o != filepath.Join(dir, "out-1.wav") {
		t.Fatalf("second run's output %s, want out-1.wav", o)
	}
	if err := r2.sup.Close(); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, first) {
		t.Errorf("the earlier recording changed: %d bytes, was %d", len(again), len(first))
	}
	for _, name := range []string{"out.wav", "out-1.wav"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", name, err, fi.Mode().Perm())
		}
	}
	checkTone(t, "out-1.wav", readWAV(t, filepath.Join(dir, "out-1.wav")), 1400)
}

// TestWAVSymlinkRefused: a symbolic link planted where a session's WAV
// would go (the plain path, a numbered name, a template's name; to a file
// or to nothing) is never written through: the session plays to no file
// and its status says the path is a link. Before, the open refused the
// link as an existing file and the session silently took the next name.
func TestWAVSymlinkRefused(t *testing.T) {
	for _, tc := range []struct {
		name, spec, link, regular string
		dangling                  bool
	}{
		{"plain path", "out.wav", "out.wav", "", false},
		{"plain path, dangling link", "out.wav", "out.wav", "", true},
		{"numbered name", "out.wav", "out-1.wav", "out.wav", false},
		{"template", "{agent}-{session}.wav", "unknown-s1.wav", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(t.TempDir(), "victim")
			if !tc.dangling {
				os.WriteFile(target, []byte("precious"), 0o644)
			}
			if tc.regular != "" {
				os.WriteFile(filepath.Join(dir, tc.regular), []byte("earlier"), 0o600)
			}
			link := filepath.Join(dir, tc.link)
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			r := newRig(t, Config{Output: "wav:" + filepath.Join(dir, tc.spec)})
			r.play(5, newCall("s1", 1000, 1))
			r.settle()
			s := r.sup.Snapshot().Sessions[0]
			if s.Output != "null" || !strings.Contains(s.OutputError, link+" is a symbolic link; refusing to write through it") {
				t.Errorf("output %q, error %q; want null and the link named", s.Output, s.OutputError)
			}
			r.sup.Close()
			b, err := os.ReadFile(target)
			switch {
			case tc.dangling && err == nil:
				t.Errorf("the missing target was created with %d bytes", len(b))
			case !tc.dangling && string(b) != "precious":
				t.Errorf("the target now holds %q", b)
			}
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Errorf("the link was replaced: %v", err)
			}
		})
	}
}
