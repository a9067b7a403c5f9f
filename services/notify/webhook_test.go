package notify_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	hook "github.com/vigil-ops/vigil/pkg/chat/webhook"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
	notifychannel "github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/webhook"
)

const webhookSecret = "webhook-secret-for-tests"

// withWebhook adds a webhook to sink, first of e's channels, each request
// given up after timeout.
func (e *env) withWebhook(sink *fakewebhook.Sink, timeout time.Duration) {
	e.opts.Channels = append([]notifychannel.Config{webhook.Options{URL: sink.URL, Secret: webhookSecret, Timeout: timeout}}, e.opts.Channels...)
}

// The incident's conversation as a webhook receiver sees it: signed
// messages of each kind, the replies naming the incident's message, the
// decision naming the card it redraws. A rate limit is waited out and the
// retry carries the same id; redelivered events send nothing twice.
func TestWebhookConversation(t *testing.T) {
	t.Parallel()
	sink := fakewebhook.New(t, webhookSecret)
	sink.RateLimit("1")
	e := newEnv(t, "", "")
	e.withWebhook(sink, 0)
	e.run(t)

	inc := opened()
	e.publish(t, inc)
	first := sink.WaitFor(t, 1, 30*time.Second)[0].Body
	assert.Equal(t, "incident.opened", first.Kind)
	assert.Equal(t, []string{first.ID, first.ID}, sink.Deliveries(), "the retry carried the same id")
	assert.Equal(t, "critical", first.Severity)
	assert.Equal(t, "DiskFull in <prod>", first.Title)
	require.Eventually(t, func() bool {
		return slices.Equal(e.attemptsOn(t, inc.GetMeta().GetId(), webhook.Name), []string{"retry:429", "sent:200"})
	}, 10*time.Second, 20*time.Millisecond)

	incID := inc.GetIncident().GetId()
	e.publish(t, completed(incID))
	// The analysis and the card come on different streams: the card is
	// published once the analysis is out, to know the order.
	sink.WaitFor(t, 2, 30*time.Second)
	req := approvalRequested(incID)
	e.publish(t, req)
	sink.WaitFor(t, 3, 30*time.Second)
	dec := decidedEvent(req, "approved", "user:alice", "telegram")
	e.publish(t, dec)
	got := sink.WaitFor(t, 4, 30*time.Second)

	analysis, card, decided := got[1].Body, got[2].Body, got[3].Body
	assert.Equal(t, "analysis.completed", analysis.Kind)
	assert.Equal(t, first.ID, analysis.Parent)
	assert.Equal(t, incID, analysis.IncidentID)
	assert.Contains(t, analysis.Text, "<script>alert(1)</script>", "plain text, as it came")

	assert.Equal(t, "repair.approval", card.Kind)
	assert.Equal(t, first.ID, card.Parent)
	assert.Equal(t, req.GetRepairId(), card.RepairID)
	require.NotNil(t, card.Card)
	assert.Contains(t, card.Card.Title, "Approval needed: Roll back shop/checkout to revision 3")
	assert.Contains(t, card.Card.Figures, hook.Field{Label: "Confidence", Value: "80%"})
	assert.Empty(t, card.Card.Outcome)

	assert.Equal(t, "repair.decided", decided.Kind)
	assert.Equal(t, card.ID, decided.Edits)
	require.NotNil(t, decided.Card)
	assert.Contains(t, decided.Card.Outcome, "Approved by user:alice")

	e.redeliver(t, inc)
	e.redeliver(t, req)
	e.redeliver(t, dec)
	ran := &eventsv1.RepairRequested{
		Meta: bus.NewMeta("repair", nil), RepairId: req.GetRepairId(), IncidentId: incID, Proposal: rollback(), ApprovedBy: "user:alice",
	}
	e.publish(t, ran)
	resolved := &eventsv1.IncidentResolved{Meta: bus.NewMeta("monitor", nil), Incident: inc.GetIncident()}
	e.publish(t, resolved)
	// Each stream's redelivered copies come before what was published
	// after them: once these two are in, the copies were handled.
	got = sink.WaitFor(t, 6, 30*time.Second)
	kinds := make([]string, 0, len(got))
	ids := map[string]bool{}
	for _, r := range got {
		kinds = append(kinds, r.Body.Kind)
		assert.False(t, ids[r.Body.ID], "sent twice: %s", r.Body.ID)
		ids[r.Body.ID] = true
	}
	assert.ElementsMatch(t, []string{
		"incident.opened", "analysis.completed", "repair.approval", "repair.decided", "repair.requested", "incident.resolved",
	}, kinds)
	assert.Zero(t, sink.Refused())
}

// A webhook that hangs does not hold back Telegram: several incidents in
// a row reach Telegram while the webhook's first request is held (for up
// to a minute, listed first), and the webhook's messages go, in order,
// once it answers.
func TestHangingWebhookDoesNotDelayTelegram(t *testing.T) {
	t.Parallel()
	sink := fakewebhook.New(t, webhookSecret)
	sink.Hang()
	e := newEnv(t, chatID, "")
	e.withWebhook(sink, time.Minute)
	e.run(t)

	const incidents = 3
	for i := range incidents {
		inc := opened()
		inc.Incident.Id = bus.NewID()
		inc.Incident.Title = fmt.Sprintf("DiskFull %d", i)
		e.publish(t, inc)
		if i == 0 {
			// The rest come while the webhook holds the first.
			require.Eventually(t, func() bool { return sink.Hanging() == 1 }, 30*time.Second, 10*time.Millisecond, "the webhook's first request is held")
		}
	}
	e.tg.WaitForMessages(t, incidents, 30*time.Second)
	assert.Equal(t, 1, sink.Hanging(), "still held; the rest wait their turn")
	assert.Empty(t, sink.Accepted())

	sink.Release()
	got := sink.WaitFor(t, incidents, 30*time.Second)
	for i, r := range got {
		assert.Equal(t, "incident.opened", r.Body.Kind)
		assert.Equal(t, fmt.Sprintf("DiskFull %d", i), r.Body.Title)
	}
	assert.Len(t, e.tg.Messages(), incidents, "Telegram's messages are not sent again")
}
