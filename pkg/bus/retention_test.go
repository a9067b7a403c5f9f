package bus_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// runUntilStopped runs c until stop is called or the test ends; stop waits
// for Run to return and requires nil.
func runUntilStopped(t *testing.T, c *bus.Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return stop
}

func newConsumer(t *testing.T, js jetstream.JetStream, cfg bus.ConsumerConfig, h bus.BatchHandler, m *bus.Metrics) *bus.Consumer {
	t.Helper()
	c, err := bus.NewConsumer(js, cfg, h, testkit.Logger(t), m)
	require.NoError(t, err)
	return c
}

// Every stream is provisioned with an age and a size limit, the defaults
// unless the options override them.
func TestProvisionLimitsEveryStream(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	require.NoError(t, bus.Provision(ctx, js, bus.StreamOptions{})) // the defaults
	const day = 24 * time.Hour
	want := map[string][2]int64{
		"ALERTS":    {int64(day), 4 << 30},
		"INCIDENTS": {int64(7 * day), 512 << 20},
		"ANALYSES":  {int64(7 * day), 256 << 20},
		"REPAIRS":   {int64(7 * day), 256 << 20},
		"APPS":      {int64(7 * day), 256 << 20},
		"DEPLOYS":   {int64(7 * day), 256 << 20},
		"DLQ":       {int64(30 * day), 512 << 20},
	}
	require.Len(t, bus.Streams, len(want))
	for _, s := range bus.Streams {
		stream, err := js.Stream(ctx, s.Name)
		require.NoError(t, err)
		cfg := stream.CachedInfo().Config
		assert.Equal(t, time.Duration(want[s.Name][0]), cfg.MaxAge, s.Name)
		assert.Equal(t, want[s.Name][1], cfg.MaxBytes, s.Name)
		discard := jetstream.DiscardOld
		if s.Name == "ALERTS" {
			// Full, it refuses new alerts (the gateway answers 503)
			// rather than drop ones monitor may not have read.
			discard = jetstream.DiscardNew
		}
		assert.Equal(t, discard, cfg.Discard, s.Name)
		assert.Equal(t, jetstream.LimitsPolicy, cfg.Retention, s.Name)
	}

	require.NoError(t, bus.Provision(ctx, js, bus.StreamOptions{MaxAge: time.Minute, MaxBytes: 64 << 20}))
	for _, s := range bus.Streams {
		stream, err := js.Stream(ctx, s.Name)
		require.NoError(t, err)
		cfg := stream.CachedInfo().Config
		assert.Equal(t, time.Minute, cfg.MaxAge, s.Name)
		assert.Equal(t, int64(64<<20), cfg.MaxBytes, s.Name)
		assert.Equal(t, time.Minute, cfg.Duplicates, "%s: the dedup window never outlives the events", s.Name)
	}
}

// A stream an older version created without limits gets them at the next
// start, and keeps its events.
func TestProvisionLimitsStreamsOfOlderVersions(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	require.NoError(t, bus.NewPublisher(js, nil).Publish(ctx, fired("kept")))
	for _, s := range bus.Streams {
		stream, err := js.Stream(ctx, s.Name)
		require.NoError(t, err)
		cfg := stream.CachedInfo().Config
		cfg.MaxAge, cfg.MaxBytes, cfg.Discard = 0, -1, jetstream.DiscardOld
		_, err = js.UpdateStream(ctx, cfg)
		require.NoError(t, err)
	}

	require.NoError(t, bus.Provision(ctx, js, bus.StreamOptions{}))
	for _, s := range bus.Streams {
		stream, err := js.Stream(ctx, s.Name)
		require.NoError(t, err)
		assert.NotZero(t, stream.CachedInfo().Config.MaxAge, s.Name)
		assert.Positive(t, stream.CachedInfo().Config.MaxBytes, s.Name)
	}
	alerts, err := js.Stream(ctx, "ALERTS")
	require.NoError(t, err)
	assert.Equal(t, jetstream.DiscardNew, alerts.CachedInfo().Config.Discard, "an older ALERTS stream refuses new alerts when full from now on")
	assert.Equal(t, uint64(1), streamMsgs(t, js, "ALERTS"))
}

