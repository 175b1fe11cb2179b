package capture

// DecodeGeneral runs only the general decoding path, so tests can check
// that the straight-line path for common frames agrees with it.
func (p *Packet) DecodeGeneral(frame []byte, lt LinkType, info *Info) error {
	return p.decode(frame, lt, info)
}

// StreamKeyFields returns the stream table's key fields Decode filled in.
func (p *Packet) StreamKeyFields() (flow, key2 uint64, key3 uint32, mpt uint8) {
	return p.b.flow, p.b.key2, p.b.key3, p.b.mpt
}

// ServicePorts lists the registered service ports at 1024 and above.
var ServicePorts = servicePorts[:]

// BriefOf returns the Brief Decode filled in.
func (p *Packet) BriefOf() Brief { return p.b }

// Offset returns where Brief.Decode found the IPv4 header (the general
// path does not note it); WithOffset returns b with that offset;
// SetBriefOffset sets p's.
func (b *Brief) Offset() uint8           { return b.off }
func (b Brief) WithOffset(o uint8) Brief { b.off = o; return b }
func (p *Packet) SetBriefOffset(o uint8) { p.b.off = o }
