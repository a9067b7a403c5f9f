package db

import (
	"context"
	"log/slog"
	"time"
)

// FailuresRemind is how often a run of failures is logged again while it
// lasts.
const FailuresRemind = 5 * time.Minute

// Failures logs a run of failures of a step a loop retries (a sweep, an
// outbox relay's publishing) when it begins, at most every FailuresRemind
// while it lasts, and when it ends -- not at every retry: an hour of
// Postgres or NATS outage is a few lines, not thousands. Attrs name the
// step in each line. Not safe for concurrent use: one per loop.
type Failures struct {
	Log   *slog.Logger
	Attrs []any

	since, last time.Time
	count       int
}

// Failed records a failed try, to be retried in retryIn.
func (f *Failures) Failed(ctx context.Context, err error, retryIn time.Duration) {
	now := time.Now()
	f.count++
	switch {
	case f.since.IsZero():
		f.since, f.last = now, now
		f.Log.WarnContext(ctx, "failing: retrying until it succeeds", append(f.Attrs, "error", err, "retry_in", retryIn)...)
	case now.Sub(f.last) >= FailuresRemind:
		f.last = now
		f.Log.WarnContext(ctx, "still failing", append(f.Attrs, "for", now.Sub(f.since).Round(time.Second), "failures", f.count, "error", err)...)
	}
}

// Succeeded records a try that worked, ending a run of failures.
func (f *Failures) Succeeded(ctx context.Context) {
	if f.since.IsZero() {
		return
	}
	f.Log.InfoContext(ctx, "recovered", append(f.Attrs, "after", time.Since(f.since).Round(time.Millisecond), "failures", f.count)...)
	f.since, f.last, f.count = time.Time{}, time.Time{}, 0
}
