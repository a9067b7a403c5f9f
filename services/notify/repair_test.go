package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

// hostile is what an alert or a model might write.
const hostile = `revision 4 exits 1 </b><script>alert("x")</script> & <!channel>`

func rollback() *typesv1.RepairProposal {
	return &typesv1.RepairProposal{
		Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment", Name: "checkout"},
		Params: &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: 3}},
	}
}

func approvalRequested(incidentID string) *eventsv1.RepairApprovalRequested {
	return &eventsv1.RepairApprovalRequested{
		Meta: bus.NewMeta("repair", nil), RepairId: bus.NewID(), IncidentId: incidentID, Proposal: rollback(),
		Reasons:   []string{"risk MEDIUM is above max_auto_risk LOW", "auto-repair is off for app shop"},
		ExpiresAt: timestamppb.New(time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)),
		App:       "shop", Summary: hostile, Confidence: 0.8, Risk: typesv1.Risk_RISK_MEDIUM, PodsAffected: 3,
		ExpectedDowntime: durationpb.New(30 * time.Second), Engine: "llm:openai", Model: "gpt-4o-mini",
		InputTokens: 1200, OutputTokens: 300, CostUsd: 0.0042,
	}
}

func decidedEvent(req *eventsv1.RepairApprovalRequested, outcome, by, via string) *eventsv1.RepairDecided {
	return &eventsv1.RepairDecided{
		Meta: bus.NewMeta("repair", nil), RepairId: req.GetRepairId(), IncidentId: req.GetIncidentId(),
		Outcome: outcome, DecidedBy: by, Channel: via,
		DecidedAt: timestamppb.New(time.Date(2026, 5, 1, 12, 5, 3, 0, time.UTC)),
	}
}

// redeliver publishes a copy of evt under another message id, as
// JetStream would redeliver it.
func (e *env) redeliver(t *testing.T, evt bus.Event) {
	t.Helper()
	m, err := bus.Encode(context.Background(), evt)
	require.NoError(t, err)
	m.ID = "copy-" + bus.NewID()
	require.NoError(t, bus.NewPublisher(e.js, nil).PublishMessages(context.Background(), m))
}

// waitTelegram waits until message id of the chat passes ok.
func (e *env) waitTelegram(t *testing.T, id int64, ok func(faketelegram.Message) bool) faketelegram.Message {
	t.Helper()
	var m faketelegram.Message
	require.Eventually(t, func() bool {
		var found bool
		m, found = e.tg.Message(chatID, id)
		return found && ok(m)
	}, 30*time.Second, 20*time.Millisecond)
	return m
}

// The card is a reply in the incident's thread, with the four buttons
// carrying the repair's id, everything outside escaped; redelivered, it is
// not sent again. The decision edits it: outcome, who, where and when,
// and no buttons; redelivered, the decision edits nothing more. The
// repair's progress follows in the thread.
func TestApprovalCardTelegram(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	inc := opened()
	incMsg := e.openIncident(t, inc)

	req := approvalRequested(inc.GetIncident().GetId())
	e.publish(t, req)
	card := e.tg.WaitForMessages(t, 2, 30*time.Second)[1]
	id := req.GetRepairId()

	assert.Equal(t, incMsg.MessageID, card.ReplyToMessageID, "a reply in the incident's thread")
	assert.Equal(t, [][]faketelegram.Button{
		{{Text: "✅ Approve", CallbackData: approval.CallbackData(approval.Approve, id)}, {Text: "❌ Reject", CallbackData: approval.CallbackData(approval.Reject, id)}},
		{{Text: "⏰ Later", CallbackData: approval.CallbackData(approval.Later, id)}, {Text: "🔕 Silence", CallbackData: approval.CallbackData(approval.Silence, id)}},
	}, card.ReplyMarkup)
	assert.Contains(t, card.Text, "&lt;/b&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;!channel&gt;")
	assert.NotContains(t, card.Text, "<script>")
	for _, want := range []string{
		"Approval needed: Roll back shop/checkout to revision 3",
		"Incident: " + inc.GetIncident().GetId(),
		"Target: Deployment shop/checkout",
		"Cause: " + hostile,
		"Proposed action: Roll back shop/checkout to revision 3",
		"Confidence: 80% · Risk: medium · Pods affected: 3 · Expected downtime: 30 seconds",
		"Engine: llm:openai · model gpt-4o-mini · tokens 1200 in / 300 out · cost $0.0042",
		"• risk MEDIUM is above max_auto_risk LOW",
		"Decide by: 2026-05-01 12:30:00 UTC",
		"Repair: " + id,
	} {
		assert.Contains(t, card.PlainText, want)
	}
	require.Eventually(t, func() bool { return len(e.attempts(t, req.GetMeta().GetId())) == 1 }, 10*time.Second, 20*time.Millisecond)

	e.redeliver(t, req)
	dec := decidedEvent(req, "approved", "user:alice", "telegram")
	e.publish(t, dec)
	got := e.waitTelegram(t, card.MessageID, func(m faketelegram.Message) bool { return len(m.Edits) > 0 })
	assert.Nil(t, got.ReplyMarkup, "buttons removed")
	assert.Contains(t, got.PlainText, "✅ shop · Approved: Roll back shop/checkout to revision 3")
	assert.Contains(t, got.PlainText, "✅ Approved by user:alice in Telegram at 2026-05-01 12:05:03 UTC")
	assert.Contains(t, got.PlainText, "Cause: "+hostile, "the same fields")
	assert.Equal(t, "editMessageText", got.Edits[0].Method)

	e.redeliver(t, dec)
	ran := &eventsv1.RepairRequested{
		Meta: bus.NewMeta("repair", nil), RepairId: id, IncidentId: req.GetIncidentId(), Proposal: rollback(),
		ApprovedBy: "user:alice", Channel: "telegram",
	}
	e.publish(t, ran)
	ok := &eventsv1.RepairSucceeded{
		Meta: bus.NewMeta("repair", nil), RepairId: id, IncidentId: req.GetIncidentId(), Proposal: rollback(),
		Verification: "3/3 replicas updated & available, no restarts",
	}
	e.publish(t, ok)
	msgs := e.tg.WaitForMessages(t, 4, 30*time.Second)
	assert.Contains(t, msgs[2].PlainText, "Repairing: Roll back shop/checkout to revision 3\nApproved by user:alice in Telegram.")
	assert.Contains(t, msgs[3].PlainText, "Repaired: Roll back shop/checkout to revision 3\nVerified: 3/3 replicas updated & available, no restarts")
	for _, m := range msgs[2:] {
		assert.Equal(t, incMsg.MessageID, m.ReplyToMessageID, "in the incident's thread")
	}

	// The redelivered request and decision sent and edited nothing more.
	require.Never(t, func() bool {
		m, _ := e.tg.Message(chatID, card.MessageID)
		return len(e.tg.Messages()) > 4 || len(m.Edits) > 1
	}, 2*time.Second, 100*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, req.GetMeta().GetId()))
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, dec.GetMeta().GetId()))
}

