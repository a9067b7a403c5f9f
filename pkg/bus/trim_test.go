package bus_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// ALERTS keeps only what waits: on the real nats-server with the shipped
// configuration, a full ALERTS refuses alerts, and once monitor (as its own
// NATS user) has handled them it drops them and takes alerts again. It
// never drops what a consumer has not acknowledged: with a second consumer
// behind, it drops exactly what both have acknowledged.
func TestAlertsKeepOnlyWhatWaits(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	b := testkit.ExternalNATS(t)
	_, admin := b.Conn(t, bus.UserAdmin)
	// A small stream, to fill.
	require.NoError(t, bus.Provision(ctx, admin, bus.StreamOptions{MaxBytes: 64 << 10}))
	_, gw := b.Conn(t, "gateway")
	pub := bus.NewPublisher(gw, nil)
	_, mon := b.Conn(t, "monitor")

	// A consumer that reads everything and acknowledges only what the
	// test says, created before anything is published.
	audit, err := admin.CreateConsumer(ctx, "ALERTS", jetstream.ConsumerConfig{
		Durable: "audit", AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	require.NoError(t, err)

	sent := 0
	for {
		err := pub.Publish(ctx, fired(fmt.Sprintf("a%d", sent)))
		if err != nil {
			require.ErrorIs(t, err, bus.ErrStreamFull)
			break
		}
		sent++
	}
	require.Greater(t, sent, 50, "the stream took some alerts before it was full")

	rec := &recorder{}
	r := rec.router(false)
	reg := prometheus.NewRegistry()
	m := bus.NewMetrics(reg)
	c := newConsumer(t, mon, bus.ConsumerConfig{Name: "monitor", Subjects: r.Subjects(), StartWithin: time.Hour}, bus.Handler(r, struct{}{}), m)
	runUntilStopped(t, c)
	require.Eventually(t, func() bool {
		seen, _ := rec.snapshot()
		return len(seen) == sent
	}, time.Minute, 50*time.Millisecond, "monitor handles every alert")
	waitSettled(t, mon, "monitor")

	stream, err := admin.Stream(ctx, "ALERTS")
	require.NoError(t, err)
	state := func() jetstream.StreamState {
		info, err := stream.Info(ctx)
		require.NoError(t, err)
		return info.State
	}
	first := state().FirstSeq

	// audit acknowledges its first k, in order: its floor is where
	// dropping stops, though monitor acknowledged everything.
	const k = 20
	ackFirst(t, audit, k)
	require.Eventually(t, func() bool { return state().FirstSeq == first+k }, time.Minute, 100*time.Millisecond,
		"what both consumers acknowledged is dropped")
	assert.Equal(t, uint64(sent-k), state().Msgs, "what audit has not acknowledged is kept")

	// Without audit, everything was acknowledged by every consumer: the
	// stream empties and takes alerts again.
	require.NoError(t, admin.DeleteConsumer(ctx, "ALERTS", "audit"))
	require.Eventually(t, func() bool { return counter(t, reg, "vigil_bus_trimmed_total") == float64(sent) },
		time.Minute, 100*time.Millisecond, "the counter is what was dropped")
	assert.Zero(t, state().Msgs)
	assert.Zero(t, counter(t, reg, "vigil_bus_trim_errors_total"))
	require.NoError(t, pub.Publish(ctx, fired("room-again")))
	require.Eventually(t, func() bool {
		seen, _ := rec.snapshot()
		return len(seen) == sent+1
	}, time.Minute, 50*time.Millisecond)
}

// ackFirst acknowledges the next n messages of c, in order, as a
// consumer outside Vigil (or an older version) would.
func ackFirst(t *testing.T, c jetstream.Consumer, n int) {
	t.Helper()
	batch, err := c.Fetch(n, jetstream.FetchMaxWait(10*time.Second))
	require.NoError(t, err)
	acked := 0
	for m := range batch.Messages() {
		require.NoError(t, m.DoubleAck(t.Context()))
		acked++
	}
	require.NoError(t, batch.Error())
	require.Equal(t, n, acked)
}

// counter is the value of the counter name of reg (summed over labels).
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}
