package slack

import (
	"strings"

	"github.com/vigil-ops/vigil/pkg/approval"
	slackapi "github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// draw is m as Slack shows it: mrkdwn, and an approval card in blocks.
// With blocks, the text is what notifications and screen readers show.
func draw(m message.Message) (string, []slackapi.Block) {
	c, ok := m.Card(Mrkdwn)
	if !ok {
		text := m.Text(Mrkdwn)
		bs := m.Buttons()
		if len(bs) == 0 {
			return text, nil
		}
		buttons := make([]slackapi.Button, 0, len(bs))
		for _, a := range bs {
			buttons = append(buttons, slackapi.Button{ActionID: approval.SlackActionID(a.Verb), Text: a.Label, Value: a.ID})
		}
		return text, []slackapi.Block{slackapi.Section(slackapi.Mrkdwn(text)), slackapi.Actions(buttons...)}
	}
	return Mrkdwn.Escape(c.Heading()), cardBlocks(c)
}

// cardBlocks lay a card out: a header, the facts, the figures side by
// side, why a person is asked, the engine in small print, then the
// buttons -- or, once decided, the outcome in their place.
func cardBlocks(c message.Card) []slackapi.Block {
	m := Mrkdwn
	var facts []string
	for _, f := range c.Facts {
		facts = append(facts, m.Bold(f.Label+":")+" "+f.Value)
	}
	blocks := []slackapi.Block{
		slackapi.Header(c.Heading()),
		slackapi.Section(slackapi.Mrkdwn(strings.Join(facts, "\n"))),
	}
	if len(c.Figures) > 0 {
		fields := make([]slackapi.Text, 0, len(c.Figures))
		for _, f := range c.Figures {
			fields = append(fields, slackapi.Mrkdwn(m.Bold(f.Label)+"\n"+f.Value))
		}
		blocks = append(blocks, slackapi.Fields(fields...))
	}
	if len(c.Why) > 0 {
		why := m.Bold(c.Words.Why) + "\n• " + strings.Join(c.Why, "\n• ")
		if c.Until != "" {
			why += "\n" + m.Bold(c.Words.Until) + " " + c.Until
		}
		blocks = append(blocks, slackapi.Section(slackapi.Mrkdwn(why)))
	}
	small := []slackapi.Text{slackapi.Mrkdwn(c.Words.Repair + " " + c.Repair)}
	if c.URL != "" {
		small = append(small, slackapi.Mrkdwn(m.Link(c.URL, c.Words.Link)))
	}
	if c.Engine != "" {
		small = append([]slackapi.Text{slackapi.Mrkdwn(c.Engine)}, small...)
	}
	blocks = append(blocks, slackapi.Context(small...))
	if c.Outcome != "" {
		return append(blocks, slackapi.Section(slackapi.Mrkdwn(c.Outcome)))
	}
	if c.Snoozed != "" {
		blocks = append(blocks, slackapi.Section(slackapi.Mrkdwn(c.Snoozed)))
	}
	id, w := c.RepairID, c.Words
	return append(blocks, slackapi.Actions(
		slackapi.Button{
			ActionID: approval.SlackActionID(approval.Approve), Text: w.Approve, Value: id, Style: "primary",
			Confirm: &slackapi.Confirm{Title: w.ConfirmTitle, Text: c.Action, Confirm: w.Approve, Deny: w.Cancel, Style: "primary"},
		},
		slackapi.Button{ActionID: approval.SlackActionID(approval.Reject), Text: w.Reject, Value: id, Style: "danger"},
		slackapi.Button{ActionID: approval.SlackActionID(approval.Later), Text: w.Later, Value: id},
		slackapi.Button{ActionID: approval.SlackActionID(approval.Silence), Text: w.Silence, Value: id},
	))
}
