//go:build !amd64

package capture

// prefetchLines does nothing on this architecture: the walk of a ring
// block reads each packet without a hint ahead.
func prefetchLines(p *byte, lines uintptr) {}

// prefetchIndex does nothing on this architecture.
func prefetchIndex(index *uint64, hs *uint64, n int, mask uint64) {}

// prefetchFrames does nothing on this architecture.
func prefetchFrames(frames *[]byte, n int) {}

// prefetchSlots does nothing on this architecture.
func prefetchSlots(index *uint64, slots *byte, hs *uint64, n int, mask uint64) {}
