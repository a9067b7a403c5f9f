package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// recorder is a router whose alert handlers record what they were handed,
// in order.
type recorder struct {
	mu   sync.Mutex
	seen []string // "fired:<fingerprint>" / "resolved:<fingerprint>"
	ids  map[string]int
	fail func(fp string, n int) error // n: how often fp was seen, from 1
}

func (r *recorder) record(kind string, e bus.Event, fp string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[string]int{}
	}
	r.ids[e.GetMeta().GetId()]++
	r.seen = append(r.seen, kind+":"+fp)
	n := 0
	for _, s := range r.seen {
		if s == kind+":"+fp {
			n++
		}
	}
	if r.fail != nil {
		return r.fail(fp, n)
	}
	return nil
}

func (r *recorder) router(withResolved bool) *bus.Router[struct{}] {
	rt := bus.NewRouter[struct{}]()
	bus.On(rt, func(_ context.Context, _ struct{}, e *eventsv1.AlertFired) error {
		return r.record("fired", e, e.GetAlert().GetFingerprint())
	})
	if withResolved {
		bus.On(rt, func(_ context.Context, _ struct{}, e *eventsv1.AlertResolved) error {
			return r.record("resolved", e, e.GetAlert().GetFingerprint())
		})
	}
	return rt
}

func (r *recorder) snapshot() ([]string, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make(map[string]int, len(r.ids))
	for k, v := range r.ids {
		ids[k] = v
	}
	return append([]string(nil), r.seen...), ids
}

func resolved(fp string) *eventsv1.AlertResolved {
	return &eventsv1.AlertResolved{
		Meta:  bus.NewMeta("test", nil),
		Alert: &typesv1.Alert{Fingerprint: fp, Status: typesv1.AlertStatus_ALERT_STATUS_RESOLVED},
	}
}

func encodeAll(t *testing.T, events ...bus.Event) []bus.Message {
	t.Helper()
	msgs := make([]bus.Message, len(events))
	for i, e := range events {
		m, err := bus.Encode(context.Background(), e)
		require.NoError(t, err)
		msgs[i] = m
	}
	return msgs
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	require.NoError(t, err)
	return s.CachedInfo().State.Msgs
}

// waitSettled waits until the consumer has nothing pending or unacknowledged.
func waitSettled(t *testing.T, js jetstream.JetStream, consumer string) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := js.Consumer(context.Background(), "ALERTS", consumer)
		if err != nil {
			return false // not created yet
		}
		info := c.CachedInfo()
		return info.NumAckPending == 0 && info.NumPending == 0 && info.Delivered.Stream > 0
	}, 20*time.Second, 20*time.Millisecond)
}

// Concurrent callers of a Batcher are all acknowledged, their events share
// envelopes, and a consumer is handed every event once, each caller's in
// its order.
func TestBatcherStoresEveryCallersEvents(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	b := bus.NewBatcher(bus.NewPublisher(js, nil), "test")
	const callers, each = 40, 3
	errs := make(chan error, callers)
	for c := range callers {
		go func() {
			events := make([]bus.Event, each)
			for i := range events {
				events[i] = fired(fmt.Sprintf("c%d-%d", c, i))
			}
			errs <- b.Publish(context.Background(), events...)
		}()
	}
	for range callers {
		require.NoError(t, <-errs)
	}
	assert.Less(t, streamMsgs(t, js, "ALERTS"), uint64(callers*each), "events travel in shared envelopes")

	rec := &recorder{}
	r := rec.router(true)
	runConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: r.Subjects()}, bus.Handler(r, struct{}{}))
	waitSettled(t, js, "t")
	seen, ids := rec.snapshot()
	require.Len(t, ids, callers*each)
	for id, n := range ids {
		assert.Equal(t, 1, n, "event %s handled more than once", id)
	}
	for c := range callers {
		var order []string
		for _, s := range seen {
			if strings.HasPrefix(s, fmt.Sprintf("fired:c%d-", c)) {
				order = append(order, s)
			}
		}
		assert.Equal(t, []string{
			fmt.Sprintf("fired:c%d-0", c), fmt.Sprintf("fired:c%d-1", c), fmt.Sprintf("fired:c%d-2", c),
		}, order)
	}
}

