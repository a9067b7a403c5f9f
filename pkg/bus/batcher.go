package bus

import (
	"context"
	"sync"
	"time"
)

// Batcher publishes events from many concurrent callers together: whoever
// finds no flush under way becomes the leader and publishes everything
// queued, its own events and those that arrive meanwhile, as batches, until
// the queue is empty; the others wait for their batch. With JetStream
// fsyncing every stored message (sync_interval always), this is a group
// commit: the events of every request that arrived during the last flush go
// out in EventBatch envelopes (PublishBatched), one fsync for them all.
type Batcher struct {
	pub      *Publisher
	producer string

	mu       sync.Mutex
	flushing bool
	pending  []*batchRequest
}

type batchRequest struct {
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
	req := &batchRequest{msgs: msgs, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, req)
	if b.flushing {
		b.mu.Unlock()
		select {
		case err := <-req.done:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.flushing = true
	for len(b.pending) > 0 {
		batch := b.pending
		b.pending = nil
		b.mu.Unlock()
		b.flush(context.WithoutCancel(ctx), batch)
		b.mu.Lock()
	}
	b.flushing = false
	b.mu.Unlock()
	return <-req.done
}

func (b *Batcher) flush(ctx context.Context, batch []*batchRequest) {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
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
