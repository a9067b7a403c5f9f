package notify_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

func completed(incidentID string) *eventsv1.AnalysisCompleted {
	meta := bus.NewMeta("analysis", nil)
	return &eventsv1.AnalysisCompleted{
		Meta: meta, AnalysisId: "analysis-" + meta.GetId(), IncidentId: incidentID,
		Summary:    `checkout crash-loops <script>alert(1)</script> & restarts`,
		RootCause:  "revision 4's image exits 1 at start; revision 3 was healthy",
		Confidence: 0.85, Risk: typesv1.Risk_RISK_MEDIUM, BlastRadiusPods: 3, ExpectedDowntime: durationpb.New(30 * time.Second),
		Engine: "llm:openai", Model: "gpt-4o-mini", InputTokens: 1200, OutputTokens: 300, CostUsd: 0.0042, App: "shop",
		Proposal: &typesv1.RepairProposal{
			Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment", Name: "checkout"},
			Params: &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: 3}},
		},
	}
}

func (e *env) publish(t *testing.T, events ...bus.Event) {
	t.Helper()
	require.NoError(t, bus.NewPublisher(e.js, nil).Publish(context.Background(), events...))
}

// An analysis replies to the message that announced its incident, with
// everything it found escaped and within Telegram's length; redelivered,
// it is not sent again.
func TestAnalysisRepliesToIncidentMessage(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	inc := opened()
	incMsg := e.openIncident(t, inc)

	a := completed(inc.GetIncident().GetId())
	a.BlastRadius = strings.Repeat("every pod of shop & more <b> ", 400) // an LLM that runs on
	e.publish(t, a)
	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	got := msgs[1]

	assert.Equal(t, incMsg.MessageID, got.ReplyToMessageID, "a reply to the incident's message")
	assert.Equal(t, chatID, got.ChatID)
	assert.Contains(t, got.Text, "checkout crash-loops &lt;script&gt;alert(1)&lt;/script&gt; &amp; restarts")
	assert.NotContains(t, got.Text, "<script>")
	for _, want := range []string{
		"Analysis: checkout crash-loops <script>alert(1)</script> & restarts",
		"Cause: revision 4's image exits 1 at start; revision 3 was healthy",
		"Proposed action: Roll back shop/checkout to revision 3",
		"Confidence: 85% · Risk: medium",
		"Blast radius: 3 pods, expected downtime 30 seconds",
		"Engine: llm:openai · model gpt-4o-mini · tokens 1200 in / 300 out · cost $0.0042",
		"Incident: " + inc.GetIncident().GetId(),
		"Analysis: " + a.GetAnalysisId(),
	} {
		assert.Contains(t, got.PlainText, want)
	}
	assert.LessOrEqual(t, utf8.RuneCountInString(got.PlainText), faketelegram.MaxTextLength)
	// Recorded just after Telegram took it.
	require.Eventually(t, func() bool { return len(e.attempts(t, a.GetMeta().GetId())) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, a.GetMeta().GetId()))

	// The same event again (a redelivery), then another analysis: the
	// second is sent, the copy is not.
	m, err := bus.Encode(context.Background(), a)
	require.NoError(t, err)
	m.ID = "redelivered-copy"
	require.NoError(t, bus.NewPublisher(e.js, nil).PublishMessages(context.Background(), m))
	next := completed(inc.GetIncident().GetId())
	next.Summary = "second opinion"
	e.publish(t, next)
	msgs = e.tg.WaitForMessages(t, 3, 30*time.Second)
	require.Len(t, msgs, 3)
	assert.Contains(t, msgs[2].PlainText, "second opinion")
	assert.Equal(t, incMsg.MessageID, msgs[2].ReplyToMessageID)
}

// An analysis of an incident whose message notify never sent goes out on
// its own, naming the incident.
func TestAnalysisOfUnknownIncidentIsSentWithoutReply(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	a := completed("01a20236-0000-7000-8000-00000000beef")
	e.publish(t, a)

	got := e.tg.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Zero(t, got.ReplyToMessageID)
	assert.Contains(t, got.PlainText, "Incident: 01a20236-0000-7000-8000-00000000beef")
	assert.Contains(t, got.PlainText, "Proposed action: Roll back shop/checkout to revision 3")
	// Recorded just after Telegram took it.
	require.Eventually(t, func() bool { return len(e.attempts(t, a.GetMeta().GetId())) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, a.GetMeta().GetId()))
}

// An analysis older than the max event age is not sent; a fresh one is.
func TestStaleAnalysisIsNotSent(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	inc := opened()
	e.openIncident(t, inc)

	stale := completed(inc.GetIncident().GetId())
	stale.Summary = "stale analysis"
	stale.Meta.OccurredAt = timestamppb.New(time.Now().Add(-2 * time.Hour))
	fresh := completed(inc.GetIncident().GetId())
	fresh.Summary = "fresh analysis"
	e.publish(t, stale, fresh)

	// The stale event is first in the stream: were it sent, it would be
	// the second message.
	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	assert.Contains(t, msgs[1].PlainText, "fresh analysis")
	assert.Empty(t, e.attempts(t, stale.GetMeta().GetId()))
}

// An analysis that overtakes its incident's message (Telegram refused it
// once and it is being retried) waits for it, and replies to it.
func TestAnalysisWaitsForIncidentMessage(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	e.tg.FailNext(1, 502)
	inc := opened()
	a := completed(inc.GetIncident().GetId())
	e.publish(t, inc)
	e.publish(t, a)

	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	assert.Contains(t, msgs[0].PlainText, "Incident opened")
	assert.Equal(t, msgs[0].MessageID, msgs[1].ReplyToMessageID)
	assert.Equal(t, []string{"retry:502", "sent:200"}, e.attempts(t, inc.GetMeta().GetId()))
}