// An automatic repair says it ran without asking and why; a failure and a
// block ask a person to look; all in the incident's thread.
func TestAutomaticRepairTelegram(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	inc := opened()
	incMsg := e.openIncident(t, inc)
	incID := inc.GetIncident().GetId()

	restart := &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, Target: rollback().GetTarget()}
	e.publish(t,
		&eventsv1.RepairRequested{Meta: bus.NewMeta("repair", nil), RepairId: bus.NewID(), IncidentId: incID, Proposal: restart, ApprovedBy: "guardrails"},
		&eventsv1.RepairFailed{
			Meta: bus.NewMeta("repair", nil), RepairId: bus.NewID(), IncidentId: incID, Proposal: restart,
			Reason: "pods restart <again> & again", Undone: true, CooldownUntil: timestamppb.New(time.Date(2026, 5, 1, 12, 40, 0, 0, time.UTC)),
		},
		&eventsv1.RepairBlocked{
			Meta: bus.NewMeta("repair", nil), RepairId: bus.NewID(), IncidentId: incID, Proposal: restart,
			Reasons: []string{"shop/checkout cools down until 12:40"}, Summary: hostile,
		},
	)
	msgs := e.tg.WaitForMessages(t, 4, 30*time.Second)
	assert.Contains(t, msgs[1].PlainText, "Repairing without asking: Restart shop/checkout\nNobody was asked: the guardrails allow this repair automatically")
	assert.Contains(t, msgs[2].PlainText, "Repair failed: Restart shop/checkout\nWhy: pods restart <again> & again\nThe change was undone.\nNo automatic repair of shop/checkout until 2026-05-01 12:40:00 UTC.\nA person must look.")
	assert.Contains(t, msgs[3].PlainText, "Repair blocked: Restart shop/checkout")
	assert.Contains(t, msgs[3].PlainText, "Cause: "+hostile)
	assert.NotContains(t, msgs[3].Text, "<script>")
	for _, m := range msgs[1:] {
		assert.Equal(t, incMsg.MessageID, m.ReplyToMessageID)
	}
}

// A card Telegram rate limits is sent after the wait it asked for; its
// decision, which overtook it, waits for it. The card then goes out
// decided already, or is edited: either way without buttons. An expiry
// says nobody answered.
func TestDecisionWaitsForRateLimitedCard(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	inc := opened()
	e.openIncident(t, inc)

	e.tg.RateLimitNext(1, 1)
	req := approvalRequested(inc.GetIncident().GetId())
	dec := decidedEvent(req, "expired", "", "")
	e.publish(t, req, dec)

	card := e.tg.WaitForMessages(t, 2, 30*time.Second)[1]
	require.Eventually(t, func() bool { return len(e.attempts(t, dec.GetMeta().GetId())) == 1 }, 30*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, dec.GetMeta().GetId()))
	assert.Equal(t, []string{"retry:429", "sent:200"}, e.attempts(t, req.GetMeta().GetId()))
	got, _ := e.tg.Message(chatID, card.MessageID)
	assert.Nil(t, got.ReplyMarkup)
	assert.Contains(t, got.PlainText, "⌛ shop · Expired: Roll back shop/checkout to revision 3")
	assert.Contains(t, got.PlainText, "⌛ Expired at 2026-05-01 12:05:03 UTC: nobody answered in time")
	require.Never(t, func() bool { return len(e.tg.Messages()) > 2 }, time.Second, 100*time.Millisecond)
}

// A decision whose card notify never sent goes out on its own, in the
// thread, saying who decided.
func TestDecisionWithoutCard(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	inc := opened()
	incMsg := e.openIncident(t, inc)

	req := approvalRequested(inc.GetIncident().GetId())
	dec := decidedEvent(req, "rejected", "user:<bob>", "slack")
	dec.Reason = "not during the sale"
	e.publish(t, dec)
	got := e.tg.WaitForMessages(t, 2, 60*time.Second)[1]
	assert.Equal(t, incMsg.MessageID, got.ReplyToMessageID)
	assert.Equal(t, "❌ Rejected by user:<bob> in Slack at 2026-05-01 12:05:03 UTC: not during the sale\nRepair: "+req.GetRepairId(), got.PlainText)
	assert.Nil(t, got.ReplyMarkup)
}
