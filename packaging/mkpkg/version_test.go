package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestDebVersion: git describe's forms give Debian versions that sort in
// build order (a pre-release before its release, commits after a tag
// after it); what makes no version is refused with ErrVersion.
func TestDebVersion(t *testing.T) {
	at := time.Date(2026, 12, 2, 3, 5, 12, 0, time.UTC)
	for _, tc := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-rc1", "1.2.3~rc1"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-4-gabcdef0", "1.2.3+git4.abcdef0"},
		{"v1.2.3-4-gabcdef0-dirty", "1.2.3+git4.abcdef0.dirty"},
		{"abcdef0", "0~git20261202030512.abcdef0"},
		{"abcdef0-dirty\n", "0~git20261202030512.abcdef0.dirty"},
	} {
		got, err := DebVersion(tc.describe, at)
		if err != nil || got != tc.want {
			t.Errorf("DebVersion(%q) = %q, %v; want %q", tc.describe, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "release_one", "v1.2_3"} {
		if got, err := DebVersion(bad, at); !errors.Is(err, ErrVersion) {
			t.Errorf("DebVersion(%q) = %q, %v; want ErrVersion", bad, got, err)
		}
	}
}

// TestDebVersionOrder: dpkg sorts the versions in build order.
func TestDebVersionOrder(t *testing.T) {
	if _, err := os.Stat("/usr/bin/dpkg"); err != nil {
		t.Skip("dpkg is not installed: the order of versions cannot be checked")
	}
	at := time.Date(2026, 12, 2, 3, 5, 12, 0, time.UTC)
	order := []string{"abcdef0", "v1.2.3-rc1", "v1.2.3", "v1.2.3-1-gabcdef0", "v1.2.3-2-g0123456", "v1.3.0"}
	var prev string
	for _, d := range order {
		v, err := DebVersion(d, at)
		if err != nil {
			t.Fatal(err)
		}
		if prev != "" {
			if out, err := runDpkgCompare(prev, v); err != nil {
				t.Errorf("dpkg does not sort %q before %q: %s", prev, v, strings.TrimSpace(out))
			}
		}
		prev = v
	}
}
