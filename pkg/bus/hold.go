package bus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// DefaultAckWait is how long JetStream waits for a consumer's answer about
// a message before it hands the message to another replica. It is short so
// that the work of a replica that died (kill -9, a node lost) is taken over
// in seconds: a live replica keeps every message it holds for as long as it
// holds it (hold), however long the work takes -- an LLM call, a Telegram
// 429 Retry-After, a rollout, a Kubernetes call, a retry inside a handler.
const DefaultAckWait = 5 * time.Second

// hold is what a consumer holds: every message from when the pull hands it
// over -- waiting in the consumer's buffer, in the handler, being settled,
// given back at a stop -- until it is answered (acknowledged, retried,
// terminated, given back). While the consumer runs, keep tells JetStream
// about each of them well before AckWait runs out, so a slow but healthy
// replica never loses its messages to another; a replica that dies stops
// telling, and they are redelivered after one AckWait.
type hold struct {
	mu   sync.Mutex
	msgs map[jetstream.Msg]struct{}
}

func newHold() *hold { return &hold{msgs: map[jetstream.Msg]struct{}{}} }

// add starts holding m.
func (h *hold) add(m jetstream.Msg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.msgs[m] = struct{}{}
}

// keep tells JetStream every interval that each held message is in
// progress, until ctx ends. A message answered since is let go: it has
// nothing more to say.
func (h *hold) keep(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		h.mu.Lock()
		held := make([]jetstream.Msg, 0, len(h.msgs))
		for m := range h.msgs {
			held = append(held, m)
		}
		h.mu.Unlock()
		var answered []jetstream.Msg
		for _, m := range held {
			// A failed one (the connection is down) is redelivered after
			// AckWait: at least once, as ever.
			if err := m.InProgress(); errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
				answered = append(answered, m)
			}
		}
		h.mu.Lock()
		for _, m := range answered {
			delete(h.msgs, m)
		}
		h.mu.Unlock()
	}
}

// keepInterval is how often held messages are reported in progress: four
// times per AckWait, so that one report lost or late (a busy connection, a
// pause of the process) still leaves another before AckWait runs out.
func keepInterval(ackWait time.Duration) time.Duration {
	return max(ackWait/4, 10*time.Millisecond)
}
