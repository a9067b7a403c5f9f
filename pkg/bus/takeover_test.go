package bus_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// crashingConsumerEnv, set to a NATS URL, makes the test binary the
// replica TestCrashedConsumersWorkIsTakenOver kills: it consumes as
// takeoverConsumer and never answers.
const crashingConsumerEnv = "VIGIL_TEST_CRASHING_CONSUMER_NATS"

// takeoverConsumer leaves AckWait at its default, which the test checks.
var takeoverConsumer = bus.ConsumerConfig{
	Name: "takeover", Subjects: []string{bus.SubjectAlertFired}, BatchSize: 10, StartWithin: time.Hour,
}

// holdUntilKilled consumes from url and holds every message it gets, in
// its handler and its queue, until the process is killed.
func holdUntilKilled(url string) {
	// Never outlives a test that failed before killing it.
	time.AfterFunc(2*time.Minute, func() { os.Exit(2) })
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx := context.Background()
	_, js, err := bus.Connect(ctx, url, "crashing", bus.Credentials{}, log)
	if err == nil {
		var c *bus.Consumer
		c, err = bus.NewConsumer(js, takeoverConsumer, bus.BatchHandlerFunc(func(context.Context, []*bus.Delivery) []error {
			select {}
		}), log, nil)
		if err == nil {
			err = c.Run(ctx)
		}
	}
	log.Error("crashing consumer", "error", err)
	os.Exit(2)
}

// A replica killed holding messages (kill -9: no answer, no drain, its
// connection cut) has them taken over by another replica after one
// AckWait -- 5 s, not the 30 s it was -- each as its second delivery.
func TestCrashedConsumersWorkIsTakenOver(t *testing.T) {
	t.Parallel()
	url := testkit.NATS(t)
	_, js := testkit.JetStream(t, url)
	ctx := context.Background()
	require.NoError(t, newConsumer(t, js, takeoverConsumer, bus.BatchHandlerFunc(nil), nil).Create(ctx))
	pub := bus.NewPublisher(js, nil)
	ids := map[string]bool{}
	for i := range 10 {
		e := fired(string(rune('a' + i)))
		ids[e.GetMeta().GetId()] = true
		require.NoError(t, pub.Publish(ctx, e))
	}

	var stderr bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashingConsumerEnv+"="+url)
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("crashing consumer:\n%s", stderr.String())
		}
	})
	info := func() *jetstream.ConsumerInfo { return consumerInfo(t, js, takeoverConsumer.Name) }
	// The replica holds all ten: in its handler, the rest in its queue.
	waitHeld(t, js, takeoverConsumer.Name, 10, 0)
	require.NoError(t, cmd.Process.Kill())
	<-exited

	var mu sync.Mutex
	attempts := map[string]int{}
	runConsumer(t, js, takeoverConsumer, bus.BatchHandlerFunc(func(_ context.Context, ds []*bus.Delivery) []error {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range ds {
			attempts[d.Event.GetMeta().GetId()] = d.Attempt
		}
		return make([]error, len(ds))
	}))
	// Well within the 30 s AckWait it used to be.
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(attempts) == len(ids)
	}, 20*time.Second, 20*time.Millisecond)
	waitSettled(t, js, takeoverConsumer.Name)

	assert.Equal(t, bus.DefaultAckWait, info().Config.AckWait)
	mu.Lock()
	defer mu.Unlock()
	for id := range ids {
		assert.Equal(t, 2, attempts[id], "event %s: the killed replica's delivery, then this one", id)
	}
}

// A replica slower than AckWait keeps what it holds -- the message in its
// handler and the one waiting in its queue behind it -- for as long as it
// takes: another replica on the same durable consumer gets only what the
// slow one did not take, and nothing is delivered twice.
func TestSlowConsumerKeepsItsMessages(t *testing.T) {
	t.Parallel()
	url := testkit.NATS(t)
	_, js := testkit.JetStream(t, url)
	ctx := context.Background()
	const ackWait = 2 * time.Second
	// One at a time: one message in the handler, one in the queue.
	cfg := bus.ConsumerConfig{Name: "slow", Subjects: []string{bus.SubjectAlertFired}, BatchSize: 1, AckWait: ackWait, StartWithin: time.Hour}
	var mu sync.Mutex
	handledBy := map[string]string{} // event id -> replica
	attempts := map[string]int{}
	handler := func(replica string, wait <-chan struct{}) bus.BatchHandler {
		return bus.BatchHandlerFunc(func(_ context.Context, ds []*bus.Delivery) []error {
			<-wait
			mu.Lock()
			defer mu.Unlock()
			for _, d := range ds {
				id := d.Event.GetMeta().GetId()
				if prev, ok := handledBy[id]; ok {
					t.Errorf("event %s handled by %s and again by %s", id, prev, replica)
				}
				handledBy[id], attempts[id] = replica, d.Attempt
			}
			return make([]error, len(ds))
		})
	}
	handled := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(handledBy)
	}
	release := make(chan struct{})
	var once sync.Once
	runConsumer(t, js, cfg, handler("slow", release))
	t.Cleanup(func() { once.Do(func() { close(release) }) })

	pub := bus.NewPublisher(js, nil)
	var ids []string
	for i := range 4 {
		e := fired(string(rune('a' + i)))
		require.NoError(t, pub.Publish(ctx, e))
		ids = append(ids, e.GetMeta().GetId())
	}
	// The slow replica holds the first two and asks for no more.
	waitHeld(t, js, cfg.Name, 2, 2)

	// Another replica takes the other two, and would take the slow one's
	// too were they redelivered.
	_, jsFast := testkit.JetStream(t, url)
	open := make(chan struct{})
	close(open)
	runConsumer(t, jsFast, cfg, handler("fast", open))
	require.Eventually(t, func() bool { return handled() == 2 }, 30*time.Second, 20*time.Millisecond)
	// The slow replica holds its two for three AckWaits.
	time.Sleep(3 * ackWait)
	assert.Zero(t, consumerInfo(t, js, cfg.Name).NumRedelivered)
	once.Do(func() { close(release) })
	require.Eventually(t, func() bool { return handled() == 4 }, 30*time.Second, 20*time.Millisecond)
	waitSettled(t, js, cfg.Name)

	mu.Lock()
	defer mu.Unlock()
	for i, id := range ids {
		want := "fast"
		if i < 2 {
			want = "slow"
		}
		assert.Equal(t, want, handledBy[id], "event %d", i)
		assert.Equal(t, 1, attempts[id], "event %d delivered once", i)
	}
}

func consumerInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), "ALERTS", name)
	require.NoError(t, err)
	return c.CachedInfo()
}

// waitHeld waits until the consumer's replicas hold (have unacknowledged)
// held messages and pending are left on the server.
func waitHeld(t *testing.T, js jetstream.JetStream, name string, held, pending uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		i := consumerInfo(t, js, name)
		return uint64(i.NumAckPending) == held && i.NumPending == pending
	}, 30*time.Second, 20*time.Millisecond)
}
