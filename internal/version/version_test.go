package version

import (
	"runtime"
	"testing"
)

// TestString: the --version line names the version, commit, date, Go
// release and the features given.
func TestString(t *testing.T) {
	in := Info{Version: "v1.2.0", Commit: "e724f9dfd612", Date: "2026-12-02T02:13:24Z", Go: "go1.26.8"}
	if got, want := in.String(), "v1.2.0 (commit e724f9dfd612, 2026-12-02T02:13:24Z, go1.26.8)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
	if got, want := in.String("G.729 built in", "PortAudio left out"), "v1.2.0 (commit e724f9dfd612, 2026-12-02T02:13:24Z, go1.26.8); G.729 built in, PortAudio left out"; got != want {
		t.Fatalf("String(features) = %q, want %q", got, want)
	}
}

// TestGetFromLinker: without the toolchain's VCS stamp, the commit and
// date the build passed with -X are used; the Go release is this one.
func TestGetFromLinker(t *testing.T) {
	commit, date = "0123456789ab", "2026-12-02T00:00:00Z"
	defer func() { commit, date = "", "" }()
	in := Get()
	if in.Go != runtime.Version() || in.Version == "" {
		t.Fatalf("Get() = %+v", in)
	}
	// Test binaries carry no VCS stamp, so the linker's values stand.
	if in.Commit != "0123456789ab" || in.Date != "2026-12-02T00:00:00Z" {
		t.Fatalf("Get() = %+v: the commit and date the linker set were not used", in)
	}
}
