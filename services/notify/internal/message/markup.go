package message

import "strings"

// Markup is a channel's text format: how outside text is escaped, and how
// Vigil's own formatting is written around text already escaped. Each
// channel's package has its own (Telegram's HTML, Slack's mrkdwn); one
// without formatting returns text as it is. A Markup is a comparable
// value (Templates keep the templates bound to each).
type Markup interface {
	// Escape makes outside text safe to embed.
	Escape(s string) string
	// Bold, Italic and Code format s, already escaped; "" stays "".
	Bold(s string) string
	Italic(s string) string
	Code(s string) string
	// Link links text to url, both already escaped.
	Link(url, text string) string
}

// Plain is text without markup, for a channel that shows text as it is
// (LINE, a webhook's receiver, an email's text part): outside text needs
// no escaping, and Vigil's own formatting is left out.
var Plain Markup = plain{}

type plain struct{}

func (plain) Escape(s string) string { return s }
func (plain) Bold(s string) string   { return s }
func (plain) Italic(s string) string { return s }
func (plain) Code(s string) string   { return s }

// Link shows the URL after its text, where a reader (or a chat, which
// makes it tappable) sees it.
func (plain) Link(url, text string) string {
	if text == "" || strings.Contains(text, url) {
		return url
	}
	return text + " (" + url + ")"
}