// When the bus cannot store a flush, every caller in it hears so, and the
// Batcher takes the next callers as before.
func TestBatcherFailsEveryCaller(t *testing.T) {
	t.Parallel()
	nc, js := testkit.JetStream(t, testkit.NATS(t))
	b := bus.NewBatcher(bus.NewPublisher(js, nil), "test")
	require.NoError(t, b.Publish(context.Background(), fired("before")))
	nc.Close()
	const callers = 20
	errs := make(chan error, callers)
	for c := range callers {
		go func() { errs <- b.Publish(context.Background(), fired(fmt.Sprint("after-", c))) }()
	}
	for range callers {
		require.ErrorIs(t, <-errs, nats.ErrConnectionClosed)
	}
	assert.ErrorIs(t, b.Publish(context.Background(), fired("later")), nats.ErrConnectionClosed)
}

// A consumer takes from a batch only the subjects it filters on; an event
// its handler rejects for good is dead-lettered alone, on its own subject,
// and the rest of the batch is acknowledged.
func TestBatchedEventDeadLettersAlone(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	poison := fired("poison")
	msgs := encodeAll(t, fired("a"), resolved("b"), poison, fired("c"))
	require.NoError(t, bus.NewPublisher(js, nil).PublishBatched(context.Background(), "test", msgs...))
	require.Equal(t, uint64(1), streamMsgs(t, js, "ALERTS"), "one envelope")

	rec := &recorder{fail: func(fp string, _ int) error {
		if fp == "poison" {
			return bus.Permanent(errors.New("cannot ever work"))
		}
		return nil
	}}
	r := rec.router(false) // alert.fired only
	runConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: r.Subjects()}, bus.Handler(r, struct{}{}))
	waitSettled(t, js, "t")

	seen, _ := rec.snapshot()
	assert.Equal(t, []string{"fired:a", "fired:poison", "fired:c"}, seen)
	dead := nextDLQ(t, js)
	assert.Equal(t, "dlq.alert.fired", dead.Subject())
	assert.Equal(t, "cannot ever work", dead.Headers().Get("Vigil-Dlq-Reason"))
	assert.Equal(t, "t:"+poison.GetMeta().GetId(), dead.Headers().Get(jetstream.MsgIDHeader))
	assert.NotEmpty(t, dead.Headers().Get("Vigil-Dlq-Batch"))
	var got eventsv1.AlertFired
	require.NoError(t, proto.Unmarshal(dead.Data(), &got))
	assert.True(t, proto.Equal(poison, &got), "the dead letter is the event as it was published")
	assert.Equal(t, uint64(1), streamMsgs(t, js, "DLQ"))
}

// A transient failure of one event retries the whole envelope; the event
// succeeds on a later delivery and nothing is dead-lettered.
func TestBatchedEventTransientErrorRetriesEnvelope(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	msgs := encodeAll(t, fired("a"), fired("flaky"), fired("b"))
	require.NoError(t, bus.NewPublisher(js, nil).PublishBatched(context.Background(), "test", msgs...))

	rec := &recorder{fail: func(fp string, n int) error {
		if fp == "flaky" && n < 3 {
			return errors.New("database down")
		}
		return nil
	}}
	r := rec.router(true)
	runConsumer(t, js, bus.ConsumerConfig{
		Name: "t", Subjects: r.Subjects(), MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond,
	}, bus.Handler(r, struct{}{}))
	require.Eventually(t, func() bool {
		seen, _ := rec.snapshot()
		return len(seen) == 9
	}, 20*time.Second, 20*time.Millisecond)
	waitSettled(t, js, "t")
	seen, _ := rec.snapshot()
	assert.Equal(t, strings.Repeat("fired:a fired:flaky fired:b ", 3), strings.Join(seen, " ")+" ",
		"the whole envelope is delivered again; handlers' inboxes make that safe")
	assert.Equal(t, uint64(0), streamMsgs(t, js, "DLQ"))
}

