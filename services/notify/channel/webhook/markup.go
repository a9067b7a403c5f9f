package webhook

import "github.com/vigil-ops/vigil/services/notify/internal/message"

// Plain is plain text, the markup the webhook's text is drawn in: the
// receiver formats it as it sees fit.
var Plain message.Markup = plain{}

type plain struct{}

func (plain) Escape(s string) string { return s }
func (plain) Bold(s string) string   { return s }
func (plain) Italic(s string) string { return s }
func (plain) Code(s string) string   { return s }

func (plain) Link(url, text string) string { return text + " (" + url + ")" }
