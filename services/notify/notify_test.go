package notify_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const chatID = "-1001234567890"

// channel is the Slack channel the fake knows.
const channel = "C0ALERTS1"

type env struct {
	pool *pgxpool.Pool
	js   jetstream.JetStream
	tg   *faketelegram.Server
	sl   *fakeslack.Server
	opts notify.Options
}

// start runs notify sending to Telegram chat sendTo.
func start(t *testing.T, sendTo string) *env {
	t.Helper()
	return startChats(t, sendTo, "")
}

// startChats runs notify sending to Telegram chat tgChat and Slack
// channel slChannel; "" leaves a chat off.
func startChats(t *testing.T, tgChat, slChannel string) *env {
	t.Helper()
	e := newEnv(t, tgChat, slChannel)
	e.run(t)
	return e
}

// newEnv is notify's database, bus and chats, with notify not running
// yet. A reply waits ten seconds for its parent: long enough for the
// parent's retries here, short enough for a test to see it go on its own.
func newEnv(t *testing.T, tgChat, slChannel string) *env {
	t.Helper()
	pool, err := db.Open(context.Background(), testkit.Postgres(t), notify.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	tg := faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID}})
	sl := fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: channel, Name: "alerts"}}})
	opts := notify.Options{MaxDeliver: 5, ReplyWait: 10 * time.Second}
	if tgChat != "" {
		opts.Channels = append(opts.Channels, telegram.Options{BotToken: tg.Token(), ChatID: tgChat, APIURL: tg.URL()})
	}
	if slChannel != "" {
		opts.Channels = append(opts.Channels, slack.Options{BotToken: sl.BotToken(), Channel: slChannel, APIURL: sl.APIURL()})
	}
	return &env{pool: pool, js: js, tg: tg, sl: sl, opts: opts}
}

// run starts a notify, and returns what stops it (at the end of the test
// if not before).
func (e *env) run(t *testing.T) (stop func()) {
	t.Helper()
	return e.runWith(t, notify.Deps{Pool: e.pool, JetStream: e.js, Logger: testkit.Logger(t)})
}

// runWith starts a notify on deps.
func (e *env) runWith(t *testing.T, deps notify.Deps) (stop func()) {
	t.Helper()
	ctx := context.Background()
	s, err := notify.New(ctx, e.opts, deps)
	require.NoError(t, err)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); require.NoError(t, <-done) }) }
	t.Cleanup(stop)
	return stop
}

func opened() *eventsv1.IncidentOpened {
	return &eventsv1.IncidentOpened{Meta: bus.NewMeta("monitor", nil), Incident: &typesv1.Incident{
		Id: "01a20236-f568-7af1-9546-d3f52f62c45a", Title: "DiskFull in <prod>", Severity: typesv1.Severity_SEVERITY_CRITICAL,
		FiringCount: 1, GroupLabels: map[string]string{"alertname": "DiskFull"},
	}}
}

// openIncident publishes an incident and waits until its Telegram message
// is sent and recorded: what follows it is threaded under it in the order
// published, not after a retry that waited for the record.
func (e *env) openIncident(t *testing.T, inc *eventsv1.IncidentOpened) faketelegram.Message {
	t.Helper()
	e.publish(t, inc)
	msg := e.tg.WaitForMessages(t, 1, 30*time.Second)[0]
	require.Eventually(t, func() bool {
		return slices.Equal(e.attempts(t, inc.GetMeta().GetId()), []string{"sent:200"})
	}, 10*time.Second, 20*time.Millisecond)
	return msg
}

func (e *env) attempts(t *testing.T, eventID string) []string {
	t.Helper()
	return e.attemptsOn(t, eventID, "telegram")
}

// attemptsOn are the attempts at an event on one chat, as outcome:status,
// once a send in flight is recorded: a fake has the message before its
// sender records the attempt, so a test that saw the message at the fake
// would otherwise read the log a moment too early. A send held longer
// (a test holding the provider's answer) is read as it stands.
func (e *env) attemptsOn(t *testing.T, eventID, chat string) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var sending bool
		require.NoError(t, e.pool.QueryRow(context.Background(),
			`SELECT EXISTS (SELECT 1 FROM deliveries WHERE event_id = $1 AND channel = $2 AND status = 'sending')`,
			eventID, chat).Scan(&sending))
		if !sending {
			break
		}
	}
	rows, err := e.pool.Query(context.Background(),
		`SELECT outcome || ':' || http_status FROM delivery_attempts WHERE event_id = $1 AND channel = $2 ORDER BY attempt`, eventID, chat)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		require.NoError(t, rows.Scan(&s))
		out = append(out, s)
	}
	return out
}

// Telegram failing twice (502) is retried with backoff until it takes the
// message; every attempt is recorded.
func TestRetriesServerErrorsAndRecordsAttempts(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	e.tg.FailNext(2, 502)
	evt := opened()
	require.NoError(t, bus.NewPublisher(e.js, nil).Publish(context.Background(), evt))

	msgs := e.tg.WaitForMessages(t, 1, 30*time.Second)
	assert.Contains(t, msgs[0].PlainText, "DiskFull in <prod>")
	require.Eventually(t, func() bool { return len(e.attempts(t, evt.GetMeta().GetId())) == 3 }, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, []string{"retry:502", "retry:502", "sent:200"}, e.attempts(t, evt.GetMeta().GetId()))

	// The same event again (a redelivery) is not sent twice.
	m, err := bus.Encode(context.Background(), evt)
	require.NoError(t, err)
	m.ID = "redelivered-copy"
	require.NoError(t, bus.NewPublisher(e.js, nil).PublishMessages(context.Background(), m))
	require.Never(t, func() bool { return len(e.tg.Messages()) > 1 }, 2*time.Second, 100*time.Millisecond)
}

// A chat Telegram does not know is a permanent failure: recorded once as
// failed, not retried; the event itself was handled (queued), so it is
// not dead-lettered.
func TestPermanentFailureIsRecordedAndNotRetried(t *testing.T) {
	t.Parallel()
	e := start(t, "-1009999999999")
	evt := opened()
	require.NoError(t, bus.NewPublisher(e.js, nil).Publish(context.Background(), evt))

	require.Eventually(t, func() bool { return e.status(t, evt.GetMeta().GetId(), "telegram") == "failed" }, 20*time.Second, 20*time.Millisecond)
	var lastError string
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT last_error FROM deliveries WHERE event_id = $1`, evt.GetMeta().GetId()).Scan(&lastError))
	assert.Contains(t, lastError, "chat not found")
	require.Never(t, func() bool { return len(e.attempts(t, evt.GetMeta().GetId())) > 1 }, 2*time.Second, 100*time.Millisecond)
	assert.Equal(t, []string{"failed:400"}, e.attempts(t, evt.GetMeta().GetId()))
	assert.Empty(t, e.tg.Messages())
	e.handledOnce(t, "INCIDENTS")
}

// status is the state of an event's delivery on a channel, "" for none.
func (e *env) status(t *testing.T, eventID, channel string) string {
	t.Helper()
	var s string
	err := e.pool.QueryRow(context.Background(),
		`SELECT status FROM deliveries WHERE event_id = $1 AND channel = $2`, eventID, channel).Scan(&s)
	if errors.Is(err, pgx.ErrNoRows) {
		return ""
	}
	require.NoError(t, err)
	return s
}
