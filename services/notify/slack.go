package notify

import (
	"context"
	"errors"
	"strings"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// slackChat writes to one Slack channel in mrkdwn, and draws approval
// cards in Block Kit; a thread is the replies to the incident's message.
type slackChat struct {
	client  *slack.Client
	channel string
}

func (*slackChat) name() string           { return "slack" }
func (s *slackChat) target() string       { return s.channel }
func (*slackChat) markup() message.Markup { return message.Mrkdwn(slack.Escape) }

// card lays the card out: a header, the facts, the figures side by side,
// why a person is asked, the engine in small print, then the buttons --
// or, once decided, the outcome in their place.
func (s *slackChat) card(c message.Card, repairID string) content {
	m := s.markup()
	var facts []string
	for _, f := range c.Facts {
		facts = append(facts, m.Bold(f.Label+":")+" "+f.Value)
	}
	blocks := []slack.Block{
		slack.Header(c.Icon + " " + c.Title),
		slack.Section(slack.Mrkdwn(strings.Join(facts, "\n"))),
	}
	if len(c.Figures) > 0 {
		fields := make([]slack.Text, 0, len(c.Figures))
		for _, f := range c.Figures {
			fields = append(fields, slack.Mrkdwn(m.Bold(f.Label)+"\n"+f.Value))
		}
		blocks = append(blocks, slack.Fields(fields...))
	}
	if len(c.Why) > 0 {
		why := m.Bold("Why a person is asked:") + "\n• " + strings.Join(c.Why, "\n• ")
		if c.Until != "" {
			why += "\n" + m.Bold("Decide by:") + " " + c.Until
		}
		blocks = append(blocks, slack.Section(slack.Mrkdwn(why)))
	}
	small := []slack.Text{slack.Mrkdwn("Repair " + c.Repair)}
	if c.Engine != "" {
		small = append([]slack.Text{slack.Mrkdwn(c.Engine)}, small...)
	}
	blocks = append(blocks, slack.Context(small...))
	if c.Outcome != "" {
		blocks = append(blocks, slack.Section(slack.Mrkdwn(c.Outcome)))
	} else {
		blocks = append(blocks, slack.Actions(
			slack.Button{
				ActionID: approval.SlackActionID(approval.Approve), Text: "Approve", Value: repairID, Style: "primary",
				Confirm: &slack.Confirm{Title: "Approve this repair?", Text: c.Action, Confirm: "Approve", Deny: "Cancel", Style: "primary"},
			},
			slack.Button{ActionID: approval.SlackActionID(approval.Reject), Text: "Reject", Value: repairID, Style: "danger"},
			slack.Button{ActionID: approval.SlackActionID(approval.Later), Text: "Later", Value: repairID},
			slack.Button{ActionID: approval.SlackActionID(approval.Silence), Text: "Silence", Value: repairID},
		))
	}
	// The text is what notifications and screen readers show.
	return content{text: m.Escape(c.Title), blocks: blocks}
}

func (s *slackChat) post(ctx context.Context, thread string, c content) (string, error) {
	m := slack.Message{Channel: s.channel, Text: c.text, Blocks: c.blocks, ThreadTS: thread, Broadcast: c.broadcast}
	ts, err := s.client.PostMessage(ctx, m)
	if thread != "" && slack.IsNotFound(err) {
		// The incident's message was deleted: the news goes out on its own.
		m.ThreadTS, m.Broadcast = "", false
		return s.client.PostMessage(ctx, m)
	}
	return ts, err
}

func (s *slackChat) edit(ctx context.Context, id string, c content) error {
	return s.client.Update(ctx, s.channel, id, c.text, c.blocks)
}

func (*slackChat) judge(err error) verdict {
	if err == nil {
		return verdict{}
	}
	v := verdict{retry: slack.IsRetryable(err), retryAfter: slack.RetryAfter(err), gone: slack.IsNotFound(err)}
	if apiErr, ok := errors.AsType[*slack.APIError](err); ok {
		v.status = apiErr.StatusCode
	}
	return v
}
