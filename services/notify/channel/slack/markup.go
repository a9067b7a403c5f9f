package slack

import (
	"strings"

	slackapi "github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// Mrkdwn is Slack's mrkdwn, the markup the channel draws messages in.
var Mrkdwn message.Markup = mrkdwn{}

type mrkdwn struct{}

func (mrkdwn) Escape(s string) string { return slackapi.Escape(s) }
func (mrkdwn) Bold(s string) string   { return around("*", s) }
func (mrkdwn) Italic(s string) string { return around("_", s) }
func (mrkdwn) Code(s string) string   { return around("`", s) }

// Link: a '|' in the URL would end it early.
func (mrkdwn) Link(url, text string) string {
	return "<" + strings.ReplaceAll(url, "|", "%7C") + "|" + text + ">"
}

// around formats s with mark on both sides; "**" would show as such.
func around(mark, s string) string {
	if s == "" {
		return ""
	}
	return mark + s + mark
}
