package alertmanager

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
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
func (p *parser) members(path string, raw json.RawMessage) ([]member, bool) {
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
	var out []member
	var seen map[string]bool
	for dec.PeekKind() != '}' {
		name, err := dec.ReadValue()
		if err != nil {
			p.add(path, "invalid JSON: %s", err)
			return nil, false
		}
		nameUTF8 := utf8.Valid(name)
		unquoted, err := jsontext.AppendUnquote(nil, name)
		if err != nil && nameUTF8 {
			p.add(path, "invalid JSON: %s", err)
			return nil, false
		}
		value, err := dec.ReadValue()
		if err != nil {
			p.add(join(path, string(unquoted)), "invalid JSON: %s", err)
			return nil, false
		}
		end := int(dec.InputOffset())
		m := member{name: string(unquoted), nameUTF8: nameUTF8, value: raw[end-len(value) : end : end]}
		if seen == nil {
			seen = make(map[string]bool, 8)
		}
		m.duplicate = seen[m.name]
		seen[m.name] = true
		out = append(out, m)
	}
	return out, true
}

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
	// From a *bytes.Buffer, jsontext parses in place instead of copying.
	p.buf = bytes.NewBuffer(raw)
	if p.dec == nil {
		p.dec = jsontext.NewDecoder(p.buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	} else {
		p.dec.Reset(p.buf, jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
	}
	return p.dec
}

// fields indexes an object's members by name, rejecting duplicate names:
// other JSON parsers keep the first of them where Go keeps the last, so a
// duplicate could mean different things to Vigil and to whoever checked the
// body before.
func (p *parser) fields(path string, ms []member) map[string]json.RawMessage {
	out := make(map[string]json.RawMessage, len(ms))
	for _, m := range ms {
		if m.duplicate {
			p.add(join(path, m.name), "must appear only once")
			continue
		}
		out[m.name] = m.value
	}
	return out
}

// str decodes a string. Absent and null yield "".
func (p *parser) str(path string, raw json.RawMessage, maxLen int) (string, bool) {
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
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// join appends a member name to a field path: ".name" for identifiers,
// `["name"]` otherwise, so that label names such as "k8s.pod" stay
// unambiguous.
func join(path, name string) string {
	if !isIdentifier(name) {
		return path + "[" + strconv.Quote(name) + "]"
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// quote quotes a received value for a message, cut short so that an
// oversized value cannot blow up the error.
func quote(s string) string {
	const maxQuoted = 64
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
