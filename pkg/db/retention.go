package db

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Retention deletes what is past its time, at start and then every
// Every, until its context ends: the one loop behind every table a
// service prunes (audit log, deliveries, incidents, repairs, processed
// events, spent assertions...).
type Retention struct {
	// What names what is pruned, for the log: "audit log and sessions".
	What string
	// Every is the time between passes; an hour when zero.
	Every time.Duration
	// PassTimeout bounds one pass, so that a backlog (after downtime)
	// or a stuck statement does not hold the loop: what is left waits
	// for the next pass. Ten minutes when zero, never more than Every.
	PassTimeout time.Duration
	// Prune deletes what is past retention, bounded statements at a
	// time (DeleteInBatches), and returns how many rows it deleted, the
	// rows of the statements done when it fails too. It does not log:
	// Run logs each failed pass once.
	Prune func(ctx context.Context) (int64, error)
	Log   *slog.Logger
}

// Run prunes until ctx ends; it always returns nil, so that a failure to
// prune, which the next pass retries, never stops a service.
func (r Retention) Run(ctx context.Context) error {
	every := r.Every
	if every <= 0 {
		every = time.Hour
	}
	timeout := r.PassTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	timeout = min(timeout, every)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		r.pass(ctx, timeout)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func (r Retention) pass(ctx context.Context, timeout time.Duration) {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	n, err := r.Prune(pctx)
	switch {
	case ctx.Err() != nil:
		// Stopping: whatever failed was cut short on purpose.
	case err != nil && errors.Is(pctx.Err(), context.DeadlineExceeded):
		r.Log.WarnContext(ctx, "pruning cut short, the rest waits for the next pass", "what", r.What, "rows", n, "timeout", timeout, "error", err)
	case err != nil:
		r.Log.WarnContext(ctx, "pruning failed", "what", r.What, "rows", n, "error", err)
	case n > 0:
		r.Log.InfoContext(ctx, "pruned past retention", "what", r.What, "rows", n)
	}
}
