package bus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) {
	// Re-executed by TestCrashedConsumersWorkIsTakenOver as the replica
	// it kills.
	if url := os.Getenv(crashingConsumerEnv); url != "" {
		holdUntilKilled(url)
	}
	testkit.Main(m)
}

func fired(fp string) *eventsv1.AlertFired {
	return &eventsv1.AlertFired{
		Meta:  bus.NewMeta("test", nil),
		Alert: &typesv1.Alert{Fingerprint: fp, Labels: map[string]string{"alertname": fp}, StartsAt: timestamppb.Now()},
	}
}

// runConsumer runs a consumer until the test ends. The durable consumer
// exists when it returns, so what the test publishes next reaches it; unless
// cfg says otherwise it starts an hour back, at everything the test stored
// before on its fresh server.
func runConsumer(t *testing.T, js jetstream.JetStream, cfg bus.ConsumerConfig, h bus.BatchHandler) {
	t.Helper()
	if cfg.StartWithin == 0 {
		cfg.StartWithin = time.Hour
	}
	c, err := bus.NewConsumer(js, cfg, h, testkit.Logger(t), nil)
	require.NoError(t, err)
	require.NoError(t, c.Create(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
}

// A published event republished with the same id is stored once, alone
// or in a batch.
func TestPublishDeduplicatesByEventID(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	pub := bus.NewPublisher(js, nil)
	e := fired("a")
	require.NoError(t, pub.Publish(context.Background(), e, fired("b")))
	require.NoError(t, pub.Publish(context.Background(), e))
	// A batch repeating a stored event (a relay's republish after a crash)
	// still stores its new events, and the repeat once.
	batch := []bus.Event{e}
	for i := range 20 {
		batch = append(batch, fired(fmt.Sprint("new-", i)))
	}
	require.NoError(t, pub.Publish(context.Background(), batch...))
	info, err := js.Stream(context.Background(), "ALERTS")
	require.NoError(t, err)
	assert.Equal(t, uint64(22), info.CachedInfo().State.Msgs)
}

// A handler's permanent error terminates the message and leaves a copy
// with the reason on dlq.<subject>; the other messages of the batch are
// acknowledged.
func TestPermanentErrorDeadLetters(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	pub := bus.NewPublisher(js, nil)

	var mu sync.Mutex
	handled := map[string]int{}
	r := bus.NewRouter[struct{}]()
	bus.On(r, func(_ context.Context, _ struct{}, e *eventsv1.AlertFired) error {
		mu.Lock()
		defer mu.Unlock()
		handled[e.GetAlert().GetFingerprint()]++
		if e.GetAlert().GetFingerprint() == "poison" {
			return bus.Permanent(errors.New("cannot ever work"))
		}
		return nil
	})
	runConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: r.Subjects()}, bus.Handler(r, struct{}{}))
	require.NoError(t, pub.Publish(context.Background(), fired("ok-1"), fired("poison"), fired("ok-2")))

	msg := nextDLQ(t, js)
	assert.Equal(t, "dlq.alert.fired", msg.Subject())
	assert.Equal(t, "cannot ever work", msg.Headers().Get("Vigil-Dlq-Reason"))
	assert.Equal(t, "t", msg.Headers().Get("Vigil-Dlq-Consumer"))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled["ok-1"] == 1 && handled["ok-2"] == 1
	}, 10*time.Second, 50*time.Millisecond)
	mu.Lock()
	assert.Equal(t, 1, handled["poison"], "a permanent error is not retried")
	mu.Unlock()
}

// A body that does not decode is dead-lettered without reaching a handler.
func TestUndecodableMessageDeadLetters(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	r := bus.NewRouter[struct{}]()
	bus.On(r, func(context.Context, struct{}, *eventsv1.AlertFired) error {
		t.Error("handler called for an undecodable message")
		return nil
	})
	runConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: r.Subjects()}, bus.Handler(r, struct{}{}))
	_, err := js.Publish(context.Background(), "alert.fired", []byte("\xff\xff not protobuf"))
	require.NoError(t, err)
	msg := nextDLQ(t, js)
	assert.Contains(t, msg.Headers().Get("Vigil-Dlq-Reason"), "decode")
}

