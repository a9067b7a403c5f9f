package bus

import (
	"context"
	"sync"
	"time"
)

// Batcher publishes events from many concurrent callers together, as a
// group commit: with JetStream fsyncing every stored message (sync_interval
// always), the events of every caller that arrived during a flush go out
// together in the next one, in EventBatch envelopes (PublishBatched), one
// fsync for them all.
//
// The flushes run in a goroutine of their own, started when events arrive
// and none is running, which keeps flushing what queued up until the queue
// is empty. Callers wait only for the flush carrying their events, never
// for a flush of others (as they would if a caller did the flushing). One
// flush at a time: a second one in flight did not raise throughput
// (docs/benchmarks.md).
type Batcher struct {
	pub      *Publisher
	producer string

	mu       sync.Mutex
	flushing bool
	pending  []*batchRequest
}

type batchRequest struct {
	ctx  context.Context
	msgs []Message
	done chan error
}

// NewBatcher returns a Batcher over pub; producer names the publishing
// service in the EventBatch envelopes it sends.
func NewBatcher(pub *Publisher, producer string) *Batcher {
	return &Batcher{pub: pub, producer: producer}
}

// flushTimeout bounds one flush; it does not depend on any one caller's
// context, since the flush carries other callers' events too.
const flushTimeout = 15 * time.Second

// Publish stores events and returns once JetStream has acknowledged them,
// or ctx ends (the events may still be stored then).
func (b *Batcher) Publish(ctx context.Context, events ...Event) error {
	msgs, err := encodeAll(ctx, events)
	if err != nil {
		return err
	}
	req := &batchRequest{ctx: ctx, msgs: msgs, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, req)
	if !b.flushing {
		b.flushing = true
		go b.flushAll(b.take())
	}
	b.mu.Unlock()
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// take empties the queue; b.mu is held.
func (b *Batcher) take() []*batchRequest {
	batch := b.pending
	b.pending = nil
	return batch
}

// flushAll flushes batch, then whatever queued up meanwhile, until the
// queue is empty.
func (b *Batcher) flushAll(batch []*batchRequest) {
	for {
		b.flush(batch)
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		batch = b.take()
		b.mu.Unlock()
	}
}

func (b *Batcher) flush(batch []*batchRequest) {
	// The first caller's context carries the trace the flush belongs to;
	// not its deadline: the flush carries other callers' events too.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(batch[0].ctx), flushTimeout)
	defer cancel()
	var msgs []Message
	for _, r := range batch {
		msgs = append(msgs, r.msgs...)
	}
	err := b.pub.PublishBatched(ctx, b.producer, msgs...)
	// A failure cannot be pinned on one request: every request of the
	// batch hears it, and a failed request may still have been stored (a
	// lost ack). Senders retry; monitor folds a repeated alert into the one
	// it has by fingerprint.
	for _, r := range batch {
		r.done <- err
	}
}
