package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func runDpkgCompare(a, b string) (string, error) {
	out, err := exec.Command("dpkg", "--compare-versions", a, "lt", b).CombinedOutput()
	return string(out), err
}

// buildProgram compiles a tiny program with or without cgo.
func buildProgram(t *testing.T, cgo bool) string {
	t.Helper()
	dir := t.TempDir()
	src := "package main\n\nfunc main() {}\n"
	if cgo {
		src = "package main\n\n// #include <math.h>\n// double f(double x) { return sqrt(x); }\n// #cgo LDFLAGS: -lm\nimport \"C\"\n\nfunc main() { C.f(2) }\n"
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module p\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "p")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if cgo {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		if cgo {
			t.Skipf("cannot build a cgo program here (a C compiler is needed): %v: %s", err, out)
		}
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// TestRuntimeDependsStatic: a static program (smserver, smnic) needs no
// library package.
func TestRuntimeDependsStatic(t *testing.T) {
	deps, err := RuntimeDepends(buildProgram(t, false))
	if err != nil || len(deps) != 0 {
		t.Fatalf("RuntimeDepends(static) = %q, %v; want none", deps, err)
	}
}

// TestRuntimeDependsCgo: a cgo program depends on libc6 with the newest
// GLIBC symbol version it uses, once, even when it links libm too.
func TestRuntimeDependsCgo(t *testing.T) {
	deps, err := RuntimeDepends(buildProgram(t, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(deps) != 1 || !strings.HasPrefix(deps[0], "libc6 (>= 2.") {
		t.Fatalf("RuntimeDepends(cgo) = %q, want one libc6 (>= 2.N)", deps)
	}
}

// TestRuntimeDependsUnknown: a library whose package is not known stops
// the build with ErrSoname naming it, rather than a package that installs
// without it.
func TestRuntimeDependsUnknown(t *testing.T) {
	saved := sonamePackages
	sonamePackages = map[string]string{}
	defer func() { sonamePackages = saved }()
	_, err := RuntimeDepends(buildProgram(t, true))
	if !errors.Is(err, ErrSoname) || !strings.Contains(err.Error(), ".so.") {
		t.Fatalf("RuntimeDepends with no known library = %v, want ErrSoname naming the library", err)
	}
}
