package message

// Markup is a channel's text format: how outside text is escaped, and how
// Vigil's own formatting is written around text already escaped. Each
// channel's package has its own (Telegram's HTML, Slack's mrkdwn); one
// without formatting returns text as it is.
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
