package notify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// A deploy is announced on its own, not in any incident's thread: its
// start, and its success; redelivered, nothing is sent twice.
func TestDeployMessagesStandAlone(t *testing.T) {
	t.Parallel()
	e := startChats(t, chatID, channel)
	inc := opened()
	e.publish(t, inc)
	e.tg.WaitForMessages(t, 1, 30*time.Second)
	e.sl.WaitForMessages(t, 1, 30*time.Second)

	started := &eventsv1.DeployRequested{Meta: bus.NewMeta("deploy", nil), DeploymentId: "dep-1", App: "shop", Image: "shop:1.4.2", RequestedBy: "user:alice", Revision: 5}
	e.publish(t, started)
	tg := e.tg.WaitForMessages(t, 2, 30*time.Second)[1]
	assert.Zero(t, tg.ReplyToMessageID, "not a reply")
	assert.Contains(t, tg.PlainText, "🚀 Deploy started: shop\nImage: shop:1.4.2\nRevision: 5\nRequested by: user:alice")
	sl := e.sl.WaitForMessages(t, 2, 30*time.Second)[1]
	assert.Empty(t, sl.ThreadTS, "a top-level message")

	ok := &eventsv1.DeploySucceeded{Meta: bus.NewMeta("deploy", nil), DeploymentId: "dep-1", App: "shop", Revision: 5, Duration: durationpb.New(94 * time.Second)}
	e.publish(t, ok)
	tg = e.tg.WaitForMessages(t, 3, 30*time.Second)[2]
	assert.Zero(t, tg.ReplyToMessageID)
	assert.Contains(t, tg.PlainText, "✅ Deployed: shop\nRevision: 5\nRollout took 1 minute 34 seconds")

	e.redeliver(t, started)
	e.publish(t, &eventsv1.DeployFailed{Meta: bus.NewMeta("deploy", nil), DeploymentId: "dep-2", App: "shop", Revision: 6, Reason: "0/3 ready"})
	msgs := e.tg.WaitForMessages(t, 4, 30*time.Second)
	require.Len(t, msgs, 4, "the redelivered start is not sent again")
	assert.Contains(t, msgs[3].PlainText, "❌ Deploy failed: shop")
}

// An escalation step goes to the channels it names (here the ones that
// announced the incident) as a reply in the incident's thread, naming the
// step, who is asked and why.
func TestEscalationRepliesInThread(t *testing.T) {
	t.Parallel()
	e := startChats(t, chatID, channel)
	inc := opened()
	e.publish(t, inc)
	root := e.tg.WaitForMessages(t, 1, 30*time.Second)[0]
	parent := e.sl.WaitForMessages(t, 1, 30*time.Second)[0]

	e.publish(t, &eventsv1.IncidentEscalated{
		Meta: bus.NewMeta("monitor", nil), Incident: inc.GetIncident(), Level: 2, Policy: "payments-critical",
		Users: []string{"alice", "bob"}, Channels: []string{"telegram", "slack"}, Reason: "unacknowledged",
	})
	tg := e.tg.WaitForMessages(t, 2, 30*time.Second)[1]
	assert.Equal(t, root.MessageID, tg.ReplyToMessageID)
	assert.Contains(t, tg.PlainText, "🚨 Incident escalated: DiskFull in <prod>\nStep 2 of policy payments-critical: nobody acknowledged it in time\nAsked to respond: alice, bob\nAlso told: telegram, slack")
	sl := e.sl.WaitForMessages(t, 2, 30*time.Second)[1]
	assert.Equal(t, parent.TS, sl.ThreadTS)
}
