package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// newParkingEnv is notify's test environment with a reply wait no test
// outlasts: a reply that goes out went because its parent was recorded.
func newParkingEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, chatID, "")
	e.opts.ReplyWait = 10 * time.Minute
	return e
}

// publishParked publishes evt and waits until it is parked.
func (e *env) publishParked(t *testing.T, evt bus.Event) {
	t.Helper()
	e.publish(t, evt)
	require.Eventually(t, func() bool { return e.parked(t, evt.GetMeta().GetId()) }, 10*time.Second, 20*time.Millisecond)
}

// startParkedAnalysis runs notify, and parks an analysis of an incident
// whose message is not sent.
func startParkedAnalysis(t *testing.T) (*env, *eventsv1.IncidentOpened, *eventsv1.AnalysisCompleted) {
	t.Helper()
	e := newParkingEnv(t)
	e.run(t)
	inc := opened()
	a := completed(inc.GetIncident().GetId())
	e.publishParked(t, a)
	return e, inc, a
}

// parked reports whether an event waits, queued, for its parent on the
// Telegram chat.
func (e *env) parked(t *testing.T, eventID string) bool {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM deliveries WHERE event_id = $1 AND channel = 'telegram' AND parent <> '' AND status = 'queued'`, eventID).Scan(&n))
	return n == 1
}

// handledOnce asserts that notify's consumer of stream took every event
// there once, and acknowledged it: a parked reply is not redelivered
// until its parent is sent.
func (e *env) handledOnce(t *testing.T, stream string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := e.js.Consumer(context.Background(), stream, "notify")
		require.NoError(t, err)
		info, err := c.Info(context.Background())
		require.NoError(t, err)
		return info.NumAckPending == 0 && info.NumPending == 0 && info.Delivered.Consumer > 0
	}, 10*time.Second, 20*time.Millisecond)
	c, err := e.js.Consumer(context.Background(), stream, "notify")
	require.NoError(t, err)
	info, err := c.Info(context.Background())
	require.NoError(t, err)
	assert.Zero(t, info.NumRedelivered, "nothing redelivered")
	assert.Equal(t, info.Delivered.Stream, info.Delivered.Consumer, "each event delivered once")
}

// An analysis published before its incident's message is sent is parked
// -- its event acknowledged, nothing sent -- and goes out as a reply to
// that message as soon as it is recorded, long before the reply wait.
func TestReplyIsParkedUntilItsParentIsSent(t *testing.T) {
	t.Parallel()
	e, inc, a := startParkedAnalysis(t)
	e.handledOnce(t, "ANALYSES")
	assert.Empty(t, e.tg.Messages())
	assert.Empty(t, e.attempts(t, a.GetMeta().GetId()))

	e.publish(t, inc)
	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	assert.Contains(t, msgs[0].PlainText, "Incident opened")
	assert.Contains(t, msgs[1].PlainText, "Analysis: checkout crash-loops")
	assert.Equal(t, msgs[0].MessageID, msgs[1].ReplyToMessageID, "a reply to the incident's message")
	require.Eventually(t, func() bool { return len(e.attempts(t, a.GetMeta().GetId())) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, a.GetMeta().GetId()))
	assert.False(t, e.parked(t, a.GetMeta().GetId()), "unparked once sent")
	require.Never(t, func() bool { return len(e.tg.Messages()) > 2 }, time.Second, 100*time.Millisecond)
}

// A parked reply is in the database, not in a notify: stopped and started
// again, notify sends it under its parent once that is sent.
func TestParkedReplySurvivesRestart(t *testing.T) {
	t.Parallel()
	e := newParkingEnv(t)
	stop := e.run(t)
	inc := opened()
	req := approvalRequested(inc.GetIncident().GetId())
	e.publishParked(t, req)
	e.handledOnce(t, "REPAIRS")
	stop()

	e.publish(t, inc)
	e.run(t)
	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	assert.Contains(t, msgs[0].PlainText, "Incident opened")
	assert.Contains(t, msgs[1].PlainText, "Approval needed: Roll back shop/checkout to revision 3")
	assert.Equal(t, msgs[0].MessageID, msgs[1].ReplyToMessageID, "in the incident's thread")
	require.Len(t, msgs[1].ReplyMarkup, 2, "with its buttons")
	require.Eventually(t, func() bool { return len(e.attempts(t, req.GetMeta().GetId())) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, req.GetMeta().GetId()))
	assert.False(t, e.parked(t, req.GetMeta().GetId()))
}

// A parent that fails for good releases its replies at once: they go out
// on their own, not after the reply wait. A decision parked for its card
// goes out in the incident's thread when the card fails.
func TestParentFailingForGoodReleasesReplies(t *testing.T) {
	t.Parallel()
	e, inc, a := startParkedAnalysis(t)
	e.tg.FailNext(1, 400)
	e.publish(t, inc)
	got := e.tg.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Contains(t, got.PlainText, "Analysis: checkout crash-loops")
	assert.Zero(t, got.ReplyToMessageID, "on its own")
	require.Eventually(t, func() bool { return len(e.attempts(t, a.GetMeta().GetId())) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"failed:400"}, e.attempts(t, inc.GetMeta().GetId()))
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, a.GetMeta().GetId()))
	assert.False(t, e.parked(t, a.GetMeta().GetId()))

	// Another incident, sent; its card fails for good after its decision
	// was parked for it.
	inc2 := opened()
	inc2.Incident.Id = bus.NewID()
	e.publish(t, inc2)
	incMsg := e.tg.WaitForMessages(t, 2, 30*time.Second)[1]
	require.Eventually(t, func() bool { return len(e.attempts(t, inc2.GetMeta().GetId())) == 1 }, 10*time.Second, 20*time.Millisecond)
	req := approvalRequested(inc2.GetIncident().GetId())
	dec := decidedEvent(req, "approved", "user:alice", "telegram")
	e.publishParked(t, dec)
	e.tg.FailNext(1, 400)
	e.publish(t, req)
	decMsg := e.tg.WaitForMessages(t, 3, 30*time.Second)[2]
	assert.Equal(t, incMsg.MessageID, decMsg.ReplyToMessageID, "in the incident's thread")
	assert.Contains(t, decMsg.PlainText, "Approved: Roll back shop/checkout to revision 3", "the card, decided")
	assert.Nil(t, decMsg.ReplyMarkup)
	require.Eventually(t, func() bool { return len(e.attempts(t, dec.GetMeta().GetId())) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"failed:400"}, e.attempts(t, req.GetMeta().GetId()))
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, dec.GetMeta().GetId()))
}
