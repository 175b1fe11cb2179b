//go:build !amd64

package capture

// prefetchLines does nothing on this architecture: the walk of a ring
// block reads each packet without a hint ahead.
func prefetchLines(p *byte, lines uintptr) {}
