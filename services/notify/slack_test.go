package notify_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
)

// blockTexts are the texts of a Slack message's blocks, in order,
// fields and context elements included; buttons apart.
func blockTexts(t *testing.T, m fakeslack.Message) []string {
	t.Helper()
	var blocks []struct {
		Type     string                  `json:"type"`
		Text     *struct{ Text string }  `json:"text"`
		Fields   []struct{ Text string } `json:"fields"`
		Elements []json.RawMessage       `json:"elements"`
	}
	require.NoError(t, json.Unmarshal(m.Blocks, &blocks))
	var out []string
	for _, b := range blocks {
		if b.Text != nil {
			out = append(out, b.Text.Text)
		}
		for _, f := range b.Fields {
			out = append(out, f.Text)
		}
		if b.Type == "context" {
			for _, e := range b.Elements {
				var el struct{ Text string }
				require.NoError(t, json.Unmarshal(e, &el))
				out = append(out, el.Text)
			}
		}
	}
	return out
}

func (e *env) waitSlack(t *testing.T, ts string, ok func(fakeslack.Message) bool) fakeslack.Message {
	t.Helper()
	var m fakeslack.Message
	require.Eventually(t, func() bool {
		var found bool
		m, found = e.sl.Message(channel, ts)
		return found && ok(m)
	}, 30*time.Second, 20*time.Millisecond)
	return m
}

// The incident's conversation in Slack and Telegram at once: its message
// at the top of the Slack channel, the analysis, the approval card (Block
// Kit, four buttons, escaped) and the progress as replies in its thread;
// the decision updates the card in both chats, buttons gone.
func TestApprovalCardSlackAndTelegram(t *testing.T) {
	t.Parallel()
	e := startChats(t, chatID, channel)
	inc := opened()
	e.publish(t, inc)
	parent := e.sl.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Empty(t, parent.ThreadTS, "a top-level message")
	assert.Contains(t, parent.Text, "*Incident opened: DiskFull in &lt;prod&gt;*")
	incID := inc.GetIncident().GetId()
	for _, v := range approval.IncidentVerbs() {
		b, ok := parent.Button(approval.SlackActionID(v))
		require.True(t, ok, "the incident's message has %s", v)
		assert.Equal(t, incID, b.Value)
	}
	tgParent := e.tg.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Equal(t, [][]faketelegram.Button{{
		{Text: "Acknowledge", CallbackData: approval.CallbackData(approval.Acknowledge, incID)},
		{Text: "Escalate", CallbackData: approval.CallbackData(approval.Escalate, incID)},
		{Text: "Snooze", CallbackData: approval.CallbackData(approval.Snooze, incID)},
	}}, tgParent.ReplyMarkup)

	e.publish(t, completed(inc.GetIncident().GetId()))
	analysis := e.sl.WaitForMessages(t, 2, 30*time.Second)[1]
	assert.Equal(t, parent.TS, analysis.ThreadTS)
	assert.Contains(t, analysis.Text, "🔎 *Analysis: checkout crash-loops &lt;script&gt;alert(1)&lt;/script&gt; &amp; restarts*")
	// The card comes on another stream: published once the analysis is
	// out on both chats, to know the order.
	e.tg.WaitForMessages(t, 2, 30*time.Second)

	req := approvalRequested(inc.GetIncident().GetId())
	id := req.GetRepairId()
	e.publish(t, req)
	card := e.sl.WaitForMessages(t, 3, 30*time.Second)[2]
	assert.Equal(t, parent.TS, card.ThreadTS, "a reply in the incident's thread")
	require.Len(t, card.Buttons, 4)
	for i, want := range []struct {
		verb        approval.Verb
		text, style string
	}{{approval.Approve, "Approve", "primary"}, {approval.Reject, "Reject", "danger"}, {approval.Later, "Later", ""}, {approval.Silence, "Silence", ""}} {
		b := card.Buttons[i]
		assert.Equal(t, approval.SlackActionID(want.verb), b.ActionID)
		assert.Equal(t, id, b.Value)
		assert.Equal(t, want.text, b.Text)
		assert.Equal(t, want.style, b.Style)
	}
	assert.Contains(t, string(card.Blocks), `"confirm":{`, "approving asks first")
	texts := strings.Join(blockTexts(t, card), "\n")
	for _, want := range []string{
		"🛠 shop · Approval needed: Roll back shop/checkout to revision 3",
		"*Incident:* `" + inc.GetIncident().GetId() + "`",
		"*Target:* Deployment shop/checkout",
		"*Cause:* revision 4 exits 1 &lt;/b&gt;&lt;script&gt;alert(\"x\")&lt;/script&gt; &amp; &lt;!channel&gt;",
		"*Proposed action:* *Roll back shop/checkout to revision 3*",
		"*Confidence*\n80%", "*Risk*\nmedium", "*Pods affected*\n3", "*Expected downtime*\n30 seconds",
		"• risk MEDIUM is above max_auto_risk LOW",
		"*Decide by:* 2026-05-01 12:30:00 UTC",
		"Engine: llm:openai · model gpt-4o-mini · tokens 1200 in / 300 out · cost $0.0042",
		"Repair `" + id + "`",
	} {
		assert.Contains(t, texts, want)
	}
	assert.NotContains(t, texts, "<script>")
	assert.NotContains(t, texts, "<!channel>")
	tgCard := e.tg.WaitForMessages(t, 3, 30*time.Second)[2]
	require.Len(t, tgCard.ReplyMarkup, 2)

	dec := decidedEvent(req, "rejected", "user:bob", "slack")
	dec.Reason = "not during the <sale>"
	e.publish(t, dec)
	got := e.waitSlack(t, card.TS, func(m fakeslack.Message) bool { return len(m.Edits) > 0 })
	assert.Empty(t, got.Buttons, "no actions block")
	assert.Equal(t, "chat.update", got.Edits[0].Via)
	texts = strings.Join(blockTexts(t, got), "\n")
	assert.Contains(t, texts, "❌ shop · Rejected: Roll back shop/checkout to revision 3")
	assert.Contains(t, texts, "❌ *Rejected by user:bob* in Slack at 2026-05-01 12:05:03 UTC: not during the &lt;sale&gt;")
	assert.Contains(t, texts, "*Target:* Deployment shop/checkout", "the same fields")
	tg := e.waitTelegram(t, tgCard.MessageID, func(m faketelegram.Message) bool { return len(m.Edits) > 0 })
	assert.Nil(t, tg.ReplyMarkup)
	assert.Contains(t, tg.PlainText, "❌ Rejected by user:bob in Slack at 2026-05-01 12:05:03 UTC: not during the <sale>")

	// Redelivered, nothing is posted or updated again; the progress and
	// the end of the incident are replies in the thread.
	e.redeliver(t, req)
	e.redeliver(t, dec)
	e.publish(t, &eventsv1.RepairRequested{
		Meta: bus.NewMeta("repair", nil), RepairId: bus.NewID(), IncidentId: inc.GetIncident().GetId(), Proposal: rollback(), ApprovedBy: "guardrails",
	})
	resolved := &eventsv1.IncidentResolved{Meta: bus.NewMeta("monitor", nil), Incident: inc.GetIncident()}
	e.publish(t, resolved)
	// Two streams, two consumers: either may come first.
	msgs := e.sl.WaitForMessages(t, 5, 30*time.Second)[3:]
	texts = strings.Join([]string{msgs[0].Text, msgs[1].Text}, "\n")
	assert.Contains(t, texts, "Repairing without asking")
	assert.Contains(t, texts, "*Incident resolved: DiskFull in &lt;prod&gt;*")
	for _, m := range msgs {
		assert.Equal(t, parent.TS, m.ThreadTS)
	}
	require.Never(t, func() bool {
		m, _ := e.sl.Message(channel, card.TS)
		return len(e.sl.Messages()) > 5 || len(m.Edits) > 1
	}, 2*time.Second, 100*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attemptsOn(t, req.GetMeta().GetId(), "slack"))
	assert.Equal(t, []string{"sent:200"}, e.attemptsOn(t, dec.GetMeta().GetId(), "slack"))
	for _, r := range e.sl.Requests() {
		assert.Empty(t, r.Error, r.Method)
	}
}

