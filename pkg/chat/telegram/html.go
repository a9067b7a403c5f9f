package telegram

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxMessageLength is the most characters a message may have. Telegram
// counts Unicode code points of the text after entity parsing (tags do not
// count, &amp; counts as one character, an emoji outside the BMP counts
// once), after dropping '\r' and a few invisible characters and trimming
// trailing blanks.
const MaxMessageLength = 4096

// ellipsis marks a truncated message.
const ellipsis = "…"

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

// EscapeHTML makes s safe to embed in a message sent with ParseModeHTML,
// as text or as a double-quoted attribute value: it escapes &, <, > and ",
// the characters Telegram's parser gives a meaning to, and replaces bytes
// that are not UTF-8, which Telegram refuses, with U+FFFD.
func EscapeHTML(s string) string {
	return htmlEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// TruncateHTML shortens s, a message in Telegram's HTML, so that Telegram
// counts at most limit characters, ending it with "…" when it cuts. It cuts
// between characters, never inside a tag or a character reference, and
// closes the tags left open. It returns s unchanged when it fits, and an
// error when s is not HTML that Telegram would accept.
//
// The count is never below Telegram's; it is above it only for leading
// blanks and for control characters, which Telegram turns into spaces it
// may trim.
func TruncateHTML(s string, limit int) (string, error) {
	if limit < 1 {
		return "", fmt.Errorf("telegram: truncate HTML to %d characters: want at least 1", limit)
	}
	tokens, err := lexHTML(s)
	if err != nil {
		return "", fmt.Errorf("telegram: truncate HTML: %w", err)
	}
	if textLength(tokens) <= limit {
		return s, nil
	}

	budget := limit - utf8.RuneCountInString(ellipsis)
	var (
		b     strings.Builder
		open  []string
		count int
		start int
	)
	b.Grow(len(s))
tokens:
	for _, t := range tokens {
		switch t.kind {
		case tokenChar:
			w := charWeight(t.r)
			if count+w > budget {
				break tokens
			}
			count += w
		case tokenStart:
			open = append(open, t.tag)
		case tokenEnd:
			open = open[:len(open)-1]
		}
		b.WriteString(s[start:t.end])
		start = t.end
	}
	b.WriteString(ellipsis)
	for i := len(open) - 1; i >= 0; i-- {
		b.WriteString("</" + open[i] + ">")
	}
	return b.String(), nil
}

// textLength counts the characters of a lexed message the way Telegram
// does, trailing spaces and newlines excluded.
func textLength(tokens []token) int {
	count, trimmed := 0, 0
	for _, t := range tokens {
		if t.kind != tokenChar {
			continue
		}
		w := charWeight(t.r)
		count += w
		if w > 0 && t.r != ' ' && t.r != '\n' {
			trimmed = count
		}
	}
	return trimmed
}

// charWeight is 0 for the characters Telegram drops from a text, 1 for others.
func charWeight(r rune) int {
	switch {
	case r == '\r', r >= 0x2028 && r <= 0x202e, r == 0x0333, r == 0x033f, r == 0x030a:
		return 0
	default:
		return 1
	}
}

type tokenKind uint8

const (
	tokenChar  tokenKind = iota // one character of text, literal or a reference
	tokenStart                  // a start tag
	tokenEnd                    // an end tag
)

// token is a piece of a message. Tokens are contiguous: each starts where
// the previous one ends.
type token struct {
	kind tokenKind
	end  int    // offset just past the token in the source
	r    rune   // tokenChar: the character
	tag  string // tokenStart: the tag name
}

// lexHTML splits s into tokens following the parser Telegram runs (tdlib's
// parse_html), and refuses what it refuses, in its words. A NUL byte ends a
// tag, as in tdlib's C strings.
func lexHTML(s string) ([]token, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("not UTF-8")
	}
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	// An open element; chars is how many characters preceded it, to tell
	// whether it has content when it closes.
	type open struct {
		tag, arg string
		chars    int
	}
	var (
		tokens []token
		stack  []open
		chars  int
	)
	for i := 0; i < len(s); {
		c := s[i]
		if c == '&' {
			if code, next := decodeCharRef(s, i); code != 0 {
				if code >= 0xd800 && code <= 0xdfff {
					return nil, errors.New("character reference to a UTF-16 surrogate")
				}
				tokens = append(tokens, token{kind: tokenChar, end: next, r: rune(code)})
				chars++
				i = next
				continue
			}
		}
		if c != '<' {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			tokens = append(tokens, token{kind: tokenChar, end: i, r: r})
			chars++
			continue
		}

		begin := i
		i++
		if at(i) != '/' {
			for !isSpace(at(i)) && at(i) != '>' {
				i++
			}
			if at(i) == 0 {
				return nil, fmt.Errorf("unclosed start tag at byte offset %d", begin)
			}
			tag := asciiLower(s[begin+1 : i])
			if !supportedTags[tag] {
				return nil, fmt.Errorf("unsupported start tag %q at byte offset %d", tag, begin)
			}
			arg := ""
			for at(i) != '>' {
				for at(i) != 0 && isSpace(at(i)) {
					i++
				}
				if at(i) == '>' {
					break
				}
				nameBegin := i
				for !isSpace(at(i)) && at(i) != '=' && at(i) != '>' && at(i) != '/' && at(i) != '"' && at(i) != '\'' {
					i++
				}
				name := s[nameBegin:i]
				if name == "" {
					return nil, fmt.Errorf("empty attribute name in the tag %q at byte offset %d", tag, begin)
				}
				for at(i) != 0 && isSpace(at(i)) {
					i++
				}
				if at(i) != '=' {
					if at(i) == 0 {
						return nil, fmt.Errorf("unclosed start tag %q at byte offset %d", tag, begin)
					}
					continue
				}
				i++
				for at(i) != 0 && isSpace(at(i)) {
					i++
				}
				if at(i) == 0 {
					return nil, fmt.Errorf("unclosed start tag %q at byte offset %d", tag, begin)
				}
				var value strings.Builder
				if q := at(i); q != '\'' && q != '"' {
					tokenBegin := i
					for isAlnum(at(i)) || at(i) == '.' || at(i) == '-' {
						i++
					}
					value.WriteString(asciiLower(s[tokenBegin:i]))
					if !isSpace(at(i)) && at(i) != '>' {
						return nil, fmt.Errorf("unexpected end of name token at byte offset %d", tokenBegin)
					}
				} else {
					i++
					for at(i) != q && at(i) != 0 {
						if at(i) == '&' {
							if code, next := decodeCharRef(s, i); code != 0 {
								value.WriteRune(rune(code))
								i = next
								continue
							}
						}
						value.WriteByte(s[i])
						i++
					}
					if at(i) == q {
						i++
					}
				}
				if at(i) == 0 {
					return nil, fmt.Errorf("unclosed start tag at byte offset %d", begin)
				}
				switch {
				case tag == "span" && name == "class" && strings.HasPrefix(value.String(), "tg-"):
					arg = strings.TrimPrefix(value.String(), "tg-")
				case tag == "tg-emoji" && name == "emoji-id":
					arg = value.String()
				}
			}
			if tag == "span" && arg != "spoiler" {
				return nil, fmt.Errorf(`tag "span" must have class "tg-spoiler" at byte offset %d`, begin)
			}
			i++ // past '>'
			stack = append(stack, open{tag: tag, arg: arg, chars: chars})
			tokens = append(tokens, token{kind: tokenStart, end: i, tag: tag})
			continue
		}

		if len(stack) == 0 {
			return nil, fmt.Errorf("unexpected end tag at byte offset %d", begin)
		}
		for !isSpace(at(i)) && at(i) != '>' {
			i++
		}
		endTag := asciiLower(s[begin+2 : i])
		for isSpace(at(i)) && at(i) != 0 {
			i++
		}
		if at(i) != '>' {
			return nil, fmt.Errorf("unclosed end tag at byte offset %d", begin)
		}
		i++ // past '>'
		top := stack[len(stack)-1]
		if endTag != "" && endTag != top.tag {
			return nil, fmt.Errorf(`unmatched end tag at byte offset %d, expected "</%s>", found "</%s>"`, begin, top.tag, endTag)
		}
		// Telegram checks the id of a custom emoji only when it has content.
		if top.tag == "tg-emoji" && chars > top.chars && !validCustomEmojiID(top.arg) {
			return nil, errors.New("invalid custom emoji identifier specified")
		}
		stack = stack[:len(stack)-1]
		tokens = append(tokens, token{kind: tokenEnd, end: i})
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("can't find end tag corresponding to start tag %q", stack[len(stack)-1].tag)
	}
	return tokens, nil
}

