package captureserver

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/silentmon/silentmon/filter"
)

// recordRig returns recorders on a fresh directory whose files are named
// at a fixed time, the session they record and the name of its file.
func recordRig(t *testing.T) (*recorders, *filter.Session, string) {
	t.Helper()
	r := newRecorders(t.TempDir(), slog.New(slog.DiscardHandler))
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	r.now = func() time.Time { return at }
	s := &filter.Session{ID: "9f2c61d04be3a871", Agent: "1001/x", Record: true}
	return r, s, filepath.Join(r.dir, "20260304T050607Z-agent1001_x-9f2c61d04be3a871")
}

// TestRecordingMode: a recording is a new file readable by its owner only.
func TestRecordingMode(t *testing.T) {
	r, s, base := recordRig(t)
	r.sync([]*filter.Session{s})
	defer r.closeAll()
	if p := r.paths()[s.ID]; p != base+".pcap" {
		t.Fatalf("recording %q, want %s.pcap", p, base)
	}
	fi, err := os.Stat(base + ".pcap")
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("recording: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
}

// TestRecordingKeepsExisting: a recording whose name exists (a restart in
// the same second) takes the next numbered name and leaves the file as it
// was. Before, the recording failed.
func TestRecordingKeepsExisting(t *testing.T) {
	r, s, base := recordRig(t)
	if err := os.WriteFile(base+".pcap", []byte("earlier"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.sync([]*filter.Session{s})
	defer r.closeAll()
	if p := r.paths()[s.ID]; p != base+"-1.pcap" {
		t.Fatalf("recording %q (states %v), want %s-1.pcap", p, r.states(), base)
	}
	if b, _ := os.ReadFile(base + ".pcap"); string(b) != "earlier" {
		t.Errorf("the existing recording now holds %q", b)
	}
	if fi, err := os.Stat(base + "-1.pcap"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("new recording: %v, want mode 0600", err)
	}
}

// TestRecordingRefusesSymlink: a symbolic link planted at a recording's
// name (to a file or to nothing, at the first or a numbered name) is not
// written through: the recording fails, its state names the link, and the
// link's target is untouched. Before, the failure said only "file
// exists".
func TestRecordingRefusesSymlink(t *testing.T) {
	for _, tc := range []struct {
		name     string
		suffix   string // the name the link takes
		dangling bool
	}{{"link", ".pcap", false}, {"dangling link", ".pcap", true}, {"numbered name", "-1.pcap", false}} {
		t.Run(tc.name, func(t *testing.T) {
			r, s, base := recordRig(t)
			if tc.suffix != ".pcap" {
				os.WriteFile(base+".pcap", []byte("earlier"), 0o600)
			}
			target := filepath.Join(t.TempDir(), "victim")
			if !tc.dangling {
				os.WriteFile(target, []byte("precious"), 0o644)
			}
			link := base + tc.suffix
			if err := os.Symlink(target, link); err != nil {
				t.Fatal(err)
			}
			r.sync([]*filter.Session{s})
			defer r.closeAll()
			if p, ok := r.paths()[s.ID]; ok {
				t.Fatalf("recording opened at %s", p)
			}
			want := "failed: recording file " + link + " is a symbolic link; refusing to write through it"
			if st := r.states()[s.ID]; st != want {
				t.Errorf("state %q, want %q", st, want)
			}
			if r.failures.Load() != 1 {
				t.Errorf("failures %d, want 1", r.failures.Load())
			}
			b, err := os.ReadFile(target)
			switch {
			case tc.dangling && err == nil:
				t.Errorf("the missing target was created with %d bytes", len(b))
			case !tc.dangling && string(b) != "precious":
				t.Errorf("the target now holds %q", b)
			}
			keep := map[string]bool{filepath.Base(link): true}
			if tc.suffix != ".pcap" {
				keep[filepath.Base(base)+".pcap"] = true
			}
			ents, _ := os.ReadDir(r.dir)
			for _, e := range ents {
				if !keep[e.Name()] {
					t.Errorf("%s written to the record directory", e.Name())
				}
			}
		})
	}
}
