package db

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sweep runs Pass every Every, and at once whenever Poke receives, until
// its context ends: the one loop behind work a service finds due on a
// clock (updates to announce, held alerts to release, flapping to
// settle). Unlike Retention it makes no pass at start.
type Sweep struct {
	// What names the work, for the log: "held alerts released".
	What string
	// Every is the time between passes; a second when zero.
	Every time.Duration
	// Poke, when set, asks for a pass now rather than at the next tick.
	Poke <-chan struct{}
	// Pass does what is due, bounded transactions at a time (Drain). It
	// does not log its failure: Run does, and the next tick retries.
	Pass func(ctx context.Context) error
	Log  *slog.Logger
}

// Run sweeps until ctx ends; it always returns nil, so that a failed
// pass, which the next one retries, never stops a service.
func (s Sweep) Run(ctx context.Context) error {
	every := s.Every
	if every <= 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	// A Postgres outage fails every pass: logged when it begins and ends.
	failures := Failures{Log: s.Log, Attrs: []any{"sweep", s.What}}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.Poke:
		}
		err := s.Pass(ctx)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			failures.Failed(ctx, err, every)
		default:
			failures.Succeeded(ctx)
		}
	}
}

// Drain runs step in one transaction after another until step says there
// is no more (more: it reached its bound, and another transaction may
// find more), it fails, or ctx ends.
func Drain(ctx context.Context, b Beginner, step func(ctx context.Context, tx pgx.Tx) (more bool, err error)) error {
	for ctx.Err() == nil {
		var more bool
		err := InTx(ctx, b, func(tx pgx.Tx) (err error) {
			more, err = step(ctx, tx)
			return err
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}
