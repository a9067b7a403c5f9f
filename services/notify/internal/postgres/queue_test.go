package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

const (
	lease = time.Minute
	wait  = time.Hour
)

func queue(t *testing.T) (*postgres.Deliveries, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "notify")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "notify", db.Sub(postgres.Migrations, "migrations")))
	return postgres.NewDeliveries(pool), pool
}

func enqueue(t *testing.T, d *postgres.Deliveries, pool *pgxpool.Pool, ds ...postgres.Delivery) {
	t.Helper()
	require.NoError(t, db.InTx(context.Background(), pool, func(tx pgx.Tx) error {
		for _, x := range ds {
			if x.Channel == "" {
				x.Channel = "telegram"
			}
			x.Subject, x.Target, x.Payload = "incident.opened", "chat", []byte("event")
			if x.OccurredAt.IsZero() {
				x.OccurredAt = time.Now()
			}
			if err := d.Enqueue(context.Background(), tx, x); err != nil {
				return err
			}
		}
		return nil
	}))
}

func claim(t *testing.T, d *postgres.Deliveries, replica string) string {
	t.Helper()
	c, err := d.Claim(context.Background(), "telegram", replica, lease, wait)
	require.NoError(t, err)
	if c == nil {
		return ""
	}
	return c.EventID
}

// claimed is the next delivery on telegram, claimed by replica for
// lease; there must be one.
func claimed(t *testing.T, d *postgres.Deliveries, replica string, lease time.Duration) *postgres.Claimed {
	t.Helper()
	c, err := d.Claim(context.Background(), "telegram", replica, lease, wait)
	require.NoError(t, err)
	require.NotNil(t, c)
	return c
}

func record(t *testing.T, d *postgres.Deliveries, replica, eventID string, o postgres.Outcome, dueIn time.Duration) {
	t.Helper()
	require.NoError(t, d.Record(context.Background(), replica, postgres.Attempt{
		EventID: eventID, Channel: "telegram", Target: "chat", Outcome: o, MessageID: "m-" + eventID, DueIn: dueIn,
	}))
}

