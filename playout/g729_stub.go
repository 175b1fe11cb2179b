package playout

// G729BuiltIn says whether this binary decodes G.729.
const G729BuiltIn = false

func newG729() (decoder, error) { return nil, ErrG729NotBuilt }
