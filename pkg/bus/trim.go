package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// trimmed are the streams kept only until consumed: their consumers drop
// what every consumer of the stream has acknowledged (see trim), so the
// stream's MaxBytes bounds what waits to be handled, not what was. ALERTS
// is an intake: monitor stores every alert it applies in Postgres, where
// alert search and retention read them, so an acknowledged alert is not
// needed on the bus again; and ALERTS refuses new alerts when full (see
// discard), so a stream that kept a day of consumed alerts would refuse a
// sustained storm that monitor keeps up with. Why trim rather than
// JetStream's own retention policies: docs/adr/0015-alerts-kept-until-consumed.md.
var trimmed = map[string]bool{"ALERTS": true}

// trimInterval is how often a consumer of a trimmed stream drops what
// was acknowledged: the stream then holds at most this long's worth of
// consumed events beyond what waits.
const trimInterval = 5 * time.Second

// trim drops, every trimInterval until ctx is cancelled, the events of c's
// stream that every consumer of it has acknowledged. Every replica trims:
// a purge below the stream's first sequence changes nothing.
func (c *Consumer) trim(ctx context.Context) {
	t := time.NewTicker(trimInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tctx, cancel := context.WithTimeout(ctx, stateTimeout)
		n, err := trimStream(tctx, c.js, c.stream)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return
		case err != nil:
			c.metrics.trimErrors.WithLabelValues(c.stream).Inc()
			// Once per spell of failures, not every few seconds: the
			// stream only keeps more than it needs (and, full, the
			// gateway answers 503) until it works again.
			if !failing {
				c.log.WarnContext(ctx, "cannot drop acknowledged events from the stream: it keeps them until its max age, and refuses new ones when full (is this NATS user allowed to purge it? see docs/bus.md)",
					"stream", c.stream, "error", err)
			}
			failing = true
		default:
			if failing {
				c.log.InfoContext(ctx, "dropping acknowledged events from the stream again", "stream", c.stream)
			}
			failing = false
			c.metrics.trimmed.WithLabelValues(c.stream).Add(float64(n))
		}
	}
}

// trimStream drops the events of stream that every consumer of it has
// acknowledged, and returns how many sequences it dropped. With no
// consumer at all it drops nothing: whatever is there waits for one.
func trimStream(ctx context.Context, js jetstream.JetStream, stream string) (uint64, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", err)
	}
	first := s.CachedInfo().State.FirstSeq
	// The lowest acknowledgment floor of all consumers, durable or not:
	// everything at or below it was acknowledged by each of them.
	var floor uint64
	consumers := 0
	list := s.ListConsumers(ctx)
	for info := range list.Info() {
		if consumers == 0 || info.AckFloor.Stream < floor {
			floor = info.AckFloor.Stream
		}
		consumers++
	}
	if err := list.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		return 0, fmt.Errorf("list consumers: %w", err)
	}
	if consumers == 0 || floor < first {
		return 0, nil
	}
	// Purges every event below the given sequence.
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(floor+1)); err != nil {
		return 0, fmt.Errorf("purge below %d: %w", floor+1, err)
	}
	return floor + 1 - first, nil
}