// A consumer created for the first time starts at new events: what was
// stored before it existed is not replayed to it.
func TestNewConsumerStartsAtNewEvents(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	pub := bus.NewPublisher(js, nil)
	require.NoError(t, pub.Publish(ctx, fired("before")))

	rec := &recorder{}
	r := rec.router(false)
	// Run creates it (no Create first).
	runUntilStopped(t, newConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: r.Subjects()}, bus.Handler(r, struct{}{}), nil))
	require.Eventually(t, func() bool {
		_, err := js.Consumer(ctx, "ALERTS", "t")
		return err == nil
	}, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, pub.Publish(ctx, fired("after")))
	// Handled, then settled (waitSettled alone can look before the
	// consumer has counted the new event as pending).
	require.Eventually(t, func() bool {
		seen, _ := rec.snapshot()
		return len(seen) > 0
	}, 30*time.Second, 10*time.Millisecond)
	waitSettled(t, js, "t")

	// "before" is earlier in the stream: had the consumer started there, it
	// would have been handed over before "after".
	seen, _ := rec.snapshot()
	assert.Equal(t, []string{"fired:after"}, seen)
}

// With StartWithin, a consumer created for the first time starts at the
// events stored within that window, not before.
func TestNewConsumerStartsWithinWindow(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	pub := bus.NewPublisher(js, nil)
	require.NoError(t, pub.Publish(ctx, fired("old-1"), fired("old-2")))
	mark := time.Now() // after the old events were stored
	// The consumer reads its clock a moment after the test computes the
	// window from mark; the new events are stored a while after mark, so
	// that moment cannot push the window's start past them.
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, pub.Publish(ctx, fired("new-1"), fired("new-2")))

	rec := &recorder{}
	r := rec.router(false)
	c := newConsumer(t, js, bus.ConsumerConfig{
		Name: "t", Subjects: r.Subjects(), StartWithin: time.Since(mark),
	}, bus.Handler(r, struct{}{}), nil)
	require.NoError(t, c.Create(ctx))
	runUntilStopped(t, c)
	waitSettled(t, js, "t")
	seen, _ := rec.snapshot()
	assert.Equal(t, []string{"fired:new-1", "fired:new-2"}, seen)
}

// A durable consumer an older version created (deliver all, its own
// limits) keeps its position and deliver policy; only the fields the
// configuration owns are updated.
func TestExistingConsumerKeepsItsPosition(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	old, err := js.CreateOrUpdateConsumer(ctx, "ALERTS", jetstream.ConsumerConfig{
		Durable:        "t",
		FilterSubjects: []string{bus.SubjectAlertFired},
		AckPolicy:      jetstream.AckExplicitPolicy,
		MaxDeliver:     5,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	require.NoError(t, err)
	pub := bus.NewPublisher(js, nil)
	require.NoError(t, pub.Publish(ctx, fired("done-before")))
	require.NoError(t, pub.Publish(ctx, fired("pending")))
	// The older version handled the first event.
	ackFirst(t, old, 1)

	rec := &recorder{}
	r := rec.router(false)
	c := newConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: r.Subjects()}, bus.Handler(r, struct{}{}), nil)
	require.NoError(t, c.Create(ctx))
	runUntilStopped(t, c)
	require.NoError(t, pub.Publish(ctx, fired("after")))
	require.Eventually(t, func() bool {
		seen, _ := rec.snapshot()
		return len(seen) >= 2
	}, 10*time.Second, 10*time.Millisecond)
	waitSettled(t, js, "t")

	seen, _ := rec.snapshot()
	assert.Equal(t, []string{"fired:pending", "fired:after"}, seen)
	info, err := js.Consumer(ctx, "ALERTS", "t")
	require.NoError(t, err)
	cfg := info.CachedInfo().Config
	assert.Equal(t, jetstream.DeliverAllPolicy, cfg.DeliverPolicy)
	assert.Equal(t, 11, cfg.MaxDeliver, "ours (10) plus the one that dead-letters a delivery whose handler died")
	assert.ElementsMatch(t, []string{bus.SubjectAlertFired, bus.SubjectAlertBatched}, cfg.FilterSubjects)
}

