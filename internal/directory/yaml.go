package directory

import (
	"bytes"
	"errors"
	"io"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// The keys of an agent in YAML; phone_ip, phone_mac and vlan describe one
// device, devices lists several (with the keys of yamlDeviceKeys).
var (
	yamlAgentKeys  = []string{"id", "name", "team", "extensions", "phone_ip", "phone_mac", "vlan", "mobile", "devices"}
	yamlDeviceKeys = []string{"ip", "mac", "vlan"}
)

// parseYAML reads the agents of a YAML directory.
func parseYAML(data []byte, src source, maxAgents int) ([]rawAgent, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, newErr(ErrInvalid, "%s is empty (an empty directory is written agents: [])", src.name)
		}
		return nil, newErr(ErrInvalid, "%s is not valid YAML: %s", src.name, oneLine(err.Error()))
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, newErr(ErrInvalid, "%s holds more than one YAML document", src.name)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, newErr(ErrInvalid, "%s: the top level is not a mapping with the key agents", src.at(doc.Line))
	}
	top := doc.Content[0]
	var list *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "agents" {
			return nil, newErr(ErrInvalid, "%s: unknown key %s at the top level (expected agents)", src.at(k.Line), quote(k.Value))
		}
		if list != nil {
			return nil, newErr(ErrInvalid, "%s: the key agents is given twice", src.at(k.Line))
		}
		list = v
	}
	if list == nil {
		return nil, newErr(ErrInvalid, "%s: the top level has no key agents", src.at(top.Line))
	}
	if isNull(list) {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, newErr(ErrInvalid, "%s: agents is not a list", src.at(list.Line))
	}
	if len(list.Content) > maxAgents {
		return nil, newErr(ErrTooLarge, "%s holds more than %d agents", src.name, maxAgents)
	}
	raws := make([]rawAgent, 0, len(list.Content))
	for _, n := range list.Content {
		r, err := yamlAgent(n, src)
		if err != nil {
			return nil, err
		}
		raws = append(raws, r)
	}
	return raws, nil
}

func yamlAgent(n *yaml.Node, src source) (rawAgent, error) {
	r := rawAgent{line: n.Line}
	if n.Kind != yaml.MappingNode {
		return r, newErr(ErrInvalid, "%s: an agent is not a mapping of id, name, team, extensions...", src.at(n.Line))
	}
	seen := make(map[string]bool, len(yamlAgentKeys))
	var flat rawDevice
	hasFlat := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		key, err := yamlKey(k, v, src, yamlAgentKeys, seen)
		if err != nil {
			return r, err
		}
		var f *field
		switch key {
		case "id":
			f = &r.id
		case "name":
			f = &r.name
		case "team":
			f = &r.team
		case "mobile":
			f = &r.mobile
		case "phone_ip":
			f, hasFlat = &flat.ip, true
		case "phone_mac":
			f, hasFlat = &flat.mac, true
		case "vlan":
			f, hasFlat = &flat.vlan, true
		case "extensions":
			r.exts, err = yamlList(k, v, src)
			if err != nil {
				return r, err
			}
		case "devices":
			r.devices, err = yamlDevices(k, v, src)
			if err != nil {
				return r, err
			}
		}
		if f != nil {
			if *f, err = yamlScalar(k, v, src); err != nil {
				return r, err
			}
		}
	}
	if hasFlat {
		flat.line = n.Line
		r.devices = append([]rawDevice{flat}, r.devices...)
	}
	return r, nil
}

func yamlDevices(k, v *yaml.Node, src source) ([]rawDevice, error) {
	if isNull(v) {
		return nil, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, newErr(ErrInvalid, "%s: devices is not a list", src.at(v.Line))
	}
	if len(v.Content) > MaxDevices+1 {
		v = &yaml.Node{Kind: v.Kind, Line: v.Line, Content: v.Content[:MaxDevices+1]} // enough to report the excess
	}
	out := make([]rawDevice, 0, len(v.Content))
	for _, n := range v.Content {
		if n.Kind != yaml.MappingNode {
			return nil, newErr(ErrInvalid, "%s: a device is not a mapping of ip, mac and vlan", src.at(n.Line))
		}
		d := rawDevice{line: n.Line}
		seen := make(map[string]bool, len(yamlDeviceKeys))
		for i := 0; i+1 < len(n.Content); i += 2 {
			dk, dv := n.Content[i], n.Content[i+1]
			key, err := yamlKey(dk, dv, src, yamlDeviceKeys, seen)
			if err != nil {
				return nil, err
			}
			f := &d.ip
			switch key {
			case "mac":
				f = &d.mac
			case "vlan":
				f = &d.vlan
			}
			if *f, err = yamlScalar(dk, dv, src); err != nil {
				return nil, err
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// yamlKey checks a mapping key: a known one, not given twice.
func yamlKey(k, v *yaml.Node, src source, known []string, seen map[string]bool) (string, error) {
	if k.Kind != yaml.ScalarNode {
		return "", newErr(ErrInvalid, "%s: a key is not a plain name", src.at(k.Line))
	}
	ok := false
	for _, x := range known {
		ok = ok || x == k.Value
	}
	if !ok {
		return "", newErr(ErrInvalid, "%s: unknown key %s (expected one of %s)", src.at(k.Line), quote(k.Value), strings.Join(known, ", "))
	}
	if seen[k.Value] {
		return "", newErr(ErrInvalid, "%s: the key %s is given twice", src.at(k.Line), k.Value)
	}
	seen[k.Value] = true
	return k.Value, nil
}

// yamlScalar reads a single value; null reads as empty.
func yamlScalar(k, v *yaml.Node, src source) (field, error) {
	if isNull(v) {
		return field{line: v.Line}, nil
	}
	if v.Kind != yaml.ScalarNode {
		return field{}, newErr(ErrInvalid, "%s: %s is not a single value", src.at(v.Line), k.Value)
	}
	return field{val: v.Value, line: v.Line}, nil
}

// yamlList reads a list of single values; a single value reads as a list
// of one.
func yamlList(k, v *yaml.Node, src source) ([]field, error) {
	if isNull(v) {
		return nil, nil
	}
	if v.Kind == yaml.ScalarNode {
		return []field{{val: v.Value, line: v.Line}}, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, newErr(ErrInvalid, "%s: %s is not a list", src.at(v.Line), k.Value)
	}
	items := v.Content
	if len(items) > MaxExtensions+1 {
		items = items[:MaxExtensions+1] // enough to report the excess
	}
	out := make([]field, 0, len(items))
	for _, n := range items {
		if n.Kind != yaml.ScalarNode || isNull(n) {
			return nil, newErr(ErrInvalid, "%s: an item of %s is not a single value", src.at(n.Line), k.Value)
		}
		out = append(out, field{val: n.Value, line: n.Line})
	}
	return out, nil
}

// isNull reports whether n is an explicit or implicit null. Aliases are
// not followed: they count as neither null nor a value.
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// oneLine joins the lines of a parser's message.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
