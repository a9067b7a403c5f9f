package intake_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
)

// TestPostgresOutageDeadLettersNothing stops Postgres under a real
// consumer for many times what its retry budget (5 deliveries, backoff
// 50-400 ms: about a second) would have allowed before dead-lettering:
// every alert is stored once when it is back, one incident per group, and
// the only dead letter is the one alert that can never be stored (it
// violates a constraint): split out of its chunk alone, as before.
func TestPostgresOutageDeadLettersNothing(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pg := testkit.OwnPostgres(t)
	pool := monitortest.PoolAt(t, pg.DSN("postgres"))
	_, err := pool.Exec(ctx, `ALTER TABLE alerts ADD CONSTRAINT no_poison CHECK (fingerprint <> 'poison')`)
	require.NoError(t, err)
	f := &fixture{pool: pool, clock: &clock{t: time.Now().UTC()}, t0: time.Now().UTC().Add(-time.Hour)}
	h, _ := f.handler(t, time.Second, 16)

	_, js := testkit.JetStream(t, testkit.NATS(t))
	reg := prometheus.NewRegistry()
	metrics := bus.NewMetrics(reg)
	c, err := bus.NewConsumer(js, bus.ConsumerConfig{
		Name: "monitor", Subjects: []string{bus.SubjectAlertFired, bus.SubjectAlertResolved},
		BatchSize: 50, MaxDeliver: 5, MinBackoff: 50 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
		// Held batches must be kept in progress: an expired ack wait
		// would redeliver them and use up their deliveries.
		AckWait: 3 * time.Second, Workers: 2,
	}, h, testkit.Logger(t), metrics)
	require.NoError(t, err)
	require.NoError(t, c.Create(ctx))
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	const groups, perGroup = 20, 10
	pub := bus.NewPublisher(js, metrics)
	publish := func(from, to int, poison bool) {
		var msgs []bus.Message
		for g := range groups {
			for i := from; i < to; i++ {
				m, err := bus.Encode(ctx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: f.alert(g, i)})
				require.NoError(t, err)
				msgs = append(msgs, m)
			}
		}
		if poison {
			a := f.alert(0, 99)
			a.Fingerprint = "poison"
			m, err := bus.Encode(ctx, &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: a})
			require.NoError(t, err)
			msgs = append(msgs, m)
		}
		// Half as single events, half in EventBatch envelopes.
		require.NoError(t, pub.PublishMessages(ctx, msgs[:len(msgs)/2]...))
		require.NoError(t, pub.PublishBatched(ctx, "test", msgs[len(msgs)/2:]...))
	}
	stored := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM alerts`).Scan(&n); err != nil {
			return -1
		}
		return n
	}

	publish(0, perGroup/2, false)
	require.Eventually(t, func() bool { return stored() == groups*perGroup/2 }, time.Minute, 50*time.Millisecond)

	pg.Stop()
	publish(perGroup/2, perGroup, true)
	waiting := func() float64 {
		return metric(t, reg, "vigil_bus_dependency_waiting_events")
	}
	require.Eventually(t, func() bool { return waiting() > 0 }, 30*time.Second, 50*time.Millisecond,
		"the consumer holds the batch while Postgres is down")
	// Many times the old budget, and several ack waits.
	time.Sleep(15 * time.Second)
	requireNoDeadLetters(t, js, 0)
	pg.Start()

	require.Eventually(t, func() bool { return stored() == groups*perGroup }, time.Minute, 100*time.Millisecond)
	require.Eventually(t, func() bool { return waiting() == 0 }, 30*time.Second, 50*time.Millisecond)
	incs := f.incidents(t)
	require.Len(t, incs, groups, "one incident per group")
	for _, inc := range incs {
		assert.Equal(t, int32(perGroup), inc.GetAlertCount(), "incident %s", inc.GetId())
	}
	monitortest.RequireCountersMatch(t, pool)
	var inbox int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM processed_events WHERE consumer = 'monitor'`).Scan(&inbox))
	assert.Equal(t, groups*perGroup, inbox, "every event handled once; the poison one never")

	// The poison alert alone, after its five deliveries, once Postgres
	// could say it is poison.
	requireNoDeadLetters(t, js, 1)
	assert.Positive(t, metric(t, reg, "vigil_bus_dependency_wait_seconds_total"))
	assert.Positive(t, metric(t, reg, "vigil_bus_dependency_retries_total"))
}

// requireNoDeadLetters checks that the DLQ stream holds want messages, and
// when it holds one that it is the poison alert.
func requireNoDeadLetters(t *testing.T, js jetstream.JetStream, want uint64) {
	t.Helper()
	ctx := t.Context()
	if want > 0 {
		require.Eventually(t, func() bool {
			s, err := js.Stream(ctx, "DLQ")
			return err == nil && s.CachedInfo().State.Msgs >= want
		}, time.Minute, 100*time.Millisecond)
	}
	s, err := js.Stream(ctx, "DLQ")
	require.NoError(t, err)
	require.Equal(t, want, s.CachedInfo().State.Msgs, "dead letters")
	if want == 0 {
		return
	}
	m, err := s.GetLastMsgForSubject(ctx, "dlq.>")
	require.NoError(t, err)
	es, err := bus.Decode(bus.SubjectAlertFired, m.Data)
	require.NoError(t, err)
	require.Len(t, es, 1)
	require.Equal(t, "poison", es[0].(*eventsv1.AlertFired).GetAlert().GetFingerprint())
	require.Contains(t, m.Header.Get("Vigil-Dlq-Reason"), "no_poison")
}

// metric sums the series of the metric family name in reg.
func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetGauge().GetValue() + m.GetCounter().GetValue()
			}
		}
	}
	return sum
}
