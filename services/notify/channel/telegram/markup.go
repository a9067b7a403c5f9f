package telegram

import (
	"fmt"

	tgapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// HTML is Telegram's HTML, the markup the channel draws messages in.
var HTML message.Markup = html{}

type html struct{}

func (html) Escape(s string) string       { return tgapi.EscapeHTML(s) }
func (html) Bold(s string) string         { return tag("b", s) }
func (html) Italic(s string) string       { return tag("i", s) }
func (html) Code(s string) string         { return tag("code", s) }
func (html) Link(url, text string) string { return fmt.Sprintf(`<a href="%s">%s</a>`, url, text) }

// tag wraps s in an element; Telegram refuses an empty one.
func tag(name, s string) string {
	if s == "" {
		return ""
	}
	return "<" + name + ">" + s + "</" + name + ">"
}
