package notify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

// snoozed is req published again as the repair service does for "Later":
// snoozed, or (reminder) asked again after the snooze.
func snoozed(req *eventsv1.RepairApprovalRequested, reminder bool) *eventsv1.RepairApprovalRequested {
	e := proto.CloneOf(req)
	e.Meta = bus.NewMeta("repair", nil)
	e.SnoozedUntil, e.SnoozedBy, e.Reminder = timestamppb.New(time.Date(2026, 5, 1, 12, 20, 0, 0, time.UTC)), "user:olga", reminder
	return e
}

// Later in Telegram: the card is edited to say who snoozed it until when,
// keeping its buttons; the reminder is a new card in the incident's
// thread; the decision edits the first card.
func TestApprovalSnoozedAndReminded(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	inc := opened()
	incMsg := e.openIncident(t, inc)
	req := approvalRequested(inc.GetIncident().GetId())
	e.publish(t, req)
	card := e.tg.WaitForMessages(t, 2, 30*time.Second)[1]

	e.publish(t, snoozed(req, false))
	got := e.waitTelegram(t, card.MessageID, func(m faketelegram.Message) bool { return len(m.Edits) > 0 })
	assert.Contains(t, got.PlainText, "⏰ Snoozed until 2026-05-01 12:20:00 UTC by user:olga")
	assert.Contains(t, got.PlainText, "Approval needed: Roll back shop/checkout to revision 3")
	assert.Equal(t, card.ReplyMarkup, got.ReplyMarkup, "it still takes answers")

	e.publish(t, snoozed(req, true))
	msgs := e.tg.WaitForMessages(t, 3, 30*time.Second)
	reminder := msgs[2]
	assert.Equal(t, incMsg.MessageID, reminder.ReplyToMessageID, "in the incident's thread")
	assert.Contains(t, reminder.PlainText, "⏰ shop · Reminder: approval needed: Roll back shop/checkout to revision 3")
	assert.Contains(t, reminder.PlainText, "Repair: "+req.GetRepairId())
	assert.Contains(t, reminder.ReplyMarkup[0], faketelegram.Button{Text: "✅ Approve", CallbackData: approval.CallbackData(approval.Approve, req.GetRepairId())})

	e.publish(t, decidedEvent(req, "approved", "user:alice", "telegram"))
	got = e.waitTelegram(t, card.MessageID, func(m faketelegram.Message) bool { return len(m.Edits) > 1 })
	assert.Nil(t, got.ReplyMarkup)
	assert.Contains(t, got.PlainText, "✅ Approved by user:alice")
	assert.NotContains(t, got.PlainText, "Snoozed", "a decided card is no longer snoozed")
	require.Len(t, e.tg.Messages(), 3, "the snooze and the decision edit, only the reminder is new")
}

// Later in LINE, which edits nothing: the snooze is a short message of
// its own, the reminder a new card with its buttons.
func TestLineApprovalSnoozedAndReminded(t *testing.T) {
	t.Parallel()
	e, ln := startLine(t)
	inc := opened()
	e.publish(t, inc)
	ln.WaitForMessages(t, 1, 30*time.Second)
	req := approvalRequested(inc.GetIncident().GetId())
	e.publish(t, req)
	ln.WaitForMessages(t, 2, 30*time.Second)

	e.publish(t, snoozed(req, false))
	note := ln.WaitForMessages(t, 3, 30*time.Second)[2]
	assert.Equal(t, "text", note.Type)
	assert.Contains(t, note.Text, "⏰ Snoozed until 2026-05-01 12:20:00 UTC by user:olga")
	assert.Contains(t, note.Text, "Repair "+req.GetRepairId())

	e.publish(t, snoozed(req, true))
	reminder := ln.WaitForMessages(t, 4, 30*time.Second)[3]
	assert.Equal(t, "flex", reminder.Type)
	assert.Equal(t, "⏰ shop · Reminder: approval needed: Roll back shop/checkout to revision 3", reminder.AltText)
	assert.Contains(t, string(reminder.Contents), `"data":"`+approval.CallbackData(approval.Approve, req.GetRepairId())+`"`)
}
