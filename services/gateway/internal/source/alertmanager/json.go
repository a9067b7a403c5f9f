package alertmanager

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

// The decoding below works on json.RawMessage, field by field, rather than
// json.Unmarshal into structs, because encoding/json would hide what this
// package must report: it matches keys case-insensitively, keeps the last of
// duplicate keys, silently replaces invalid UTF-8 with U+FFFD, and reports
// only the first type error without array indices. Raw invalid UTF-8 is
// rejected here; an escaped lone surrogate ("\ud800") is still turned into
// U+FFFD by encoding/json and accepted, as the result is valid UTF-8.

// member is one name/value pair of a JSON object, in document order.
type member struct {
	name      string
	nameUTF8  bool // whether the name's raw bytes were valid UTF-8
	value     json.RawMessage
	duplicate bool
}

// members splits a JSON object into its members. Absent and null yield none.
//
// raw has been checked to be valid JSON by then (parser.document), so the
// work here is splitting, done with jsontext in one pass: the values are
// subslices of raw, not copies, and nested objects are split again only
// when their turn comes. Duplicate names and invalid UTF-8 are allowed by
// the tokenizer so that they can be reported with their field path.
func (p *parser) members(path *at, raw json.RawMessage) ([]member, bool) {
	if raw == nil || isNull(raw) {
		return nil, true
	}
	if raw[0] != '{' {
		p.add(path, "must be an object, got %s", kind(raw))
		return nil, false
	}
	dec := p.decoder(raw)
	if _, err := dec.ReadToken(); err != nil {
		p.add(path, "invalid JSON: %s", err)
		return nil, false
	}
	// The members go on the parser's arena: one allocation serves every
	// object of the body (and, pooled, the next bodies).
	start := len(p.arena)
	var seen map[string]bool // only for objects too large to search
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			p.add(path, "invalid JSON: %s", err)
			return nil, false
		}
		nameUTF8 := utf8.Valid(name)
		var unquoted string
		if nameUTF8 && bytes.IndexByte(name, '\\') < 0 {
			unquoted = string(name[1 : len(name)-1])
		} else {
			b, err := jsontext.AppendUnquote(nil, name)
			if err != nil && nameUTF8 {
				p.add(path, "invalid JSON: %s", err)
				return nil, false
			}
			unquoted = string(b)
		}
		value, err := dec.ReadValue()
		if err != nil {
			p.add(&at{up: path, name: unquoted}, "invalid JSON: %s", err)
			return nil, false
		}
		end := int(dec.InputOffset())
		m := member{name: unquoted, nameUTF8: nameUTF8, value: raw[end-len(value) : end : end]}
		switch {
		case seen != nil:
			m.duplicate = seen[m.name]
			seen[m.name] = true
		case len(p.arena)-start < linearSearchMax:
			m.duplicate = slices.ContainsFunc(p.arena[start:], func(o member) bool { return o.name == m.name })
		default:
			seen = make(map[string]bool, 2*linearSearchMax)
			for _, o := range p.arena[start:] {
				seen[o.name] = true
			}
			m.duplicate = seen[m.name]
			seen[m.name] = true
		}
		p.arena = append(p.arena, m)
	}
	// Capped, so that appending to the result cannot overwrite what
	// follows it on the arena.
	return p.arena[start:len(p.arena):len(p.arena)], true
}

// linearSearchMax is the size up to which an object's names are searched
// for duplicates one by one, which beats a map for the handful of fields
// and labels of an alert.
const linearSearchMax = 32

// elements splits a JSON array into its elements, as members does objects.
func (p *parser) elements(raw json.RawMessage) ([]json.RawMessage, error) {
	dec := p.decoder(raw)
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	var out []json.RawMessage
	for dec.PeekKind() != ']' {
		value, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		end := int(dec.InputOffset())
		out = append(out, raw[end-len(value):end:end])
	}
	return out, nil
}

// decoder returns the parser's one decoder reset to read raw: members and
// elements finish with it before they return, so one serves the whole body.
func (p *parser) decoder(raw json.RawMessage) *jsontext.Decoder {
	// From a *bytes.Buffer, jsontext parses in place instead of copying;
	// the buffer reads raw itself, not a copy.
	p.buf = *bytes.NewBuffer(raw)
	if p.dec == nil {
		p.dec = jsontext.NewDecoder(&p.buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	} else {
		p.dec.Reset(&p.buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	}
	return p.dec
}

// fields reports an object's duplicate names: other JSON parsers keep the
// first of them where Go keeps the last, so a duplicate could mean
// different things to Vigil and to whoever checked the body before.
func (p *parser) fields(path *at, ms []member) fieldSet {
	for _, m := range ms {
		if m.duplicate {
			p.add(&at{up: path, name: m.name}, "must appear only once")
		}
	}
	return ms
}

// fieldSet is an object's members, looked up by name: a handful, so a
// search beats building a map.
type fieldSet []member

// get returns the value of the first member called name, or nil.
func (f fieldSet) get(name string) json.RawMessage {
	for _, m := range f {
		if m.name == name {
			return m.value
		}
	}
	return nil
}

// str decodes a string. Absent and null yield "".
func (p *parser) str(path *at, raw json.RawMessage, maxLen int) (string, bool) {
	if raw == nil || isNull(raw) {
		return "", true
	}
	if raw[0] != '"' {
		p.add(path, "must be a string, got %s", kind(raw))
		return "", false
	}
	if !utf8.Valid(raw) {
		p.add(path, "must be valid UTF-8")
		return "", false
	}
	var s string
	if len(raw) >= 2 && bytes.IndexByte(raw, '\\') < 0 {
		// No escapes: the bytes between the quotes are the string (valid
		// JSON, so no control characters; valid UTF-8, checked above).
		s = string(raw[1 : len(raw)-1])
	} else if err := json.Unmarshal(raw, &s); err != nil {
		p.add(path, "invalid JSON string: %s", err)
		return "", false
	}
	if len(s) > maxLen {
		p.add(path, "must be at most %d bytes long, got %d", maxLen, len(s))
		return "", false
	}
	return s, true
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// kind names the JSON type of raw for messages.
func kind(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "nothing"
	}
	return source.Kind(raw[0])
}

// at is where a value is in the body, built as the parser descends and
// spelt out only for a violation: a member of up called name, or, when elem
// is set, up's element number index.
type at struct {
	up    *at
	name  string
	index int
	elem  bool
}

// String spells the path in JSON's terms: ".name" for identifiers,
// `["name"]` otherwise, so that label names such as "k8s.pod" stay
// unambiguous, and "[i]" for array elements. nil is the body itself, "".
func (a *at) String() string {
	if a == nil {
		return ""
	}
	path := a.up.String()
	switch {
	case a.elem:
		return path + "[" + strconv.Itoa(a.index) + "]"
	case !source.IsIdentifier(a.name):
		return path + "[" + strconv.Quote(a.name) + "]"
	case path == "":
		return a.name
	default:
		return path + "." + a.name
	}
}
