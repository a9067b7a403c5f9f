package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

func deliveries(t *testing.T) (*postgres.Deliveries, func(string) int) {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "notify")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "notify", db.Sub(postgres.Migrations, "migrations")))
	count := func(where string) int {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM parked_replies WHERE `+where).Scan(&n))
		return n
	}
	return postgres.NewDeliveries(pool), count
}

func reply(eventID, parent string) postgres.Reply {
	return postgres.Reply{EventID: eventID, Channel: "telegram", Target: "chat", Parent: parent, Subject: "analysis.completed", Payload: []byte("event")}
}

func recordParent(t *testing.T, d *postgres.Deliveries, eventID, ref string, o postgres.Outcome) {
	t.Helper()
	a := postgres.Attempt{EventID: eventID, Channel: "telegram", Subject: "incident.opened", Target: "chat", Ref: ref, Outcome: o}
	if o == postgres.OutcomeSent {
		a.MessageID = "42"
	}
	require.NoError(t, d.Record(context.Background(), a))
}

// A reply parks while its parent is not sent for good, once however often
// it comes; the parent's record makes it due, and its own record unparks
// it. A reply that comes after its parent is sent is not parked.
func TestParkUntilParentRecorded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, count := deliveries(t)

	for range 2 { // the second: a redelivery
		_, parked, err := d.Park(ctx, reply("a1", "incident/i1"))
		require.NoError(t, err)
		assert.True(t, parked)
	}
	assert.Equal(t, 1, count("true"))
	done, err := d.Done(ctx, "a1", "telegram")
	require.NoError(t, err)
	assert.True(t, done, "a parked reply needs nothing more from its event")
	due, err := d.TakeDue(ctx, "telegram", "chat", time.Hour, time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, due, "its parent is not recorded")

	recordParent(t, d, "e1", "incident/i1", postgres.OutcomeRetry)
	due, err = d.TakeDue(ctx, "telegram", "chat", time.Hour, time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, due, "a retry of the parent releases nothing")

	recordParent(t, d, "e1", "incident/i1", postgres.OutcomeSent)
	due, err = d.TakeDue(ctx, "telegram", "chat", time.Hour, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, due, 1)
	assert.Equal(t, postgres.Parked{EventID: "a1", Subject: "analysis.completed", Payload: []byte("event")}, due[0])
	due, err = d.TakeDue(ctx, "telegram", "chat", time.Hour, time.Minute, 10)
	require.NoError(t, err)
	assert.Empty(t, due, "taken for its lease")

	p, parked, err := d.Park(ctx, reply("a2", "incident/i1"))
	require.NoError(t, err)
	assert.False(t, parked)
	assert.Equal(t, postgres.Posted{Status: "sent", MessageID: "42"}, p)

	require.NoError(t, d.Record(ctx, postgres.Attempt{EventID: "a1", Channel: "telegram", Subject: "analysis.completed", Target: "chat", Outcome: postgres.OutcomeSent, MessageID: "43"}))
	assert.Zero(t, count("true"), "unparked once sent")

	// A reply whose parent never comes is due after the wait, oldest
	// first; pruning takes what nobody sent.
	for _, id := range []string{"b1", "b2"} {
		_, parked, err := d.Park(ctx, reply(id, "incident/never"))
		require.NoError(t, err)
		require.True(t, parked)
	}
	due, err = d.TakeDue(ctx, "telegram", "chat", 0, time.Minute, 10)
	require.NoError(t, err)
	require.Len(t, due, 2)
	assert.Equal(t, "b1", due[0].EventID)
	assert.Equal(t, "b2", due[1].EventID)
	n, err := d.PruneParked(ctx, time.Now().Add(time.Minute))
	require.NoError(t, err)
	assert.Equal(t, int64(2), n)
}

// However replies and their parent's record interleave, no reply is left
// waiting for a parent that is recorded: each is either sent under it
// (not parked) or due.
func TestParkRacesParentRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d, count := deliveries(t)
	const replies = 20
	var wg sync.WaitGroup
	for i := range replies {
		wg.Go(func() {
			_, _, err := d.Park(ctx, reply(fmt.Sprint("r", i), "incident/race"))
			assert.NoError(t, err)
		})
		if i == replies/2 {
			wg.Go(func() { recordParent(t, d, "opened", "incident/race", postgres.OutcomeFailed) })
		}
	}
	wg.Wait()
	assert.Zero(t, count("due_at IS NULL"), "a parked reply waits for a parent already recorded")
}
