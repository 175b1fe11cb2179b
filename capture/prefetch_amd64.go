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

// prefetchFrames asks for the lines of the first 58 bytes of each of the
// n frames from frames on.
//
//go:noescape
func prefetchFrames(frames *[]byte, n int)

// prefetchSlots asks, for each of the n hashes from hs on, for the two
// lines of the stream-table slot (128 bytes, in the array from slots on)
// that the hash's first entry in index (mask+1 entries) points at, if
// that entry is the hash's: one call for a group of packets.
//
//go:noescape
func prefetchSlots(index *uint64, slots *byte, hs *uint64, n int, mask uint64)
