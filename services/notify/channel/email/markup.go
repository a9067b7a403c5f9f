package email

import (
	"fmt"
	"html"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// HTML is the markup of an email's text/html part.
var HTML message.Markup = htmlMarkup{}

// Plain is the markup of an email's text/plain part: text as it is.
var Plain message.Markup = plain{message.Plain}

type htmlMarkup struct{}

func (htmlMarkup) Escape(s string) string { return html.EscapeString(s) }
func (htmlMarkup) Bold(s string) string   { return tag("b", s) }
func (htmlMarkup) Italic(s string) string { return tag("i", s) }
func (htmlMarkup) Code(s string) string   { return tag("code", s) }
func (htmlMarkup) Link(url, text string) string {
	return fmt.Sprintf(`<a href="%s">%s</a>`, url, text)
}

func tag(name, s string) string {
	if s == "" {
		return ""
	}
	return "<" + name + ">" + s + "</" + name + ">"
}

// plain is message.Plain but for links, written as plain-text mail writes
// them.
type plain struct{ message.Markup }

// Link: a plain-text reader sees where it goes.
func (plain) Link(url, text string) string { return text + " <" + url + ">" }

// draw is m in plain text and in HTML. An approval card waiting for a
// decision says how to give it: email has no buttons.
func draw(m message.Message) (text, body string) {
	text, body = m.Text(Plain), m.Text(HTML)
	if c, ok := m.Card(Plain); ok && c.Outcome == "" {
		text += "\n\n" + answer(Plain, c)
		body += "\n\n" + answer(HTML, c)
	}
	return text, page(body)
}

func answer(m message.Markup, c message.Card) string {
	id := m.Escape(c.RepairID)
	return m.Escape(c.Words.ApproveWith) + " " + m.Code("vigil repairs approve "+id) + "\n" +
		m.Escape(c.Words.RejectWith) + " " + m.Code("vigil repairs reject "+id)
}

// page wraps a message's HTML in a document; its lines stay lines.
func page(body string) string {
	return `<!DOCTYPE html>
<html><head><meta charset="utf-8"></head>
<body><div style="font-family: sans-serif; font-size: 14px; line-height: 1.4">
` + strings.ReplaceAll(body, "\n", "<br>\n") + `
</div></body></html>
`
}

// maxSubject keeps a subject on one screen line of a mail client.
const maxSubject = 120

// subjectOf is a message's subject: its first line, Vigil's tag before it.
func subjectOf(text string) string {
	line, _, _ := strings.Cut(text, "\n")
	// A CR or another control character from an alert's title would
	// otherwise end the header, or hide in it.
	line = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(line, "\uFFFD"))
	line = strings.TrimSpace(line)
	if utf8.RuneCountInString(line) > maxSubject {
		line = strings.TrimSpace(string([]rune(line)[:maxSubject-1])) + "…"
	}
	return "[Vigil] " + line
}
