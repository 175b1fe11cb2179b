package capture

// DecodeGeneral runs only the general decoding path, so tests can check
// that the straight-line path for common frames agrees with it.
func (p *Packet) DecodeGeneral(frame []byte, lt LinkType, info *Info) error {
	return p.decode(frame, lt, info)
}