// An envelope whose events can't all be read: each unreadable event (bad
// body, a subject of another stream, a nested batch) is dead-lettered, the
// readable ones are handled. An envelope that is not an EventBatch at all is
// dead-lettered whole.
func TestMalformedBatch(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	good := encodeAll(t, fired("good"))[0]
	incident := encodeAll(t, &eventsv1.IncidentOpened{Meta: bus.NewMeta("test", nil)})[0]
	batch := &eventsv1.EventBatch{Meta: bus.NewMeta("test", nil), Events: []*eventsv1.BatchedEvent{
		{Subject: "alert.fired", Data: []byte("\xff\xff not protobuf")},
		{Subject: incident.Subject, Data: incident.Data},
		{Subject: bus.SubjectAlertBatched, Data: good.Data},
		{Subject: good.Subject, Data: good.Data, Headers: good.Headers},
	}}
	data, err := proto.Marshal(batch)
	require.NoError(t, err)
	ctx := context.Background()
	_, err = js.PublishMsg(ctx, &nats.Msg{Subject: bus.SubjectAlertBatched, Data: data, Header: nats.Header{
		jetstream.MsgIDHeader: {batch.GetMeta().GetId()},
	}})
	require.NoError(t, err)
	_, err = js.Publish(ctx, bus.SubjectAlertBatched, []byte("\xff\xff not a batch"))
	require.NoError(t, err)

	rec := &recorder{}
	r := rec.router(true)
	runConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: r.Subjects()}, bus.Handler(r, struct{}{}))
	waitSettled(t, js, "t")
	seen, _ := rec.snapshot()
	assert.Equal(t, []string{"fired:good"}, seen)

	require.Eventually(t, func() bool { return streamMsgs(t, js, "DLQ") == 4 }, 10*time.Second, 20*time.Millisecond)
	c, err := js.OrderedConsumer(ctx, "DLQ", jetstream.OrderedConsumerConfig{})
	require.NoError(t, err)
	got := map[string]string{}
	for range 4 {
		m, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		require.NoError(t, err)
		got[m.Subject()+" "+m.Headers().Get("Vigil-Dlq-Reason")] = m.Headers().Get("Vigil-Dlq-Batch")
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	assert.Len(t, got, 4, "%v", keys)
	assertHas := func(subject, reason string, fromBatch bool) {
		t.Helper()
		for k, b := range got {
			if strings.HasPrefix(k, subject+" ") && strings.Contains(k, reason) {
				assert.Equal(t, fromBatch, b != "", k)
				return
			}
		}
		t.Errorf("no dead letter on %s with %q among %v", subject, reason, keys)
	}
	assertHas("dlq.alert.fired", "decode", true)
	// Under the batch's subject, not its own: a consumer may dead-letter
	// only the subjects of its own stream.
	assertHas("dlq.alert.batched", `subject "incident.opened" is not an event of stream ALERTS`, true)
	assertHas("dlq.alert.batched", `subject "alert.batched" is not an event of stream ALERTS`, true)
	assertHas("dlq.alert.batched", "decode alert.batched", false)
}

// Events too big to share one message are spread over several envelopes
// (and one bigger than an envelope goes alone); all arrive.
func TestPublishBatchedSplitsBySize(t *testing.T) {
	t.Parallel()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	var events []bus.Event
	for i := range 30 {
		e := fired(fmt.Sprint("big-", i))
		e.Alert.Annotations = map[string]string{"description": strings.Repeat("x", 100_000)}
		events = append(events, e)
	}
	require.NoError(t, bus.NewPublisher(js, nil).PublishBatched(context.Background(), "test", encodeAll(t, events...)...))
	n := streamMsgs(t, js, "ALERTS")
	assert.GreaterOrEqual(t, n, uint64(3), "3 MB of events need at least 3 messages under the 1 MiB limit")
	assert.Less(t, n, uint64(30))

	rec := &recorder{}
	r := rec.router(false)
	runConsumer(t, js, bus.ConsumerConfig{Name: "t", Subjects: r.Subjects()}, bus.Handler(r, struct{}{}))
	waitSettled(t, js, "t")
	seen, _ := rec.snapshot()
	require.Len(t, seen, 30)
	for i, s := range seen {
		assert.Equal(t, fmt.Sprint("fired:big-", i), s)
	}
}
