package outbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
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

// The outbox metrics show what was committed and waits to be published,
// and how old the oldest of it is, until the relay has published it; a
// schema without an outbox exports nothing.
func TestOutboxMetricsShowWhatWaits(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dsn := testkit.Postgres(t)
	pool, err := db.Open(ctx, dsn, "svc")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, outbox.Migrate(ctx, pool, "svc"))
	none, err := db.Open(ctx, dsn, "other")
	require.NoError(t, err)
	t.Cleanup(none.Close)

	reg := prometheus.NewRegistry()
	reg.MustRegister(outbox.Collector(pool, "svc"), outbox.Collector(none, "other"))
	gauges := func() map[string]float64 {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					out[mf.GetName()+"/"+l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
		return out
	}
	assert.Equal(t, map[string]float64{
		"vigil_outbox_pending_events/svc": 0, "vigil_outbox_oldest_event_age_seconds/svc": 0,
	}, gauges(), "nothing waits; the schema without an outbox is left out")

	start := time.Now()
	require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
		for _, fp := range []string{"a", "b", "c"} {
			if err := outbox.Add(ctx, tx, fired(fp)); err != nil {
				return err
			}
		}
		return nil
	}))
	require.Eventually(t, func() bool { return gauges()["vigil_outbox_oldest_event_age_seconds/svc"] > 0 }, 10*time.Second, 50*time.Millisecond)
	g := gauges()
	assert.InDelta(t, 3, g["vigil_outbox_pending_events/svc"], 0)
	assert.LessOrEqual(t, g["vigil_outbox_oldest_event_age_seconds/svc"], time.Since(start).Seconds()+1, "no older than the events")

	_, js := testkit.JetStream(t, testkit.NATS(t))
	relay := outbox.NewRelay(pool, bus.NewPublisher(js, nil), outbox.RelayOptions{Schema: "svc"}, testkit.Logger(t))
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- relay.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})
	require.Eventually(t, func() bool { return gauges()["vigil_outbox_pending_events/svc"] == 0 }, 30*time.Second, 50*time.Millisecond)
	assert.Zero(t, gauges()["vigil_outbox_oldest_event_age_seconds/svc"])
}

func fired(fp string) *eventsv1.AlertFired {
	return &eventsv1.AlertFired{Meta: bus.NewMeta("test", nil), Alert: &typesv1.Alert{
		Fingerprint: fp, Labels: map[string]string{"alertname": fp}, StartsAt: timestamppb.Now(),
	}}
}
