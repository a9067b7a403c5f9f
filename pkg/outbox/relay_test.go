package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// A relay through a Postgres outage publishes what was committed before
// and after it, and says so in one line when its failures begin and one
// when they end, per step -- not at every retry.
func TestRelayLogsAnOutageOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := testkit.OwnPostgres(t)
	pool, err := db.Open(ctx, pg.DSN("postgres"), "svc")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, outbox.Migrate(ctx, pool, "svc"))
	_, js := testkit.JetStream(t, testkit.NATS(t))
	logs := &testkit.Logs{}
	relay := outbox.NewRelay(pool, bus.NewPublisher(js, nil), outbox.RelayOptions{Schema: "svc", PollInterval: 100 * time.Millisecond}, logs.Logger())
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- relay.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	add := func(fp string) {
		require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, fired(fp)) }))
	}
	published := func(n uint64) func() bool {
		return func() bool {
			s, err := js.Stream(ctx, "ALERTS")
			return err == nil && s.CachedInfo().State.Msgs == n
		}
	}
	add("before")
	require.Eventually(t, published(1), 30*time.Second, 50*time.Millisecond)

	pg.Stop()
	// Down until both steps have failed, then several retries more.
	var lines []map[string]any
	require.Eventually(t, func() bool {
		lines = append(lines, logs.Take(t)...)
		failing := count(lines, "failing: retrying until it succeeds")
		return failing["publish"] > 0 && failing["listen"] > 0
	}, time.Minute, 100*time.Millisecond, "both steps fail while Postgres is down")
	time.Sleep(3 * time.Second)
	pg.Start()
	add("after")
	require.Eventually(t, published(2), time.Minute, 50*time.Millisecond)
	// The message is out before the step that published it logs its
	// recovery (the publish is inside the transaction it commits after).
	require.Eventually(t, func() bool {
		lines = append(lines, logs.Take(t)...)
		recovered := count(lines, "recovered")
		return recovered["publish"] > 0 && recovered["listen"] > 0
	}, time.Minute, 100*time.Millisecond, "both steps say they are back")
	assert.Equal(t, map[string]int{"publish": 1, "listen": 1}, count(lines, "failing: retrying until it succeeds"))
	assert.Equal(t, map[string]int{"publish": 1, "listen": 1}, count(lines, "recovered"))
	assert.Empty(t, count(lines, "still failing"))
}

// count is how many lines of logs say msg, by their step.
func count(logs []map[string]any, msg string) map[string]int {
	n := map[string]int{}
	for _, l := range logs {
		if l["msg"] == msg {
			n[l["step"].(string)]++
		}
	}
	return n
}

// Every delivery of a batch the handler could not handle because Postgres
// is down fails as unavailable, which the consumer holds (never as a
// failure of the event, which it would count toward the dead letter).
func TestHandlerFailsUnavailableWhilePostgresIsDown(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := testkit.OwnPostgres(t)
	pool, err := db.Open(ctx, pg.DSN("postgres"), "svc")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, outbox.Migrate(ctx, pool, "svc"))
	r := bus.NewRouter[pgx.Tx]()
	bus.On(r, func(context.Context, pgx.Tx, *eventsv1.AlertFired) error { return nil })
	h := outbox.NewHandler(pool, "svc", r)
	ds := []*bus.Delivery{
		{Subject: bus.SubjectAlertFired, Event: &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil)}},
		{Subject: bus.SubjectAlertFired, Event: &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil)}},
	}
	pg.Stop()
	for _, err := range h.HandleBatch(ctx, ds) {
		require.Error(t, err)
		require.True(t, db.Unavailable(err), "%v", err)
		require.False(t, bus.IsPermanent(err))
	}
	pg.Start()
	for _, err := range h.HandleBatch(ctx, ds) {
		require.NoError(t, err, "the same batch, once Postgres is back")
	}
}
