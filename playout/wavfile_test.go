package playout_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silentmon/silentmon/playout"
)

// TestCreateWAVRefusesSymlink: a symbolic link in place of the WAV, to a
// file or to nothing, is refused with a sentence saying so (wrapping
// fs.ErrExist); the link's target is neither written nor created. Before,
// the open refused it too (O_EXCL) but said only "file exists".
func TestCreateWAVRefusesSymlink(t *testing.T) {
	for _, dangling := range []bool{false, true} {
		dir := t.TempDir()
		target := filepath.Join(t.TempDir(), "victim")
		if !dangling {
			if err := os.WriteFile(target, []byte("precious"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, "call.wav")
		if err := os.Symlink(target, path); err != nil {
			t.Fatal(err)
		}
		_, err := playout.CreateWAV(path, 1)
		if !errors.Is(err, fs.ErrExist) || !strings.Contains(err.Error(), path+" is a symbolic link; refusing to write through it") {
			t.Errorf("dangling %v: CreateWAV over a link: %v, want fs.ErrExist and the link named", dangling, err)
		}
		b, rerr := os.ReadFile(target)
		switch {
		case dangling && rerr == nil:
			t.Errorf("the missing target was created with %d bytes", len(b))
		case !dangling && string(b) != "precious":
			t.Errorf("the target now holds %q", b)
		}
		if _, err := playout.OpenSink("wav:" + path); !errors.Is(err, fs.ErrExist) {
			t.Errorf("dangling %v: OpenSink over a link: %v, want fs.ErrExist", dangling, err)
		}
	}
}