// A 429 from Slack is waited out and the message sent once.
func TestSlackRateLimitIsRetried(t *testing.T) {
	t.Parallel()
	e := startChats(t, "", channel)
	e.sl.RateLimitNext(1, 1)
	inc := opened()
	e.publish(t, inc)
	e.sl.WaitForMessages(t, 1, 30*time.Second)
	// The fake logs a request once it has answered it: after the message
	// is there.
	require.Eventually(t, func() bool { return len(e.sl.Requests()) >= 2 }, 10*time.Second, 20*time.Millisecond)
	reqs := e.sl.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, http.StatusTooManyRequests, reqs[0].StatusCode)
	assert.Equal(t, "ratelimited", reqs[0].Error)
	require.Eventually(t, func() bool { return len(e.attemptsOn(t, inc.GetMeta().GetId(), "slack")) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attemptsOn(t, inc.GetMeta().GetId(), "slack"))
	assert.Empty(t, e.tg.Messages(), "Telegram is off")
}

// One chat failing for good does not keep the news from the other.
func TestOneChatFailingForGood(t *testing.T) {
	t.Parallel()
	e := startChats(t, chatID, "C0NOWHERE")
	inc := opened()
	e.publish(t, inc)
	e.tg.WaitForMessages(t, 1, 30*time.Second)
	require.Eventually(t, func() bool { return len(e.attemptsOn(t, inc.GetMeta().GetId(), "slack")) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"failed:200"}, e.attemptsOn(t, inc.GetMeta().GetId(), "slack"))
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, inc.GetMeta().GetId()))
	assert.Empty(t, e.sl.Messages())
}

func TestSlackOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts slack.Options
		want string
	}{
		{opts: slack.Options{BotToken: "xoxb-1", Channel: "C0ALERTS1"}},
		{opts: slack.Options{BotToken: "xoxb-1"}, want: "VIGIL_SLACK_CHANNEL: missing"},
		{opts: slack.Options{Channel: "C0ALERTS1"}, want: "VIGIL_SLACK_BOT_TOKEN: missing"},
		{opts: slack.Options{BotToken: "xoxp-secret", Channel: "C0ALERTS1"}, want: "VIGIL_SLACK_BOT_TOKEN: want the Slack app's bot token"},
		{opts: slack.Options{BotToken: "xoxb-1", Channel: "#alerts"}, want: `VIGIL_SLACK_CHANNEL: "#alerts" is not a channel id`},
	} {
		var opts notify.Options
		opts.Channels = append(opts.Channels, tt.opts)
		err := opts.Validate()
		if tt.want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, tt.want)
		require.NotContains(t, err.Error(), "secret")
	}
}
