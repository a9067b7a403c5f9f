package message

import (
	"fmt"
	"strings"
)

// Escaper escapes text for a chat's markup (Telegram HTML, Slack mrkdwn).
type Escaper func(string) string

// Markup is a chat's text format: how outside text is escaped, and how
// Vigil's own formatting is written around text already escaped.
type Markup struct {
	// Escape makes outside text safe to embed.
	Escape             Escaper
	bold, italic, code [2]string
	link               func(url, text string) string
}

// HTML is Telegram's HTML with esc (telegram.EscapeHTML).
func HTML(esc Escaper) Markup {
	return Markup{
		Escape: esc,
		bold:   [2]string{"<b>", "</b>"}, italic: [2]string{"<i>", "</i>"}, code: [2]string{"<code>", "</code>"},
		link: func(url, text string) string { return fmt.Sprintf(`<a href="%s">%s</a>`, url, text) },
	}
}

// Mrkdwn is Slack's mrkdwn with esc (slack.Escape).
func Mrkdwn(esc Escaper) Markup {
	return Markup{
		Escape: esc,
		bold:   [2]string{"*", "*"}, italic: [2]string{"_", "_"}, code: [2]string{"`", "`"},
		// A '|' would end the URL early.
		link: func(url, text string) string { return "<" + strings.ReplaceAll(url, "|", "%7C") + "|" + text + ">" },
	}
}

// Bold makes s, already escaped, bold.
func (m Markup) Bold(s string) string { return wrap(m.bold, s) }

// Italic makes s, already escaped, italic.
func (m Markup) Italic(s string) string { return wrap(m.italic, s) }

// Code sets s, already escaped, as code.
func (m Markup) Code(s string) string { return wrap(m.code, s) }

// Link links text to url, both already escaped.
func (m Markup) Link(url, text string) string { return m.link(url, text) }

func wrap(tags [2]string, s string) string {
	if s == "" {
		return ""
	}
	return tags[0] + s + tags[1]
}
