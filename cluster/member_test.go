package cluster

// memberMain runs this test binary as a cluster member process when the
// multi-process tests ask for it; it reports whether it did.
func memberMain() bool { return false }