var supportedTags = map[string]bool{
	"a": true, "b": true, "strong": true, "i": true, "em": true, "s": true, "strike": true, "del": true,
	"u": true, "ins": true, "tg-spoiler": true, "tg-emoji": true, "span": true, "pre": true, "code": true,
	"blockquote": true,
}

// decodeCharRef decodes the character reference at s[pos] ('&') as
// Telegram does and returns the code point and the offset past the
// reference, or 0 when there is none: only &lt; &gt; &amp; &quot; and
// numeric references count, the semicolon is optional, and anything else
// is literal text.
func decodeCharRef(s string, pos int) (uint32, int) {
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	end := pos + 1
	var code uint64
	if at(pos+1) == '#' {
		end++
		if at(pos+2) == 'x' {
			end++
			for isHexDigit(at(end)) {
				code = min(code*16+uint64(hexValue(at(end))), 1<<32)
				end++
			}
		} else {
			for isDigit(at(end)) {
				code = min(code*10+uint64(at(end)-'0'), 1<<32)
				end++
			}
		}
		if code == 0 || code >= 0x10ffff || end-pos >= 10 {
			return 0, pos
		}
	} else {
		for isAlpha(at(end)) {
			end++
		}
		switch s[pos+1 : end] {
		case "lt":
			code = '<'
		case "gt":
			code = '>'
		case "amp":
			code = '&'
		case "quot":
			code = '"'
		default:
			return 0, pos
		}
	}
	if at(end) == ';' {
		end++
	}
	return uint32(code), end
}

// validCustomEmojiID: the id must print back as written and not be zero.
func validCustomEmojiID(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n != 0 && strconv.FormatInt(n, 10) == s
}

// Telegram's character classes; NUL counts as a space.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == 0 || c == '\v'
}

func isAlpha(c byte) bool {
	c |= 0x20
	return 'a' <= c && c <= 'z'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool { return isAlpha(c) || isDigit(c) }

func isHexDigit(c byte) bool {
	if isDigit(c) {
		return true
	}
	c |= 0x20
	return 'a' <= c && c <= 'f'
}

func hexValue(c byte) byte {
	if isDigit(c) {
		return c - '0'
	}
	return (c | 0x20) - 'a' + 10
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}
