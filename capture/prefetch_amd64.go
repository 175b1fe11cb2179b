package capture

// prefetchLines asks the processor to bring the lines of 64 bytes from p
// on into its cache, without waiting for them: a hint that never faults,
// even past the end of the memory p points into.
//
//go:noescape
func prefetchLines(p *byte, lines uintptr)