func status(t *testing.T, pool *pgxpool.Pool, eventID string) string {
	t.Helper()
	var s string
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT status FROM deliveries WHERE event_id = $1 AND channel = 'telegram'`, eventID).Scan(&s))
	return s
}

// An event is queued once per channel however often it comes, claimed by
// one replica, and never again once recorded, whatever comes after.
func TestQueuedOnceClaimedOnce(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	enqueue(t, d, pool, postgres.Delivery{EventID: "e1"})
	enqueue(t, d, pool, postgres.Delivery{EventID: "e1"}, postgres.Delivery{EventID: "e1", Channel: "slack"})

	assert.Equal(t, "e1", claim(t, d, "a"))
	assert.Empty(t, claim(t, d, "b"), "claimed: another replica does not take it")
	assert.Equal(t, "sending", status(t, pool, "e1"))
	record(t, d, "a", "e1", postgres.OutcomeSent, 0)
	enqueue(t, d, pool, postgres.Delivery{EventID: "e1"})
	assert.Empty(t, claim(t, d, "b"), "a redelivered event is not queued again")
	assert.Equal(t, "sent", status(t, pool, "e1"))
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), `SELECT count(*) FROM deliveries WHERE payload IS NULL AND event_id = 'e1' AND channel = 'telegram'`).Scan(&n))
	assert.Equal(t, 1, n, "a final delivery forgets its event")

	// The record of a claim another replica holds is refused.
	enqueue(t, d, pool, postgres.Delivery{EventID: "e2"})
	require.Equal(t, "e2", claim(t, d, "a"))
	err := d.Record(context.Background(), "b", postgres.Attempt{EventID: "e2", Channel: "telegram", Outcome: postgres.OutcomeSent})
	require.ErrorIs(t, err, postgres.ErrClaimLost)
	assert.Equal(t, "sending", status(t, pool, "e2"))
}

// A reply queued before its parent waits for it and holds nothing back;
// the parent's record, sent or failed for good, lets it go, as does the
// reply wait.
func TestReplyWaitsForItsParent(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	enqueue(t, d, pool,
		postgres.Delivery{EventID: "analysis", IncidentID: "i1", Parent: "incident/i1"},
		postgres.Delivery{EventID: "resolved", IncidentID: "i1", Parent: "incident/i1"},
		postgres.Delivery{EventID: "opened", IncidentID: "i1", Ref: "incident/i1"},
	)
	require.Equal(t, "opened", claim(t, d, "a"))
	assert.Empty(t, claim(t, d, "a"), "the replies wait for their parent")
	record(t, d, "a", "opened", postgres.OutcomeSent, 0)
	p, err := d.Posted(context.Background(), "incident/i1", "telegram", "chat")
	require.NoError(t, err)
	assert.Equal(t, postgres.Posted{Status: "sent", MessageID: "m-opened"}, p)
	assert.Equal(t, "analysis", claim(t, d, "a"))
	assert.Empty(t, claim(t, d, "b"), "the next of the incident waits its turn")
	record(t, d, "a", "analysis", postgres.OutcomeSent, 0)
	assert.Equal(t, "resolved", claim(t, d, "b"))

	// A parent that failed for good lets its replies go (unthreaded).
	enqueue(t, d, pool,
		postgres.Delivery{EventID: "a2", IncidentID: "i2", Parent: "incident/i2"},
		postgres.Delivery{EventID: "o2", IncidentID: "i2", Ref: "incident/i2"},
	)
	require.Equal(t, "o2", claim(t, d, "a"))
	record(t, d, "a", "o2", postgres.OutcomeFailed, 0)
	assert.Equal(t, "a2", claim(t, d, "a"))

	// A parent that never comes: the reply goes once it waited.
	enqueue(t, d, pool, postgres.Delivery{EventID: "a3", IncidentID: "i3", Parent: "incident/i3"})
	assert.Empty(t, claim(t, d, "a"))
	c, err := d.Claim(context.Background(), "telegram", "a", lease, 0)
	require.NoError(t, err)
	require.NotNil(t, c)
	assert.Equal(t, "a3", c.EventID)
}

// One incident's messages go out in the order their events happened: a retry waiting
// for its delay holds back the next of its incident, and no other's.
func TestOrderWithinAnIncident(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	enqueue(t, d, pool,
		postgres.Delivery{EventID: "i1-first", IncidentID: "i1"},
		postgres.Delivery{EventID: "i1-second", IncidentID: "i1"},
		postgres.Delivery{EventID: "i2-first", IncidentID: "i2"},
	)
	require.Equal(t, "i1-first", claim(t, d, "a"))
	require.Equal(t, "i2-first", claim(t, d, "b"), "another incident's message does not wait")
	assert.Empty(t, claim(t, d, "b"), "i1's second waits for its first")
	record(t, d, "a", "i1-first", postgres.OutcomeRetry, time.Hour)
	assert.Empty(t, claim(t, d, "b"), "and for its retry")
	assert.Equal(t, "retrying", status(t, pool, "i1-first"))

	require.NoError(t, d.Release(context.Background(), "b", "i2-first", "telegram"))
	assert.Equal(t, "queued", status(t, pool, "i2-first"), "released unsent")
	assert.Equal(t, "i2-first", claim(t, d, "a"))

	// Queued late (another replica's batch committed first), an event
	// that happened earlier still goes first.
	enqueue(t, d, pool, postgres.Delivery{EventID: "i3-second", IncidentID: "i3"})
	enqueue(t, d, pool, postgres.Delivery{EventID: "i3-first", IncidentID: "i3", OccurredAt: time.Now().Add(-time.Minute)})
	assert.Equal(t, "i3-first", claim(t, d, "a"))
	assert.Empty(t, claim(t, d, "a"))
}

// A paused channel gives nothing out until the pause ends; other
// channels are not paused.
func TestPausedChannel(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	ctx := context.Background()
	enqueue(t, d, pool, postgres.Delivery{EventID: "e1"}, postgres.Delivery{EventID: "e1", Channel: "slack"})
	require.NoError(t, d.Pause(ctx, "telegram", time.Now().Add(time.Hour), "429"))
	require.NoError(t, d.Pause(ctx, "telegram", time.Now().Add(time.Minute), "429"))
	paused, err := d.PausedFor(ctx, "telegram")
	require.NoError(t, err)
	assert.Greater(t, paused, 50*time.Minute, "a longer pause stands")
	assert.Empty(t, claim(t, d, "a"))
	c, err := d.Claim(ctx, "slack", "a", lease, wait)
	require.NoError(t, err)
	require.NotNil(t, c)
	paused, err = d.PausedFor(ctx, "slack")
	require.NoError(t, err)
	assert.Zero(t, paused)
}

// A claim whose lease ends unrecorded is taken over, once, as stale and
// in doubt since it was first claimed; the replica that held it can no
// longer record it. An attempt that does not settle the doubt keeps it,
// and its time, for the next claim; one sent ends it.
func TestStaleClaimIsTakenOverOnce(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	ctx := context.Background()
	enqueue(t, d, pool, postgres.Delivery{EventID: "e1"})
	c := claimed(t, d, "a", 200*time.Millisecond)
	require.NoError(t, d.Renew(ctx, "a", "e1", "telegram", 200*time.Millisecond))
	var stale *postgres.Claimed
	require.Eventually(t, func() bool {
		var err error
		stale, err = d.ClaimStale(ctx, "telegram", "b", lease)
		require.NoError(t, err)
		return stale != nil
	}, 10*time.Second, 50*time.Millisecond)
	assert.True(t, stale.Stale)
	assert.True(t, stale.InDoubt)
	assert.Equal(t, "e1", stale.EventID)
	assert.Equal(t, c.PostedAt, stale.PostedAt, "in doubt since the first claim")
	again, err := d.ClaimStale(ctx, "telegram", "c", lease)
	require.NoError(t, err)
	assert.Nil(t, again)
	require.ErrorIs(t, d.Record(ctx, "a", postgres.Attempt{EventID: "e1", Channel: "telegram", Outcome: postgres.OutcomeSent}), postgres.ErrClaimLost)

	require.NoError(t, d.Record(ctx, "b", postgres.Attempt{EventID: "e1", Channel: "telegram", Outcome: postgres.OutcomeRetry, InDoubt: true}))
	assert.Equal(t, "retrying", status(t, pool, "e1"))
	next := claimed(t, d, "c", lease)
	assert.False(t, next.Stale)
	assert.True(t, next.InDoubt, "a retry that settled nothing stays in doubt")
	assert.Equal(t, c.PostedAt, next.PostedAt)
	record(t, d, "c", "e1", postgres.OutcomeSent, 0)
	assert.Equal(t, "sent", status(t, pool, "e1"))
	var inDoubt bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT in_doubt FROM deliveries WHERE event_id = 'e1'`).Scan(&inDoubt))
	assert.False(t, inDoubt)
}

