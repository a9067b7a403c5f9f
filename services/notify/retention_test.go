package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify"
)

// An incident event older than the max event age (default one hour) is not
// sent; a fresh one is.
func TestStaleIncidentIsNotSent(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	stale := opened()
	stale.Incident.Title = "StaleDisk"
	stale.Meta.OccurredAt = timestamppb.New(time.Now().Add(-2 * time.Hour))
	fresh := opened()
	fresh.Incident.Title = "FreshDisk"
	require.NoError(t, bus.NewPublisher(e.js, nil).Publish(context.Background(), stale, fresh))

	// The stale event is first in the stream: were it sent, it would be the
	// first message.
	msgs := e.tg.WaitForMessages(t, 1, 30*time.Second)
	assert.Contains(t, msgs[0].PlainText, "FreshDisk")
	assert.Empty(t, e.attempts(t, stale.GetMeta().GetId()))
}

// Deliveries (and their attempts) last touched before the retention are
// deleted when notify runs; newer ones are kept. Notify prunes with no
// channel configured too.
func TestPrunesDeliveriesPastRetention(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), notify.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	s, err := notify.New(ctx, notify.Options{Retention: 7 * 24 * time.Hour},
		notify.Deps{Pool: pool, JetStream: js, Logger: testkit.Logger(t)})
	require.NoError(t, err)

	for id, age := range map[string]string{"old": "8 days", "older": "400 days", "recent": "6 days", "now": "0"} {
		_, err := pool.Exec(ctx, `INSERT INTO deliveries (event_id, channel, subject, target, status, attempts, created_at, updated_at)
			VALUES ($1, 'telegram', 'incident.opened', 'chat', 'sent', 1, now() - $2::interval, now() - $2::interval)`, id, age)
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO delivery_attempts (event_id, channel, attempt, outcome, at)
			VALUES ($1, 'telegram', 1, 'sent', now() - $2::interval)`, id, age)
		require.NoError(t, err)
	}
	ids := func(table string) []string {
		rows, err := pool.Query(ctx, `SELECT event_id FROM `+table+` ORDER BY event_id`)
		require.NoError(t, err)
		defer rows.Close()
		var out []string
		for rows.Next() {
			var id string
			require.NoError(t, rows.Scan(&id))
			out = append(out, id)
		}
		require.NoError(t, rows.Err())
		return out
	}
	require.Len(t, ids("deliveries"), 4)

	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })

	require.Eventually(t, func() bool { return len(ids("deliveries")) == 2 }, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"now", "recent"}, ids("deliveries"))
	assert.Equal(t, []string{"now", "recent"}, ids("delivery_attempts"))
}

// A retention shorter than the max event age could let a redelivered event
// through after its delivery record is gone: refused.
func TestRetentionShorterThanMaxEventAgeIsRefused(t *testing.T) {
	t.Parallel()
	err := notify.Options{Retention: 30 * time.Minute}.Validate()
	require.ErrorContains(t, err, "VIGIL_RETENTION")
	require.NoError(t, notify.Options{Retention: 2 * time.Hour, MaxEventAge: time.Hour}.Validate())
	require.ErrorContains(t, notify.Options{MaxEventAge: -time.Second}.Validate(), "VIGIL_NOTIFY_MAX_EVENT_AGE")
}
