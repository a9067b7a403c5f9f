package faketelegram

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// entity is a formatting entity found by parseHTML. Offsets and lengths
// are in UTF-16 code units, as Telegram reports them.
type entity struct {
	tag    string
	arg    string // href, language, custom emoji id; "" when the tag has none
	offset int
	length int
}

// parseHTML is a port of tdlib's parse_html (td/telegram/MessageEntity.cpp),
// which is what the Bot API server runs for parse_mode=HTML. It returns the
// text with tags removed and character references decoded, and the non-empty
// entities. Errors carry tdlib's wording, which the Bot API passes on after
// "can't parse entities: ".
//
// The C original reads a NUL-terminated string, so a NUL byte ends a tag
// just as the end of input does; at reproduces that.
func parseHTML(s string) (string, []entity, error) {
	at := func(i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}

	type open struct {
		tag    string
		arg    string
		offset int
	}
	var (
		out       = make([]byte, 0, len(s))
		entities  []entity
		stack     []open
		utf16     int
		surrogate bool
	)

	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '&' {
			if code, next := decodeCharRef(s, i); code != 0 {
				if code >= 0xd800 && code <= 0xdfff {
					surrogate = true
				}
				utf16++
				if code > 0xffff {
					utf16++
				}
				out = utf8.AppendRune(out, rune(code))
				i = next - 1
				continue
			}
		}
		if c != '<' {
			if c&0xc0 != 0x80 {
				utf16++
				if c >= 0xf0 {
					utf16++
				}
			}
			out = append(out, c)
			continue
		}

		begin := i
		i++
		if at(i) != '/' {
			for !isSpace(at(i)) && at(i) != '>' {
				i++
			}
			if at(i) == 0 {
				return "", nil, failf("Unclosed start tag at byte offset %d", begin)
			}
			tag := toLower(s[begin+1 : i])
			if !supportedTags[tag] {
				return "", nil, failf(`Unsupported start tag "%s" at byte offset %d`, tag, begin)
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
					return "", nil, failf(`Empty attribute name in the tag "%s" at byte offset %d`, tag, begin)
				}
				for at(i) != 0 && isSpace(at(i)) {
					i++
				}
				if at(i) != '=' {
					if at(i) == 0 {
						return "", nil, failf(`Unclosed start tag "%s" at byte offset %d`, tag, begin)
					}
					if tag == "blockquote" && name == "expandable" {
						arg = "1"
					}
					continue
				}
				i++
				for at(i) != 0 && isSpace(at(i)) {
					i++
				}
				if at(i) == 0 {
					return "", nil, failf(`Unclosed start tag "%s" at byte offset %d`, tag, begin)
				}

				var value string
				if q := at(i); q != '\'' && q != '"' {
					// A name token: letters, digits, periods and hyphens, case-insensitive.
					tokenBegin := i
					for isAlnum(at(i)) || at(i) == '.' || at(i) == '-' {
						i++
					}
					value = toLower(s[tokenBegin:i])
					if !isSpace(at(i)) && at(i) != '>' {
						return "", nil, failf("Unexpected end of name token at byte offset %d", tokenBegin)
					}
				} else {
					i++
					var v []byte
					for at(i) != q && at(i) != 0 {
						if at(i) == '&' {
							if code, next := decodeCharRef(s, i); code != 0 {
								v = utf8.AppendRune(v, rune(code))
								i = next
								continue
							}
						}
						v = append(v, s[i])
						i++
					}
					if at(i) == q {
						i++
					}
					value = string(v)
				}
				if at(i) == 0 {
					return "", nil, failf("Unclosed start tag at byte offset %d", begin)
				}

				switch {
				case tag == "a" && name == "href":
					arg = value
				case tag == "code" && name == "class" && len(value) >= 9 && value[:9] == "language-":
					arg = value[9:]
				case tag == "span" && name == "class" && len(value) >= 3 && value[:3] == "tg-":
					arg = value[3:]
				case tag == "tg-emoji" && name == "emoji-id":
					arg = value
				case tag == "blockquote" && name == "expandable":
					arg = "1"
				}
			}

			if tag == "span" && arg != "spoiler" {
				return "", nil, failf(`Tag "span" must have class "tg-spoiler" at byte offset %d`, begin)
			}
			stack = append(stack, open{tag: tag, arg: arg, offset: utf16})
			continue
		}

		// An end tag.
		if len(stack) == 0 {
			return "", nil, failf("Unexpected end tag at byte offset %d", begin)
		}
		for !isSpace(at(i)) && at(i) != '>' {
			i++
		}
		endTag := toLower(s[begin+2 : i])
		for isSpace(at(i)) && at(i) != 0 {
			i++
		}
		if at(i) != '>' {
			return "", nil, failf("Unclosed end tag at byte offset %d", begin)
		}
		top := stack[len(stack)-1]
		if endTag != "" && endTag != top.tag {
			return "", nil, failf(`Unmatched end tag at byte offset %d, expected "</%s>", found "</%s>"`, begin, top.tag, endTag)
		}
		if utf16 > top.offset {
			if top.tag == "tg-emoji" && !validCustomEmojiID(top.arg) {
				return "", nil, wireError("Invalid custom emoji identifier specified")
			}
			entities = append(entities, entity{tag: top.tag, arg: top.arg, offset: top.offset, length: utf16 - top.offset})
		}
		stack = stack[:len(stack)-1]
	}
	if len(stack) > 0 {
		return "", nil, failf(`Can't find end tag corresponding to start tag "%s"`, stack[len(stack)-1].tag)
	}
	if surrogate {
		return "", nil, wireError("Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units")
	}
	return string(out), entities, nil
}

var supportedTags = map[string]bool{
	"a": true, "b": true, "strong": true, "i": true, "em": true, "s": true, "strike": true, "del": true,
	"u": true, "ins": true, "tg-spoiler": true, "tg-emoji": true, "span": true, "pre": true, "code": true,
	"blockquote": true,
}

// decodeCharRef is tdlib's decode_html_entity: it decodes the character
// reference at s[pos] ('&') and returns the code point and the offset just
// past the reference, or 0 when there is none. Only &lt; &gt; &amp; &quot;
// and numeric references are known; anything else stays literal text. The
// semicolon is optional and hexadecimal references need a lowercase x.
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
				code = code*16 + uint64(hexValue(at(end)))
				end++
				code = min(code, 1<<32) // longer runs are refused below anyway
			}
		} else {
			for isDigit(at(end)) {
				code = code*10 + uint64(at(end)-'0')
				end++
				code = min(code, 1<<32)
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

func failf(format string, args ...any) error { return wireError(fmt.Sprintf(format, args...)) }

// validCustomEmojiID follows tdlib's to_integer_safe<int64>: the id must be
// written exactly as the integer prints, and not be zero.
func validCustomEmojiID(s string) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n != 0 && strconv.FormatInt(n, 10) == s
}

// The character classes of tdlib's td/utils/misc.h; note that NUL is a space.
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

// toLower lowercases ASCII letters only, as tdlib does.
func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c - 'A' + 'a'
		}
	}
	return string(b)
}
