package source

import (
	"strconv"
	"unicode/utf8"
)

// Field spelling shared by the sources' parsers, so that a violation names
// a field the same way whatever the source: ".name" for identifiers,
// `["name"]` otherwise (label names such as "k8s.pod" stay unambiguous).

// IsIdentifier says whether s can follow a dot in a field path.
func IsIdentifier(s string) bool {
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

// Quote quotes a received value for a violation, cut short so that an
// oversized value cannot blow up the error.
func Quote(s string) string {
	const maxQuoted = 64
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(prefix(s, maxQuoted)) + "..."
}

// Clip cuts s to at most n bytes, at a rune start, ending it with "…" when
// it cuts.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return prefix(s, n) + "…"
}

// prefix is s's longest prefix of at most n bytes (n < len(s)) that ends
// before a rune start.
func prefix(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Kind names, for a violation, the JSON type of a value that starts with
// (or, as jsontext.Kind, is of kind) first: "an object", "a number", ...
func Kind(first byte) string {
	switch first {
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
