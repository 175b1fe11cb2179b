package main

import (
	"debug/elf"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// sonamePackages maps the shared libraries silentmon's programs link (the
// cgo ones: PortAudio, bcg729, spandsp for G.722, libopus and libspeexdsp's
// resampler) to the Debian
// packages that hold them.
var sonamePackages = map[string]string{
	"libc.so.6":         "libc6",
	"libm.so.6":         "libc6",
	"libpthread.so.0":   "libc6",
	"libdl.so.2":        "libc6",
	"libresolv.so.2":    "libc6",
	"librt.so.1":        "libc6",
	"libportaudio.so.2": "libportaudio2",
	"libbcg729.so.0":    "libbcg729-0",
	"libasound.so.2":    "libasound2",
	"libspandsp.so.2":   "libspandsp2",
	"libopus.so.0":      "libopus0",
	"libspeexdsp.so.1":  "libspeexdsp1",
}

// RuntimeDepends returns the Depends entries of the program at path: one
// per Debian package holding a library it links (its DT_NEEDED entries),
// libc6 with the newest GLIBC symbol version it uses. A static program
// needs none.
func RuntimeDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the program %s: %w", path, err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		return nil, fmt.Errorf("cannot read the libraries %s links: %w", path, err)
	}
	pkgs := map[string]bool{}
	for _, lib := range libs {
		p, ok := sonamePackages[lib]
		if !ok {
			return nil, fmt.Errorf("%w: %s links %s", ErrSoname, path, lib)
		}
		pkgs[p] = true
	}
	glibc := ""
	if pkgs["libc6"] {
		syms, _ := f.ImportedSymbols()
		for _, s := range syms {
			if v, ok := strings.CutPrefix(s.Version, "GLIBC_"); ok && versionLess(glibc, v) {
				glibc = v
			}
		}
	}
	var out []string
	for p := range pkgs {
		if p == "libc6" && glibc != "" {
			p += " (>= " + glibc + ")"
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// versionLess compares dotted numeric versions such as 2.34 and 2.2.5; an
// empty a is less than anything.
func versionLess(a, b string) bool {
	if a == "" {
		return true
	}
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) || i < len(bs); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x < y
		}
	}
	return false
}
