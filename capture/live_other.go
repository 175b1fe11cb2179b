//go:build !linux

package capture

import "sync/atomic"

// Live is a live capture; on this system OpenLive always fails.
type Live struct{ drops dropLog }

// LiveSource is one worker's ring; on this system there are none.
type LiveSource struct{}

// OpenLive returns ErrLiveUnsupported: live capture needs Linux.
func OpenLive(cfg LiveConfig) (*Live, error) { return nil, ErrLiveUnsupported }

// Sources returns nil.
func (l *Live) Sources() []*LiveSource { return nil }

// Stats returns zero counters.
func (l *Live) Stats() LiveStats { return LiveStats{} }

// DropCounter returns the running drop count.
func (l *Live) DropCounter() *atomic.Uint64 { return &l.drops.total }

// DropHistory returns nil.
func (l *Live) DropHistory() []DropSample { return nil }

// Close does nothing.
func (l *Live) Close() error { return nil }

// ReadBatch implements Source.
func (s *LiveSource) ReadBatch(frames [][]byte, infos []Info) (int, error) {
	return 0, ErrLiveUnsupported
}

// LinkType implements Source.
func (s *LiveSource) LinkType() LinkType { return LinkEthernet }

// Close implements Source.
func (s *LiveSource) Close() error { return nil }
