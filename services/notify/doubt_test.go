package notify_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/services/notify"
	notifychannel "github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
)

// counter is the value of counter name with label values values (in the
// order of their names), 0 when it was never counted.
func counter(t *testing.T, reg *prometheus.Registry, name string, values ...string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetValue())
			}
			if slices.Equal(got, values) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// messageID is the id notify recorded for an event's message on a
// channel.
func (e *env) messageID(t *testing.T, eventID, chat string) string {
	t.Helper()
	var id string
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT message_id FROM deliveries WHERE event_id = $1 AND channel = $2`, eventID, chat).Scan(&id))
	return id
}

// A notify that dies after claiming its deliveries and before posting
// them leaves them to a fresh notify on the same database and stream once
// their lease ends: Slack's is looked up, not found, and posted -- one
// message; Telegram's cannot be looked up, so it goes marked as a
// possible repeat -- one message, which says it might be a second.
func TestKilledBeforePostIsSentOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, channel)
	e.opts.Lease, e.opts.StopGrace = time.Second, 200*time.Millisecond
	pool := newCuttable(t, e)
	cut := &cutAfter{db: pool, before: true, waiting: map[string]bool{hostOf(e.tg.URL()): true, hostOf(e.sl.URL()): true}, all: make(chan struct{})}
	e.runWith(t, notify.Deps{Pool: pool.Pool, JetStream: e.js, Logger: testkit.Logger(t), HTTPClient: &http.Client{Transport: cut}})
	inc := opened()
	e.publish(t, inc)
	<-cut.all
	require.Empty(t, e.sl.Messages())
	require.Empty(t, e.tg.Messages())

	reg := prometheus.NewRegistry()
	e.runWith(t, notify.Deps{Pool: e.pool, JetStream: e.js, Logger: testkit.Logger(t), Registry: reg})
	id := inc.GetMeta().GetId()
	require.Eventually(t, func() bool {
		return e.status(t, id, "telegram") == "sent" && e.status(t, id, "slack") == "sent"
	}, 30*time.Second, 20*time.Millisecond)
	posted := e.sl.Messages()
	require.Len(t, posted, 1)
	assert.Equal(t, posted[0].TS, e.messageID(t, id, "slack"))
	require.NotNil(t, posted[0].Metadata)
	assert.Equal(t, id+"/slack/"+channel, posted[0].Metadata.EventPayload["delivery_key"])
	msgs := e.tg.Messages()
	require.Len(t, msgs, 1)
	assert.True(t, strings.HasPrefix(msgs[0].PlainText, "⚠️ Possibly a repeat"), msgs[0].PlainText)
	assert.InDelta(t, 1, counter(t, reg, "vigil_notify_deliveries_reconciled_total", "slack", "reposted"), 0)
	assert.InDelta(t, 1, counter(t, reg, "vigil_notify_deliveries_in_doubt_total", "telegram"), 0)
	require.Never(t, func() bool { return len(e.sl.Messages()) > 1 || len(e.tg.Messages()) > 1 }, time.Second, 100*time.Millisecond)
}

// A notify whose database goes away between the providers' answers and
// its records, longer than its claims' lease, records what it sent once
// the database is back -- nobody else took the claims meanwhile: one
// message per channel, none in doubt.
func TestDatabaseBackRecordsWhatWasSent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, channel)
	e.opts.Lease = 500 * time.Millisecond
	pool := newCuttable(t, e)
	cut := &cutAfter{db: pool, waiting: map[string]bool{hostOf(e.tg.URL()): true, hostOf(e.sl.URL()): true}, all: make(chan struct{})}
	e.runWith(t, notify.Deps{Pool: pool.Pool, JetStream: e.js, Logger: testkit.Logger(t), HTTPClient: &http.Client{Transport: cut}})
	inc := opened()
	e.publish(t, inc)
	<-cut.all
	id := inc.GetMeta().GetId()
	// Past the lease, the claims look abandoned; still nobody's but theirs.
	require.Eventually(t, func() bool {
		var stale int
		require.NoError(t, e.pool.QueryRow(context.Background(),
			`SELECT count(*) FROM deliveries WHERE event_id = $1 AND status = 'sending' AND lease_until < now()`, id).Scan(&stale))
		return stale == 2
	}, 30*time.Second, 20*time.Millisecond)
	pool.cut.Store(false)

	e.recordedOnce(t, id)
}

// recordedOnce asserts that event id went to Telegram and Slack once
// each, on a first attempt recorded sent with its id: nothing in doubt.
func (e *env) recordedOnce(t *testing.T, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		return e.status(t, id, "telegram") == "sent" && e.status(t, id, "slack") == "sent"
	}, 60*time.Second, 50*time.Millisecond)
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, id))
	assert.Equal(t, []string{"sent:200"}, e.attemptsOn(t, id, "slack"))
	assert.Len(t, e.tg.Messages(), 1)
	assert.Len(t, e.sl.Messages(), 1)
	assert.Equal(t, e.sl.Messages()[0].TS, e.messageID(t, id, "slack"))
}

// A message the provider took with an answer notify cannot read (a 200
// cut short) is not failed, nor posted again: on Slack its ts is looked
// up by its key and its replies thread under it; on Telegram it stands
// sent without an id, and its replies go on their own.
func TestUnreadableAnswerKeepsTheMessage(t *testing.T) {
	t.Parallel()
	e := startChats(t, chatID, channel)
	e.tg.GarbleNext(1)
	e.sl.GarbleNext(1)
	inc := opened()
	e.publish(t, inc)
	id := inc.GetMeta().GetId()
	require.Eventually(t, func() bool {
		return e.status(t, id, "telegram") == "sent" && e.status(t, id, "slack") == "sent"
	}, 30*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"in_doubt:0", "sent:200"}, e.attemptsOn(t, id, "slack"))
	assert.Equal(t, []string{"sent:200"}, e.attempts(t, id))
	assert.Empty(t, e.messageID(t, id, "telegram"))
	slMsgs := e.sl.Messages()
	require.Len(t, slMsgs, 1)
	assert.Equal(t, slMsgs[0].TS, e.messageID(t, id, "slack"))

	e.publish(t, completed(inc.GetIncident().GetId()))
	slMsgs = e.sl.WaitForMessages(t, 2, 30*time.Second)
	assert.Equal(t, slMsgs[0].TS, slMsgs[1].ThreadTS)
	tgMsgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	assert.Zero(t, tgMsgs[1].ReplyToMessageID)
	require.Never(t, func() bool { return len(e.sl.Messages()) > 2 || len(e.tg.Messages()) > 2 }, time.Second, 100*time.Millisecond)
}

// Without the history scope, Slack cannot say whether it has a message in
// doubt: it is posted again marked as a possible repeat, as on Telegram.
func TestSlackWithoutHistoryScopeRepostsMarked(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", channel)
	e.sl = fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: channel}}, Scopes: []string{"chat:write"}})
	e.opts.Channels = []notifychannel.Config{slack.Options{BotToken: e.sl.BotToken(), Channel: channel, APIURL: e.sl.APIURL()}}
	e.opts.Lease, e.opts.StopGrace = time.Second, 200*time.Millisecond
	pool := newCuttable(t, e)
	cut := &cutAfter{db: pool, waiting: map[string]bool{hostOf(e.sl.URL()): true}, all: make(chan struct{})}
	e.runWith(t, notify.Deps{Pool: pool.Pool, JetStream: e.js, Logger: testkit.Logger(t), HTTPClient: &http.Client{Transport: cut}})
	inc := opened()
	e.publish(t, inc)
	<-cut.all
	e.run(t)
	require.Eventually(t, func() bool { return e.status(t, inc.GetMeta().GetId(), "slack") == "sent" }, 30*time.Second, 20*time.Millisecond)
	msgs := e.sl.Messages()
	require.Len(t, msgs, 2)
	assert.True(t, strings.HasPrefix(msgs[1].Text, "⚠️ _Possibly a repeat"), msgs[1].Text)
	assert.Equal(t, msgs[1].TS, e.messageID(t, inc.GetMeta().GetId(), "slack"))
}
