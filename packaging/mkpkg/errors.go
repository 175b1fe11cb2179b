package main

import "errors"

var (
	// ErrVersion: git describe gave something that makes no Debian
	// version.
	ErrVersion = errors.New("the build's version is not a valid Debian version (git describe --tags --always --dirty gave it)")
	// ErrSoname: a program links a shared library this packager does not
	// know the Debian package of.
	ErrSoname = errors.New("a program links a shared library whose Debian package is unknown; add it to sonamePackages")
	// ErrMissingProgram: bin/ lacks a program the packages ship.
	ErrMissingProgram = errors.New("a program is missing from the binaries directory; run make build first")
)
