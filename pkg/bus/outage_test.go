package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// A batch held while Postgres is down is tried again in place, and each
// such try is a later attempt of its events, though JetStream delivered
// the message once: a handler that committed part of its work before the
// outage cut it off (deploy claims a deployment, then runs it) knows to
// resume it. Nothing is dead-lettered or redelivered meanwhile.
func TestHeldTriesAreLaterAttempts(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	var (
		mu   sync.Mutex
		seen []int
	)
	down := fmt.Errorf("claim: %w", &pgconn.PgError{Code: "57P01", Message: "terminating connection due to administrator command"})
	h := bus.BatchHandlerFunc(func(_ context.Context, ds []*bus.Delivery) []error {
		mu.Lock()
		defer mu.Unlock()
		errs := make([]error, len(ds))
		for i, d := range ds {
			seen = append(seen, d.Attempt)
			if len(seen) < 3 {
				errs[i] = down
			}
		}
		return errs
	})
	runConsumer(t, js, bus.ConsumerConfig{
		Name: "t", Subjects: []string{bus.SubjectAlertFired}, MaxDeliver: 2,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}, h)
	require.NoError(t, bus.NewPublisher(js, nil).Publish(context.Background(), fired("x")))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 3
	}, 30*time.Second, 10*time.Millisecond)
	waitSettled(t, js, "t")
	mu.Lock()
	assert.Equal(t, []int{1, 2, 3}, seen, "tries in place count as attempts")
	mu.Unlock()
	cons, err := js.Consumer(context.Background(), "ALERTS", "t")
	require.NoError(t, err)
	info, err := cons.Info(context.Background())
	require.NoError(t, err)
	assert.Equal(t, uint64(1), info.Delivered.Consumer, "delivered once: more tries than MaxDeliver, yet no dead letter")
}
