package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// debianVersion matches an upstream version without a Debian revision
// (deb-version(7)): it starts with a digit and holds only letters, digits
// and . + ~.
var debianVersion = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)

// describeForm is git describe --tags --always --dirty: an optional tag,
// the commits since it and the abbreviated commit, then -dirty.
var describeForm = regexp.MustCompile(`^(?:(.+)-([0-9]+)-g([0-9a-f]+)|([0-9a-f]{4,40})|(.+?))(-dirty)?$`)

// DebVersion turns the output of `git describe --tags --always --dirty`
// into a Debian package version that sorts the way the builds were made:
//
//	v1.2.3                 -> 1.2.3
//	v1.2.3-rc1             -> 1.2.3~rc1 (before 1.2.3)
//	v1.2.3-4-gabcdef0      -> 1.2.3+git4.abcdef0
//	abcdef0 (no tag yet)   -> 0~git20261202030512.abcdef0 (the commit's time, UTC)
//
// and a tree with changes adds ".dirty" (or "+dirty" after a bare tag).
func DebVersion(describe string, commitTime time.Time) (string, error) {
	d := strings.TrimSpace(describe)
	m := describeForm.FindStringSubmatch(d)
	if d == "" || m == nil {
		return "", fmt.Errorf("%w: %q", ErrVersion, describe)
	}
	tag, since, hash, bare, plainTag, dirty := m[1], m[2], m[3], m[4], m[5], m[6] != ""
	var v string
	switch {
	case bare != "":
		v = "0~git" + commitTime.UTC().Format("20060102150405") + "." + bare
	case tag != "":
		v = tagVersion(tag) + "+git" + since + "." + hash
	default:
		v = tagVersion(plainTag)
	}
	if dirty {
		if strings.Contains(v, "+") || strings.Contains(v, "~git") {
			v += ".dirty"
		} else {
			v += "+dirty"
		}
	}
	if !debianVersion.MatchString(v) {
		return "", fmt.Errorf("%w: %q gives %q", ErrVersion, describe, v)
	}
	return v, nil
}

// tagVersion is a release tag as a Debian version: without its leading v,
// a pre-release after ~ so that it sorts before the release.
func tagVersion(tag string) string {
	t := strings.TrimPrefix(tag, "v")
	return strings.ReplaceAll(t, "-", "~")
}