// A transient error is retried until MaxDeliver, then dead-lettered.
func TestTransientErrorRetriesThenDeadLetters(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	var mu sync.Mutex
	attempts := 0
	r := bus.NewRouter[struct{}]()
	bus.On(r, func(context.Context, struct{}, *eventsv1.AlertFired) error {
		mu.Lock()
		attempts++
		mu.Unlock()
		return errors.New("database down")
	})
	runConsumer(t, js, bus.ConsumerConfig{
		Name: "t", Subjects: r.Subjects(), MaxDeliver: 3, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}, bus.Handler(r, struct{}{}))
	require.NoError(t, bus.NewPublisher(js, nil).Publish(context.Background(), fired("x")))
	msg := nextDLQ(t, js)
	assert.Contains(t, msg.Headers().Get("Vigil-Dlq-Reason"), "gave up after 3 deliveries: database down")
	mu.Lock()
	assert.Equal(t, 3, attempts)
	mu.Unlock()
}

// An event delivered again after it was handled changes nothing: the inbox
// records it in the same transaction as its effect.
func TestRedeliveredEventChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := servicePool(t)
	_, err := pool.Exec(ctx, `CREATE TABLE seen (fingerprint text NOT NULL)`)
	require.NoError(t, err)

	_, js := testkit.JetStream(t, testkit.NATS(t))
	r := bus.NewRouter[pgx.Tx]()
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.AlertFired) error {
		_, err := tx.Exec(ctx, `INSERT INTO seen VALUES ($1)`, e.GetAlert().GetFingerprint())
		return err
	})
	runConsumer(t, js, bus.ConsumerConfig{Name: "svc", Subjects: r.Subjects()}, outbox.NewHandler(pool, "svc", r))

	e := fired("once")
	// The same event twice, past JetStream's own dedup (a different
	// Nats-Msg-Id), as a republish after the duplicate window would be.
	data, err := bus.Encode(ctx, e)
	require.NoError(t, err)
	for _, id := range []string{"first-copy", "second-copy"} {
		m := data
		m.ID = id
		require.NoError(t, bus.NewPublisher(js, nil).PublishMessages(ctx, m))
	}
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&n))
		return n == 1
	}, 10*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		info, err := js.Consumer(ctx, "ALERTS", "svc")
		require.NoError(t, err)
		return info.CachedInfo().NumAckPending == 0 && info.CachedInfo().NumPending == 0
	}, 10*time.Second, 50*time.Millisecond)
	var seen int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM seen`).Scan(&seen))
	assert.Equal(t, 1, seen)
}

// Events added to the outbox in a transaction are published by the relay
// once it commits, and not at all when it rolls back.
func TestOutboxPublishesOnlyCommitted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := servicePool(t)
	_, js := testkit.JetStream(t, testkit.NATS(t))

	committed, rolledBack := fired("committed"), fired("rolled-back")
	require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error { return outbox.Add(ctx, tx, committed) }))
	require.Error(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
		require.NoError(t, outbox.Add(ctx, tx, rolledBack))
		return errors.New("the state change failed")
	}))
	relay := outbox.NewRelay(pool, bus.NewPublisher(js, nil), outbox.RelayOptions{Schema: "svc"}, testkit.Logger(t))
	n, err := relay.Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	n, err = relay.Flush(ctx)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "published rows are deleted")

	stream, err := js.Stream(ctx, "ALERTS")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), stream.CachedInfo().State.Msgs)
	msg, err := stream.GetLastMsgForSubject(ctx, "alert.fired")
	require.NoError(t, err)
	assert.Equal(t, committed.GetMeta().GetId(), msg.Header.Get(jetstream.MsgIDHeader))
}

func nextDLQ(t *testing.T, js jetstream.JetStream) jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := js.OrderedConsumer(ctx, "DLQ", jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	msg, err := c.Next(jetstream.FetchMaxWait(20 * time.Second))
	require.NoError(t, err, "nothing reached the DLQ")
	return msg
}

// servicePool is a pool on a fresh database whose schema "svc" has the
// outbox and inbox tables, as a service's would.
func servicePool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), testkit.Postgres(t), "svc")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, outbox.Migrate(context.Background(), pool, "svc"))
	return pool
}

// Provisioning again with the same options changes nothing; with other
// options it updates the streams.
func TestProvisionAppliesChangedOptions(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t)) // provisioned with defaults
	ctx := context.Background()
	require.NoError(t, bus.Provision(ctx, js, bus.StreamOptions{}))
	require.NoError(t, bus.Provision(ctx, js, bus.StreamOptions{MaxAge: time.Hour}))
	for _, s := range bus.Streams {
		stream, err := js.Stream(ctx, s.Name)
		require.NoError(t, err)
		assert.Equal(t, time.Hour, stream.CachedInfo().Config.MaxAge, s.Name)
		assert.True(t, stream.CachedInfo().Config.AllowAtomicPublish, s.Name)
	}
}
