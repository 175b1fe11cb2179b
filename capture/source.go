package capture

import "time"

// Info describes one captured frame.
type Info struct {
	Timestamp      time.Time
	CaptureLength  int // bytes captured
	Length         int // bytes on the wire
	InterfaceIndex int
	// VLANValid says the kernel (or driver) stripped an 802.1Q tag from the
	// frame and reported it out of band, in VLANTCI and VLANTPID.
	VLANValid bool
	VLANTCI   uint16
	VLANTPID  uint16
}

// Source delivers captured frames in batches.
//
// ReadBatch fills frames[i] and infos[i] for i < n, n ≤ len(frames), and
// blocks until at least one frame is available. The frames alias memory
// owned by the source and stay valid until the next call to ReadBatch or
// Close; a caller that keeps a frame copies it. At the end of a file,
// ReadBatch returns 0 and io.EOF. A Source is not safe for concurrent use.
type Source interface {
	ReadBatch(frames [][]byte, infos []Info) (n int, err error)
	LinkType() LinkType
	Close() error
}
