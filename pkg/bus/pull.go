package bus

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// pullWait is how long one pull request waits at the server for messages.
// It bounds how long a stopping consumer waits for its last request (whose
// messages it then gives back), and how long the request of a replica that
// vanished without closing its connection (a partition) may still take
// messages, which then wait out AckWait.
const pullWait = time.Second

// Retrying a failed pull (NATS restarting, a connection lost) starts at
// minPullRetry and doubles up to maxPullRetry: a restarted server is
// consumed from within seconds, a down one is not asked in a busy loop.
const (
	minPullRetry = 100 * time.Millisecond
	maxPullRetry = 2 * time.Second
)

// queue holds the messages pulled and not yet taken by a worker: at most
// its capacity (BatchSize messages) and, for a consumer with MaxBytes,
// about that many bytes.
type queue struct {
	ch    chan jetstream.Msg
	bytes atomic.Int64
	// space is signalled whenever a worker takes messages.
	space chan struct{}
}

func newQueue(n int) *queue {
	return &queue{ch: make(chan jetstream.Msg, n), space: make(chan struct{}, 1)}
}

// took records that a worker took messages of size bytes from q.
func (q *queue) took(size int) {
	q.bytes.Add(-int64(size))
	select {
	case q.space <- struct{}{}:
	default:
	}
}

// pull asks JetStream for messages as q has room for them, until ctx ends.
// No more is asked for than q has room for, so every message is taken in
// hand as it arrives -- held, and so reported in progress however long it
// then waits for a worker -- and none waits unseen in a client buffer
// while AckWait runs out. A request in progress when ctx ends is finished
// (within pullWait) and its messages queued, for Run to give back: none is
// left in a request nobody reads.
func (c *Consumer) pull(ctx context.Context, cons jetstream.Consumer, q *queue, held *hold) {
	retry := minPullRetry
	failing := false
	for ctx.Err() == nil {
		n := cap(q.ch) - len(q.ch)
		bytes := c.cfg.MaxBytes - int(q.bytes.Load())
		if n <= 0 || (c.cfg.MaxBytes > 0 && bytes <= 0) {
			select {
			case <-ctx.Done():
			case <-q.space:
			}
			continue
		}
		opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(pullWait)}
		if c.cfg.MaxBytes > 0 {
			// A message larger than the request's bytes would never be
			// delivered: leave room for the largest the server accepts.
			opts = append(opts, jetstream.FetchMaxBytes(max(bytes, 2*int(c.js.Conn().MaxPayload()))))
		}
		batch, err := cons.Fetch(n, opts...)
		if err == nil {
			for m := range batch.Messages() {
				held.add(m)
				q.bytes.Add(int64(len(m.Data())))
				q.ch <- m
			}
			err = batch.Error()
		}
		if err == nil {
			if failing {
				c.log.InfoContext(ctx, "pulling again")
			}
			retry, failing = minPullRetry, false
			continue
		}
		if ctx.Err() != nil {
			return
		}
		// Logged once per outage, not once per try.
		if !failing {
			c.log.WarnContext(ctx, "pull failed, retrying", "error", err)
		}
		failing = true
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
		retry = min(2*retry, maxPullRetry)
	}
}
