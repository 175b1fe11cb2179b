package directory

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// wireVersion is the version of the wire form this build writes and reads.
const wireVersion = 1

// wireSource names the wire form in error messages.
const wireSource = "agent directory data"

// The wire form: {"v":1,"agents":[{"id":"1001","name":"Alice Martin",
// "team":"Billing","ext":["5001"],"dev":[{"ip":"10.10.0.1",
// "mac":"00:11:22:33:44:55","vlan":85}],"mobile":true}]}, empty values
// left out, agents sorted by id.
type wireAgent struct {
	ID     string       `json:"id"`
	Name   string       `json:"name,omitempty"`
	Team   string       `json:"team,omitempty"`
	Ext    []string     `json:"ext,omitempty"`
	Dev    []wireDevice `json:"dev,omitempty"`
	Mobile bool         `json:"mobile,omitempty"`
}

type wireDevice struct {
	IP   string `json:"ip,omitempty"`
	MAC  string `json:"mac,omitempty"`
	VLAN int    `json:"vlan,omitempty"`
}

// Marshal returns the directory in its compact JSON form, for sharing with
// the other members of a cluster. The same directory always gives the
// same bytes.
func (d *Directory) Marshal() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"v":` + strconv.Itoa(wireVersion) + `,"agents":[`)
	for i, a := range d.agents {
		if i > 0 {
			b.WriteByte(',')
		}
		w := wireAgent{ID: a.ID, Name: a.Name, Team: a.Team, Ext: a.Extensions, Mobile: a.Mobile}
		for _, dev := range a.Devices {
			wd := wireDevice{VLAN: int(dev.VLAN)}
			if dev.IP.IsValid() {
				wd.IP = dev.IP.String()
			}
			if dev.MAC != nil {
				wd.MAC = dev.MAC.String()
			}
			w.Dev = append(w.Dev, wd)
		}
		j, err := json.Marshal(w)
		if err != nil {
			return nil, err
		}
		b.Write(j)
	}
	b.WriteString("]}")
	return b.Bytes(), nil
}

// Unmarshal reads the JSON form Marshal writes, with the default Options.
// See Options.Unmarshal.
func Unmarshal(b []byte) (*Directory, error) { return Options{}.Unmarshal(b) }

// Unmarshal reads the JSON form Marshal writes. The bytes come from the
// network: they are validated exactly as a file is (Load), within the
// same bounds, and decoded one agent at a time so that memory stays
// bounded by the agent limit. Errors name the agent by its position and
// wrap ErrInvalid or ErrTooLarge.
func (o Options) Unmarshal(b []byte) (*Directory, error) {
	if max := o.maxBytes(); int64(len(b)) > max {
		return nil, newErr(ErrTooLarge, "%s is larger than %d bytes", wireSource, max)
	}
	src := source{name: wireSource, wire: true}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	bad := func(err error) error {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errCutShort
		}
		return newErr(ErrInvalid, "%s is not valid: %s", wireSource, oneLine(err.Error()))
	}
	if err := expectDelim(dec, '{'); err != nil {
		return nil, bad(err)
	}
	version := 0
	var raws []rawAgent
	seenAgents := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		switch t {
		case "v":
			if version != 0 {
				return nil, newErr(ErrInvalid, "%s gives its version twice", wireSource)
			}
			if err := dec.Decode(&version); err != nil {
				return nil, bad(err)
			}
			if version != wireVersion {
				return nil, newErr(ErrInvalid, "%s has version %d; this build reads version %d", wireSource, version, wireVersion)
			}
		case "agents":
			if seenAgents {
				return nil, newErr(ErrInvalid, "%s gives its agents twice", wireSource)
			}
			seenAgents = true
			if raws, err = wireAgents(dec, src, o.maxAgents()); err != nil {
				return nil, err
			}
		default:
			return nil, newErr(ErrInvalid, "%s has an unknown key %s", wireSource, quote(toString(t)))
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, bad(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, newErr(ErrInvalid, "%s has data after its end", wireSource)
	}
	if version == 0 {
		return nil, newErr(ErrInvalid, "%s has no version", wireSource)
	}
	return build(src, raws)
}

func wireAgents(dec *json.Decoder, src source, maxAgents int) ([]rawAgent, error) {
	if err := expectDelim(dec, '['); err != nil {
		return nil, newErr(ErrInvalid, "%s: agents is not a list: %s", wireSource, oneLine(err.Error()))
	}
	var raws []rawAgent
	for dec.More() {
		n := len(raws) + 1
		if n > maxAgents {
			return nil, newErr(ErrTooLarge, "%s holds more than %d agents", wireSource, maxAgents)
		}
		var w wireAgent
		if err := dec.Decode(&w); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, errCutShort
			}
			return nil, newErr(ErrInvalid, "%s: %s", src.at(n), oneLine(err.Error()))
		}
		// Enough to report the excess, without copying the rest.
		w.Ext = w.Ext[:min(len(w.Ext), MaxExtensions+1)]
		w.Dev = w.Dev[:min(len(w.Dev), MaxDevices+1)]
		f := func(s string) field { return field{val: s, line: n} }
		r := rawAgent{line: n, id: f(w.ID), name: f(w.Name), team: f(w.Team), mobile: f(strconv.FormatBool(w.Mobile))}
		for _, x := range w.Ext {
			r.exts = append(r.exts, f(x))
		}
		for _, d := range w.Dev {
			rd := rawDevice{line: n, ip: f(d.IP), mac: f(d.MAC)}
			if d.VLAN != 0 {
				rd.vlan = f(strconv.Itoa(d.VLAN))
			}
			r.devices = append(r.devices, rd)
		}
		raws = append(raws, r)
	}
	if err := expectDelim(dec, ']'); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errCutShort
		}
		return nil, newErr(ErrInvalid, "%s: agents is not a list: %s", wireSource, oneLine(err.Error()))
	}
	return raws, nil
}

var errCutShort = newErr(ErrInvalid, "%s is cut short", wireSource)

type delimError struct {
	want json.Delim
	got  json.Token
}

func (e *delimError) Error() string {
	return "expected " + e.want.String() + " but found " + quote(toString(e.got))
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	if t != want {
		return &delimError{want, t}
	}
	return nil
}

func toString(t json.Token) string {
	switch v := t.(type) {
	case string:
		return v
	case json.Delim:
		return v.String()
	case nil:
		return "null"
	}
	b, _ := json.Marshal(t)
	return string(b)
}
