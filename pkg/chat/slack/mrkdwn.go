package slack

import (
	"strings"
	"unicode/utf8"
)

// MaxTextLength is the most characters a message's text may have.
const MaxTextLength = 40000

// ellipsis marks cut text.
const ellipsis = "…"

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes s safe to put in mrkdwn (a message's text, a mrkdwn text
// object): it escapes &, < and >, the characters Slack's parser gives a
// meaning to -- so that no outside text makes a link or mentions anyone
// (<!channel>, <@U123>) -- and replaces bytes that are not UTF-8 with
// U+FFFD. Formatting characters (*, _, ~, `) are left: at worst they make
// text bold.
func Escape(s string) string {
	return escaper.Replace(strings.ToValidUTF8(s, "\uFFFD"))
}

// Truncate shortens s, mrkdwn, to at most n characters, ending it with
// "…" when it cuts. It never cuts inside an entity (&amp;) or a <...>
// link or mention, which would show as broken markup. Bytes that are not
// UTF-8 become U+FFFD.
func Truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	cut := prefixRunes(s, n-1)
	for open := true; open; {
		open = false
		for _, m := range [...]struct{ start, end string }{{"&", ";"}, {"<", ">"}} {
			if i := strings.LastIndex(cut, m.start); i >= 0 && !strings.Contains(cut[i:], m.end) {
				cut, open = cut[:i], true
			}
		}
	}
	return cut + ellipsis
}

// truncateRunes shortens s, plain text, to at most n characters, ending
// it with "…" when it cuts.
func truncateRunes(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	return prefixRunes(s, n-1) + ellipsis
}

// prefixRunes is the first n runes of s.
func prefixRunes(s string, n int) string {
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i]
}
