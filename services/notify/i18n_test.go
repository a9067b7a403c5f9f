package notify_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
	"github.com/vigil-ops/vigil/services/notify/channel/line"
)

// A Traditional Chinese message in Taipei's time arrives intact at every
// kind of channel: UTF-8 in Telegram, Slack and the webhook, within
// LINE's UTF-16 limits, and by email in a UTF-8 MIME body under an
// encoded subject; the approval card's buttons speak the language too.
func TestZhTWArrivesIntactEverywhere(t *testing.T) {
	t.Parallel()
	taipei, err := time.LoadLocation("Asia/Taipei")
	require.NoError(t, err)
	smtp := fakesmtp.Start(t, fakesmtp.Options{})
	ln := fakeline.New(t, fakeline.Options{To: []string{lineTo}})
	sink := fakewebhook.New(t, webhookSecret)
	e := newEnv(t, chatID, channel)
	e.opts.Language, e.opts.TimeZone = "zh-TW", taipei
	e.opts.Channels = append(e.opts.Channels,
		line.Options{ChannelToken: ln.Token(), To: lineTo, APIURL: ln.URL()},
		email.Options{
			Host: smtp.Host, Port: smtp.Port, TLS: email.TLSStartTLS, CAFile: smtp.CAFile(t),
			Username: fakesmtp.User, Password: fakesmtp.Password,
			From: "Vigil <vigil@ops.example.com>", To: []string{"oncall@example.com"},
		})
	e.withWebhook(sink, 0)
	e.run(t)

	inc := opened()
	inc.Incident.Title = "磁碟已滿：<prod> 的 shop"
	e.publish(t, inc)
	const first = "🔴 事件發生：磁碟已滿：<prod> 的 shop"

	tg := e.tg.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.True(t, strings.HasPrefix(tg.PlainText, first), tg.PlainText)
	assert.Contains(t, tg.PlainText, "嚴重度：嚴重")
	sl := e.sl.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Contains(t, sl.Text, "*事件發生：磁碟已滿：&lt;prod&gt; 的 shop*")
	id := inc.GetIncident().GetId()
	assert.Equal(t, [][]faketelegram.Button{{
		{Text: "確認", CallbackData: approval.CallbackData(approval.Acknowledge, id)},
		{Text: "升級處理", CallbackData: approval.CallbackData(approval.Escalate, id)},
		{Text: "暫停提醒", CallbackData: approval.CallbackData(approval.Snooze, id)},
	}}, tg.ReplyMarkup, "the incident's buttons in the channel's language")
	lm := ln.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Equal(t, "flex", lm.Type, "a bubble, for its Acknowledge button")
	assert.Equal(t, first, lm.AltText)
	assert.True(t, utf8.Valid(lm.Contents))
	for _, label := range []string{"確認", "升級處理", "暫停提醒"} {
		assert.Contains(t, string(lm.Contents), `"label":"`+label+`"`)
	}
	mail := smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Equal(t, "[Vigil] "+first, mail.Subject, "the subject, encoded and decoded")
	assert.Contains(t, mail.Text, first)
	assert.Contains(t, mail.HTML, "<b>事件發生：磁碟已滿：&lt;prod&gt; 的 shop</b>")
	hook := sink.WaitFor(t, 1, 30*time.Second)[0].Body
	assert.True(t, strings.HasPrefix(hook.Text, first), hook.Text)
	assert.Equal(t, "磁碟已滿：<prod> 的 shop", hook.Title)

	req := approvalRequested(inc.GetIncident().GetId())
	e.publish(t, req)
	card := e.tg.WaitForMessages(t, 2, 30*time.Second)[1]
	assert.Contains(t, card.PlainText, "需要核准")
	assert.Contains(t, card.PlainText, "決定期限：2026-05-01 20:30:00 CST (UTC+08:00)")
	require.Len(t, card.ReplyMarkup, 2)
	assert.Equal(t, "✅ 核准", card.ReplyMarkup[0][0].Text)
	slCard := e.sl.WaitForMessages(t, 2, 30*time.Second)[1]
	require.Len(t, slCard.Buttons, 4)
	assert.Equal(t, "核准", slCard.Buttons[0].Text)
	flex := ln.WaitForMessages(t, 2, 30*time.Second)[1]
	assert.Equal(t, "flex", flex.Type)
	assert.Equal(t, "🛠 shop · 需要核准：將 shop/checkout 回滾到版本 3", flex.AltText)
}
