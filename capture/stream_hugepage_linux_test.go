package capture

import (
	"bufio"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// TestStreamTableHugePages checks that the slot array of a large table is
// eligible for transparent huge pages (the kernel's THPeligible flag of
// the memory mapping that holds it), so that 100,000 streams do not cost
// a TLB miss per packet. It skips where the kernel has transparent huge
// pages off.
func TestStreamTableHugePages(t *testing.T) {
	mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(mode), "[never]") {
		t.Skip("transparent huge pages are off on this kernel (/sys/kernel/mm/transparent_hugepage/enabled)")
	}
	tab := NewStreamTable(StreamTableConfig{})
	base := time.Unix(1700000000, 0)
	src := netip.MustParseAddrPort("10.0.0.1:40000")
	for i := range 40000 {
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 40002)
		p := Packet{Kind: KindRTP, Src: src, Dst: dst, RTP: RTPHeader{SSRC: uint32(i), SequenceNumber: 1, PayloadType: 0}}
		if !tab.Update(&p, base) {
			t.Fatalf("stream %d was not accounted", i)
		}
	}
	start := uintptr(unsafe.Pointer(&tab.slots[0]))
	end := start + uintptr(cap(tab.slots))*unsafe.Sizeof(slot{})
	page := (start + hugePage - 1) &^ (hugePage - 1)
	if page+hugePage > end {
		t.Fatalf("the slot array (%d bytes) holds no whole huge page", end-start)
	}
	eligible, found := thpEligible(t, page)
	if !found {
		t.Fatalf("no mapping in /proc/self/smaps holds address %#x", page)
	}
	if !eligible {
		t.Errorf("the mapping of the slot array at %#x is not eligible for huge pages (THPeligible 0)", page)
	}
}

// thpEligible returns the THPeligible flag of the mapping that holds addr
// and whether one does.
func thpEligible(t *testing.T, addr uintptr) (eligible, found bool) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("cannot read the process's memory mappings: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := strings.Cut(strings.Fields(line + " ")[0], "-"); ok && !strings.HasSuffix(line, ":") {
			a, err1 := strconv.ParseUint(lo, 16, 64)
			b, err2 := strconv.ParseUint(hi, 16, 64)
			if err1 == nil && err2 == nil {
				if in {
					return false, true // the mapping had no THPeligible line
				}
				in = uint64(addr) >= a && uint64(addr) < b
				continue
			}
		}
		if in && strings.HasPrefix(line, "THPeligible:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "THPeligible:")) == "1", true
		}
	}
	return false, in
}