// An attempt recorded in doubt is due again at once and claimed in doubt;
// a delivery never in doubt is claimed without.
func TestInDoubtAttemptIsClaimedInDoubt(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	enqueue(t, d, pool, postgres.Delivery{EventID: "e1"})
	c := claimed(t, d, "a", lease)
	require.False(t, c.InDoubt)
	record(t, d, "a", "e1", postgres.OutcomeInDoubt, 0)
	assert.Equal(t, []string{"in_doubt"}, outcomes(t, pool, "e1"))
	next := claimed(t, d, "b", lease)
	assert.True(t, next.InDoubt)
	assert.Equal(t, c.PostedAt, next.PostedAt)
}

func outcomes(t *testing.T, pool *pgxpool.Pool, eventID string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT outcome FROM delivery_attempts WHERE event_id = $1 ORDER BY attempt`, eventID)
	require.NoError(t, err)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return out
}

// Senders of many replicas at once take each delivery once.
func TestConcurrentClaimsTakeEachOnce(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	var ds []postgres.Delivery
	for i := range 60 {
		ds = append(ds, postgres.Delivery{EventID: fmt.Sprint("e", i), IncidentID: fmt.Sprint("i", i%7)})
	}
	enqueue(t, d, pool, ds...)
	var (
		mu    sync.Mutex
		taken = map[string]int{}
		wg    sync.WaitGroup
	)
	for r := range 6 {
		wg.Go(func() {
			replica := fmt.Sprint("r", r)
			for {
				c, err := d.Claim(context.Background(), "telegram", replica, lease, wait)
				if err != nil {
					t.Error(err)
					return
				}
				if c == nil {
					mu.Lock()
					done := len(taken) == len(ds)
					mu.Unlock()
					if done {
						return
					}
					continue
				}
				mu.Lock()
				taken[c.EventID]++
				mu.Unlock()
				assert.NoError(t, d.Record(context.Background(), replica, postgres.Attempt{EventID: c.EventID, Channel: "telegram", Outcome: postgres.OutcomeSent}))
			}
		})
	}
	wg.Wait()
	require.Len(t, taken, len(ds))
	for id, n := range taken {
		assert.Equal(t, 1, n, id)
	}
}

// The parts of a delivery its provider accepted are recorded by the
// sender holding its claim, once each, and come with its next claim; a
// sender that lost the claim records nothing.
func TestAcceptedPartsComeWithTheNextClaim(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	ctx := context.Background()
	enqueue(t, d, pool, postgres.Delivery{EventID: "e1"})
	c, err := d.Claim(ctx, "telegram", "a", lease, wait)
	require.NoError(t, err)
	require.Empty(t, c.Parts)
	require.NoError(t, d.Accept(ctx, "a", "e1", "telegram", "<copy-ana>"))
	require.NoError(t, d.Accept(ctx, "a", "e1", "telegram", "<copy-ana>"), "twice is once")
	require.ErrorIs(t, d.Accept(ctx, "b", "e1", "telegram", "<copy-bob>"), postgres.ErrClaimLost)
	record(t, d, "a", "e1", postgres.OutcomeRetry, 0)
	require.ErrorIs(t, d.Accept(ctx, "a", "e1", "telegram", "<copy-bob>"), postgres.ErrClaimLost, "recorded: no longer held")

	c, err = d.Claim(ctx, "telegram", "b", lease, wait)
	require.NoError(t, err)
	require.NotNil(t, c)
	require.Equal(t, []string{"<copy-ana>"}, c.Parts)
}

// Two replicas queueing the same events in batches of opposite orders (a
// redelivered copy) both commit: the rows are locked in one order, so one
// transaction waits for the other instead of each for the other, which
// Postgres would break by failing one as a deadlock.
func TestBatchesInOppositeOrdersBothCommit(t *testing.T) {
	t.Parallel()
	d, pool := queue(t)
	ctx := context.Background()
	for round := range 10 {
		var batch []postgres.Delivery
		for i := range 20 {
			for _, ch := range []string{"slack", "telegram"} {
				batch = append(batch, postgres.Delivery{
					EventID: fmt.Sprintf("r%d-e%02d", round, i), Channel: ch, Subject: "incident.opened", Target: "chat",
					Payload: []byte("event"), OccurredAt: time.Now(),
				})
			}
		}
		reversed := slices.Clone(batch)
		slices.Reverse(reversed)
		// Both transactions have begun before either queues anything.
		var begun, done sync.WaitGroup
		begun.Add(2)
		start := make(chan struct{})
		errs := make([]error, 2)
		for i, ds := range [][]postgres.Delivery{batch, reversed} {
			done.Go(func() {
				errs[i] = db.InTx(ctx, pool, func(tx pgx.Tx) error {
					_, err := tx.Exec(ctx, `SELECT 1`)
					begun.Done()
					<-start
					if err != nil {
						return err
					}
					return d.Enqueue(ctx, tx, ds...)
				})
			})
		}
		begun.Wait()
		close(start)
		done.Wait()
		require.NoError(t, errors.Join(errs...), "round %d", round)
	}
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM deliveries`).Scan(&n))
	assert.Equal(t, 10*20*2, n, "each event once per channel")
}
