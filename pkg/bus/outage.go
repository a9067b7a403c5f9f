package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-ops/vigil/pkg/db"
)

// maxHoldBackoff caps the wait between tries of a held batch whatever
// MaxBackoff says: once the dependency is back, work resumes within it.
const maxHoldBackoff = 30 * time.Second

// unavailable names the dependency that err says cannot serve for now
// ("postgres"), or returns "" when err is about the work itself. One
// classification for every consumer: db.Unavailable.
func unavailable(err error) string {
	if err == nil || IsPermanent(err) || errors.Is(err, ErrStopped) {
		return ""
	}
	if db.Unavailable(err) {
		return "postgres"
	}
	return ""
}

// outages are the dependencies a consumer is waiting for, and since when:
// each outage is logged when it begins and when it ends, not per batch.
type outages struct {
	mu    sync.Mutex
	since map[string]time.Time
}

func (o *outages) begin(ctx context.Context, log *slog.Logger, dep string, events int, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.since[dep]; ok {
		return
	}
	if o.since == nil {
		o.since = map[string]time.Time{}
	}
	o.since[dep] = time.Now()
	log.WarnContext(ctx, "dependency unavailable: holding events and retrying until it is back",
		"dependency", dep, "events", events, "error", err)
}

func (o *outages) end(ctx context.Context, log *slog.Logger, dep string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	since, ok := o.since[dep]
	if !ok {
		return
	}
	delete(o.since, dep)
	log.InfoContext(ctx, "dependency back", "dependency", dep, "after", time.Since(since).Round(time.Millisecond))
}

// handle runs the handler on ds. Deliveries that failed because a
// dependency is unavailable (Postgres down, say) are not failures of
// theirs: they are held and tried again in place, with capped exponential
// backoff, until the dependency is back or the consumer stops. Held, their
// messages are kept in progress (process heartbeats them), so JetStream
// neither redelivers them elsewhere nor counts a delivery: an outage of
// any length dead-letters nothing and splits no batch.
func (c *Consumer) handle(ctx context.Context, ds []*Delivery) []error {
	results := c.h.HandleBatch(ctx, ds)
	if len(results) != len(ds) {
		return results // process reports the mismatch
	}
	var held []int
	dep := ""
	for i, err := range results {
		if d := unavailable(err); d != "" {
			held = append(held, i)
			if dep == "" {
				dep = d
			}
		}
	}
	if len(held) == 0 {
		return results
	}
	c.outages.begin(ctx, c.log, dep, len(held), results[held[0]])
	waiting := c.metrics.waiting.WithLabelValues(c.cfg.Name, dep)
	waiting.Add(float64(len(held)))
	defer func() { waiting.Sub(float64(len(held))) }()
	stopping, _ := ctx.Value(stoppingKey{}).(<-chan struct{})
	for try := 1; ; try++ {
		delay := c.holdBackoff(try)
		t := time.NewTimer(delay)
		select {
		case <-stopping:
			t.Stop()
			// Given back for another replica or the next start.
			for _, i := range held {
				results[i] = ErrStopped
			}
			return results
		case <-t.C:
		}
		c.metrics.waitSeconds.WithLabelValues(c.cfg.Name, dep).Add(delay.Seconds())
		c.metrics.retries.WithLabelValues(c.cfg.Name, dep).Inc()
		again := make([]*Delivery, len(held))
		for j, i := range held {
			// A later try: the one cut off may have committed part of
			// its work before the dependency went (see Attempt).
			ds[i].Attempt++
			again[j] = ds[i]
		}
		rs := c.h.HandleBatch(ctx, again)
		if len(rs) != len(again) {
			err := fmt.Errorf("bus: handler returned %d results for %d deliveries", len(rs), len(again))
			for _, i := range held {
				results[i] = err
			}
			return results
		}
		still := held[:0]
		for j, i := range held {
			results[i] = rs[j]
			if unavailable(rs[j]) != "" {
				still = append(still, i)
			}
		}
		waiting.Sub(float64(len(held) - len(still)))
		held = still
		if len(held) == 0 {
			c.outages.end(ctx, c.log, dep)
			return results
		}
	}
}

// holdBackoff doubles from MinBackoff up to MaxBackoff (at most
// maxHoldBackoff), with jitter so that replicas and consumers waiting for
// the same server do not knock on it in step.
func (c *Consumer) holdBackoff(try int) time.Duration {
	return jittered(c.cfg.MinBackoff, min(c.cfg.MaxBackoff, maxHoldBackoff), try)
}
