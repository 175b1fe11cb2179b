package capture

import (
	"syscall"
	"unsafe"
)

// hugePage is the size of a transparent huge page on the platforms the
// appliance runs on.
const hugePage = 2 << 20

// madvCollapse is MADV_COLLAPSE, which package syscall does not name.
const madvCollapse = 25

// adviseHuge asks the kernel to back the whole huge pages inside the n
// bytes from p with huge pages (madvise MADV_HUGEPAGE), so that a stream
// table of 100,000 streams (16 MiB of slots, 2 MiB of index) costs a few
// dozen TLB entries instead of thousands: every packet reads a slot and an
// index entry at random, and a TLB miss under a virtual machine's nested
// paging costs as much as the cache miss. Pages already in memory are
// collapsed into huge pages at once (MADV_COLLAPSE, Linux 6.1 and later):
// call it once the range is filled. Where transparent huge pages are off,
// or the range holds no whole huge page, it does nothing.
func adviseHuge(p unsafe.Pointer, n uintptr) {
	start := (uintptr(p) + hugePage - 1) &^ (hugePage - 1)
	end := (uintptr(p) + n) &^ (hugePage - 1)
	if end <= start {
		return
	}
	b := unsafe.Slice((*byte)(unsafe.Add(p, start-uintptr(p))), end-start)
	// Hints: no error matters (an older kernel lacks MADV_COLLAPSE).
	_ = syscall.Madvise(b, syscall.MADV_HUGEPAGE)
	_ = syscall.Madvise(b, madvCollapse)
}
