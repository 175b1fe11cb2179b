package directory

import (
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"strings"
)

// csvColumns are the columns a CSV directory may have; id is required.
var csvColumns = []string{"id", "name", "team", "extensions", "phone_ip", "phone_mac", "vlan", "mobile"}

// parseCSV reads the agents of a CSV directory.
func parseCSV(data []byte, src source, maxAgents int) ([]rawAgent, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\uFEFF"))))
	r.Comment = '#'
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if errors.Is(err, io.EOF) {
		return nil, newErr(ErrInvalid, "%s is empty (an empty directory is written as the header line alone)", src.name)
	}
	if err != nil {
		return nil, csvError(src, err)
	}
	headerLine, _ := r.FieldPos(0)
	col := make(map[string]int, len(csvColumns)) // column name → index
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, c := range csvColumns {
			known = known || c == name
		}
		if !known {
			return nil, newErr(ErrInvalid, "%s: unknown column %s in the header (expected %s)", src.at(headerLine), quote(h), strings.Join(csvColumns, ","))
		}
		if _, dup := col[name]; dup {
			return nil, newErr(ErrInvalid, "%s: the column %s is given twice in the header", src.at(headerLine), name)
		}
		col[name] = i
	}
	if _, ok := col["id"]; !ok {
		return nil, newErr(ErrInvalid, "%s: the header %s has no id column", src.at(headerLine), quote(strings.Join(header, ",")))
	}
	r.ReuseRecord = true
	var raws []rawAgent
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(src, err)
		}
		line, _ := r.FieldPos(0)
		if len(rec) != len(header) {
			return nil, newErr(ErrInvalid, "%s: the row has %d fields, the header %d", src.at(line), len(rec), len(header))
		}
		if len(raws) == maxAgents {
			return nil, newErr(ErrTooLarge, "%s holds more than %d agents", src.name, maxAgents)
		}
		get := func(name string) field {
			if i, ok := col[name]; ok {
				return field{val: strings.TrimSpace(rec[i]), line: line}
			}
			return field{line: line}
		}
		a := rawAgent{line: line, id: get("id"), name: get("name"), team: get("team"), mobile: get("mobile")}
		for _, x := range strings.SplitN(get("extensions").val, ";", MaxExtensions+2) {
			if x = strings.TrimSpace(x); x != "" {
				a.exts = append(a.exts, field{val: x, line: line})
			}
		}
		d := rawDevice{line: line, ip: get("phone_ip"), mac: get("phone_mac"), vlan: get("vlan")}
		if d.ip.val != "" || d.mac.val != "" || d.vlan.val != "" {
			a.devices = []rawDevice{d}
		}
		raws = append(raws, a)
	}
	return raws, nil
}

// csvError turns a CSV syntax error into a sentence naming the line.
func csvError(src source, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return newErr(ErrInvalid, "%s: %s", src.at(pe.Line), pe.Err)
	}
	return newErr(ErrInvalid, "%s is not valid CSV: %s", src.name, oneLine(err.Error()))
}
