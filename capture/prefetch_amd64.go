package capture

// prefetchLines asks the processor to bring the lines of 64 bytes from p
// on into its cache, without waiting for them: a hint that never faults,
// even past the end of the memory p points into.
//
//go:noescape
func prefetchLines(p *byte, lines uintptr)

// prefetchIndex asks for the line of index[hs[i]&mask] for each of the n
// hashes from hs on: one call for a chunk of a batch.
//
//go:noescape
func prefetchIndex(index *uint64, hs *uint64, n int, mask uint64)

// prefetchPair asks for the two lines of 64 bytes from p on (a stream
// table slot).
//
//go:noescape
func prefetchPair(p *byte)

// prefetchFrames asks for the lines of the first 58 bytes of each of the
// n frames from frames on.
//
//go:noescape
func prefetchFrames(frames *[]byte, n int)
