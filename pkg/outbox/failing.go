package outbox

import (
	"context"
	"log/slog"
	"time"
)

// failingReminder is how often a run of failures is logged again while
// it lasts.
const failingReminder = 5 * time.Minute

// failing logs a run of failures of one step of the relay (publish,
// listen) when it begins, at most every failingReminder while it lasts,
// and when it ends -- not at every retry: an hour of Postgres or NATS
// outage is a few lines, not thousands.
type failing struct {
	step        string
	since, last time.Time
	count       int
}

func (f *failing) failed(ctx context.Context, log *slog.Logger, err error, retryIn time.Duration) {
	now := time.Now()
	f.count++
	switch {
	case f.since.IsZero():
		f.since, f.last = now, now
		log.WarnContext(ctx, "outbox relay failing: retrying until it succeeds", "step", f.step, "error", err, "retry_in", retryIn)
	case now.Sub(f.last) >= failingReminder:
		f.last = now
		log.WarnContext(ctx, "outbox relay still failing", "step", f.step, "for", now.Sub(f.since).Round(time.Second), "failures", f.count, "error", err)
	}
}

func (f *failing) succeeded(ctx context.Context, log *slog.Logger) {
	if f.since.IsZero() {
		return
	}
	log.InfoContext(ctx, "outbox relay recovered", "step", f.step, "after", time.Since(f.since).Round(time.Millisecond), "failures", f.count)
	*f = failing{step: f.step}
}