// An event older than MaxEventAge (alone or inside an EventBatch) is
// acknowledged without reaching the handler, and counted.
func TestMaxEventAgeSkipsStaleEvents(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	rec := &recorder{}
	r := rec.router(false)
	c := newConsumer(t, js, bus.ConsumerConfig{
		Name: "t", Subjects: r.Subjects(), MaxEventAge: time.Hour,
	}, bus.Handler(r, struct{}{}), bus.NewMetrics(reg))
	require.NoError(t, c.Create(ctx))
	runUntilStopped(t, c)

	stale := func(fp string) bus.Event {
		e := fired(fp)
		e.Meta.OccurredAt = timestamppb.New(time.Now().Add(-2 * time.Hour))
		return e
	}
	pub := bus.NewPublisher(js, nil)
	require.NoError(t, pub.Publish(ctx, stale("stale"), fired("fresh")))
	require.NoError(t, pub.PublishBatched(ctx, "test", encodeAll(t, fired("fresh-in-batch"), stale("stale-in-batch"))...))
	require.Equal(t, uint64(3), streamMsgs(t, js, "ALERTS"), "two events alone and one envelope")
	require.Eventually(t, func() bool {
		seen, _ := rec.snapshot()
		return len(seen) >= 2
	}, 10*time.Second, 10*time.Millisecond)
	waitSettled(t, js, "t")

	seen, _ := rec.snapshot()
	assert.Equal(t, []string{"fired:fresh", "fired:fresh-in-batch"}, seen)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vigil_bus_stale_events_total Deliveries acknowledged without handling because their event was older than the consumer's max event age, by consumer and subject.
# TYPE vigil_bus_stale_events_total counter
vigil_bus_stale_events_total{consumer="t",subject="alert.fired"} 2
# HELP vigil_bus_handled_total Deliveries handled by consumers, by consumer and outcome (ack, retry, dead_letter, stopped).
# TYPE vigil_bus_handled_total counter
vigil_bus_handled_total{consumer="t",outcome="ack"} 4
`), "vigil_bus_stale_events_total", "vigil_bus_handled_total"))
	assert.Equal(t, uint64(0), streamMsgs(t, js, "DLQ"))
}

// A handler that sees its consumer stopping between units of work answers
// ErrStopped for the deliveries it did not start: Run returns without
// starting another batch, and those messages go back at once, not as
// failures (no dead letter even past MaxDeliver), to be handled by the next
// run.
func TestStoppedDeliveriesAreHandledByTheNextRun(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	cfg := bus.ConsumerConfig{Name: "t", Subjects: []string{bus.SubjectAlertFired}, MaxDeliver: 1}

	runCtx, cancel := context.WithCancel(ctx)
	var calls, handled int
	var stoppingAtStart, stoppingAfterCancel bool
	first := newConsumer(t, js, cfg, bus.BatchHandlerFunc(func(ctx context.Context, ds []*bus.Delivery) []error {
		calls++
		errs := make([]error, len(ds))
		if calls > 1 || len(ds) < 5 {
			t.Errorf("call %d of the handler, with %d deliveries: want one call with the envelope's five at least", calls, len(ds))
			for i := range errs {
				errs[i] = bus.ErrStopped
			}
			return errs
		}
		stoppingAtStart = bus.Stopping(ctx)
		handled++ // ds[0]: a unit of work completed
		cancel()  // the process is told to stop meanwhile
		stoppingAfterCancel = bus.Stopping(ctx) && bus.Stopping(ds[1].Context())
		for i := 1; i < len(ds); i++ {
			if bus.Stopping(ctx) {
				errs[i] = fmt.Errorf("alert %s: %w", ds[i].Event.GetMeta().GetId(), bus.ErrStopped)
			}
		}
		return errs
	}), nil)
	require.NoError(t, first.Create(ctx))
	var fps []string
	var events []bus.Event
	for i := range 5 {
		fps = append(fps, fmt.Sprint("a-", i))
		events = append(events, fired(fps[i]))
	}
	pub := bus.NewPublisher(js, nil)
	// One envelope: the first batch surely holds all five (and maybe the
	// late one).
	require.NoError(t, pub.PublishBatched(ctx, "test", encodeAll(t, events...)...))
	require.NoError(t, pub.Publish(ctx, fired("late")))

	done := make(chan error, 1)
	go func() { done <- first.Run(runCtx) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
	assert.False(t, stoppingAtStart)
	assert.True(t, stoppingAfterCancel)
	assert.Equal(t, 1, calls, "no batch starts once the consumer is stopping")
	assert.Equal(t, 1, handled)

	// The next run (another replica, or the next start) gets it all.
	rec := &recorder{}
	r := rec.router(false)
	var mu sync.Mutex
	attempts := map[string]int{}
	h := bus.Handler(r, struct{}{})
	runUntilStopped(t, newConsumer(t, js, cfg, bus.BatchHandlerFunc(func(ctx context.Context, ds []*bus.Delivery) []error {
		mu.Lock()
		for _, d := range ds {
			attempts[d.Subject+" "+d.Event.GetMeta().GetId()] = d.Attempt
		}
		mu.Unlock()
		return h.HandleBatch(ctx, ds)
	}), nil))
	// What the first run gave back is redelivered at once (no AckWait, no
	// backoff): the bound only ends a run in which something was lost.
	require.Eventually(t, func() bool {
		seen, _ := rec.snapshot()
		return len(seen) >= 6
	}, time.Minute, 10*time.Millisecond)
	waitSettled(t, js, "t")

	seen, _ := rec.snapshot()
	want := []string{"fired:late"}
	for _, fp := range fps {
		want = append(want, "fired:"+fp)
	}
	// The envelope comes whole again (a-0 too: a handler's inbox skips
	// what it did), nothing is lost, and nothing was dead-lettered though
	// MaxDeliver is 1.
	assert.ElementsMatch(t, want, seen)
	assert.Equal(t, uint64(0), streamMsgs(t, js, "DLQ"))
	mu.Lock()
	defer mu.Unlock()
	for _, e := range events {
		assert.Equal(t, 2, attempts[bus.SubjectAlertFired+" "+e.GetMeta().GetId()], "delivered a second time")
	}
}

// Outside a consumer, Stopping is whether the context is done.
func TestStoppingOutsideAConsumer(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	assert.False(t, bus.Stopping(ctx))
	cancel()
	assert.True(t, bus.Stopping(ctx))
}

// With two workers a consumer handles two batches at once: the first batch
// is held until a second one reaches the handler, which one worker alone
// could never do.
func TestWorkersHandleBatchesAtOnce(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	ctx := context.Background()
	cfg := bus.ConsumerConfig{Name: "t", Subjects: []string{bus.SubjectAlertFired}, BatchSize: 1, Workers: 2}
	var (
		mu      sync.Mutex
		handled = map[string]bool{}
		calls   int
	)
	second := make(chan struct{})
	c := newConsumer(t, js, cfg, bus.BatchHandlerFunc(func(_ context.Context, ds []*bus.Delivery) []error {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch n {
		case 1:
			select {
			case <-second: // the other worker took the next batch meanwhile
			case <-time.After(30 * time.Second):
				t.Error("the second batch did not start while the first was in hand")
			}
		case 2:
			close(second)
		}
		mu.Lock()
		for _, d := range ds {
			handled[d.Event.GetMeta().GetId()] = true
		}
		mu.Unlock()
		return make([]error, len(ds))
	}), nil)
	require.NoError(t, c.Create(ctx))
	pub := bus.NewPublisher(js, nil)
	var ids []string
	for i := range 10 {
		e := fired(fmt.Sprint("w-", i))
		ids = append(ids, e.GetMeta().GetId())
		require.NoError(t, pub.Publish(ctx, e))
	}
	runUntilStopped(t, c)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == len(ids)
	}, 30*time.Second, 10*time.Millisecond)
	for _, id := range ids {
		assert.True(t, handled[id], id)
	}
}
