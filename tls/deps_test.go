package tls

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestNoProjectImports keeps the dependency direction of DESIGN.md: tls
// imports no other package of the project, and no cgo.
func TestNoProjectImports(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, "github.com/silentmon/silentmon") || p == "C" {
				t.Errorf("%s imports %s; package tls must not depend on the rest of the project or on cgo", f, p)
			}
			// The password estimator costs every program that links it
			// about 80 ms and 11 MB at start; only smctl needs it.
			if strings.Contains(p, "zxcvbn") {
				t.Errorf("%s imports %s; the password estimator belongs to internal/password, which only smctl imports", f, p)
			}
		}
	}
}
