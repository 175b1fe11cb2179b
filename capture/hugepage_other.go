//go:build !linux

package capture

import "unsafe"

// adviseHuge does nothing outside Linux.
func adviseHuge(p unsafe.Pointer, n uintptr) {}
