package db

import (
	"context"
	"time"
)

// KeepLease renews a lease on a row of work -- a job, a repair, a claim --
// every third of lease until ctx ends or renew reports the lease no longer
// held (the work released it, or it ran out and another worker took it:
// that one's lease is not extended). A renewal that fails (the database
// away) goes to failed, and is tried again at the next tick; past lease,
// another worker may take the work, which the holder's store tells apart.
func KeepLease(ctx context.Context, lease time.Duration, renew func(context.Context) (held bool, err error), failed func(error)) {
	t := time.NewTicker(lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held, err := renew(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failed(err)
		case !held:
			return
		}
	}
}
