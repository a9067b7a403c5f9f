package bus_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// Published events are counted by stream and subject, and a durable
// consumer's lag is what JetStream says waits for it: the three events
// published while it was not running, none once it has handled them.
func TestConsumerStateMetrics(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	m := bus.NewMetrics(reg)
	rec := &recorder{}
	c := newConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: rec.router(false).Subjects()}, bus.Handler(rec.router(false), struct{}{}), m)
	state := func(pending, ackPending int) string {
		return strings.NewReplacer("PENDING", strconv.Itoa(pending), "ACKPEND", strconv.Itoa(ackPending)).Replace(`
# HELP vigil_bus_consumer_pending Events of the stream that match the durable consumer and were not delivered yet: its lag.
# TYPE vigil_bus_consumer_pending gauge
vigil_bus_consumer_pending{consumer="t",stream="ALERTS"} PENDING
# HELP vigil_bus_consumer_ack_pending Deliveries of the durable consumer that are out and not yet acknowledged.
# TYPE vigil_bus_consumer_ack_pending gauge
vigil_bus_consumer_ack_pending{consumer="t",stream="ALERTS"} ACKPEND
`)
	}
	names := []string{"vigil_bus_consumer_pending", "vigil_bus_consumer_ack_pending"}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(""), names...), "not created: nothing to say")

	require.NoError(t, c.Create(ctx))
	pub := bus.NewPublisher(js, m)
	require.NoError(t, pub.Publish(ctx, fired("a"), fired("b"), fired("c")))
	settles := func(want string) {
		t.Helper()
		require.Eventually(t, func() bool {
			return testutil.GatherAndCompare(reg, strings.NewReader(want), names...) == nil
		}, 10*time.Second, 20*time.Millisecond, want)
	}
	settles(state(3, 0))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vigil_bus_published_total Events stored on JetStream, by stream and subject.
# TYPE vigil_bus_published_total counter
vigil_bus_published_total{stream="ALERTS",subject="alert.fired"} 3
`), "vigil_bus_published_total"))

	runUntilStopped(t, c)
	settles(state(0, 0))
	seen, _ := rec.snapshot()
	require.Len(t, seen, 3)
}
