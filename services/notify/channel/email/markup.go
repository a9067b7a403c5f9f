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

// drawn is a message drawn once for all its recipients: its text in
// both parts, and its card (when it is one) or its buttons, which each
// recipient's links are made of.
type drawn struct {
	text, html string
	card       message.Card
	isCard     bool
	buttons    []message.Button
}

// drawMessage draws m once: a copy per recipient differs only in its
// links, so the templates run once a send, not once an address. Its
// buttons are labelled only for a channel that makes links of them.
func drawMessage(m message.Message, links bool) drawn {
	d := drawn{html: m.Text(HTML)}
	if d.text, d.card, d.isCard = m.TextAndCard(Plain); !d.isCard && links {
		d.buttons = m.Buttons()
	}
	return d
}

// with is d in plain text and in HTML, with the recipient's action links
// (none: ls is nil) under it. An approval card waiting for a decision
// also says how to give it from the CLI.
func (d drawn) with(ls []link) (text, body string) {
	text, body = d.text, d.html
	if len(ls) > 0 {
		text += "\n\n" + plainLinks(ls)
		body += "\n\n" + htmlLinks(ls)
	}
	if d.isCard && d.card.Outcome == "" {
		text += "\n\n" + answer(Plain, d.card)
		body += "\n\n" + answer(HTML, d.card)
	}
	return text, page(body)
}

// link is one action link of an email: its label and URL.
type link struct{ Label, URL string }

func plainLinks(ls []link) string {
	lines := make([]string, 0, len(ls))
	for _, l := range ls {
		lines = append(lines, l.Label+": "+l.URL)
	}
	return strings.Join(lines, "\n")
}

// button is how a link looks in the HTML part: a plain button drawn by
// CSS alone (no script, no image for a mail client to block or fetch).
const button = `display: inline-block; padding: 6px 14px; margin: 0 8px 4px 0; border: 1px solid #8c8c8c; ` +
	`border-radius: 4px; background: #f4f4f4; color: #1a1a1a; text-decoration: none; font-weight: bold`

// htmlLinks are on one line: page turns line breaks into <br>.
func htmlLinks(ls []link) string {
	out := make([]string, 0, len(ls))
	for _, l := range ls {
		out = append(out, fmt.Sprintf(`<a href="%s" style="%s">%s</a>`, html.EscapeString(l.URL), button, html.EscapeString(l.Label)))
	}
	return strings.Join(out, " ")
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
