// Package lease runs work that exactly one replica may do at a time (the
// Telegram bot's long poll: two pollers make Telegram end one with 409),
// under a PostgreSQL session-level advisory lock. The lock lives as long
// as the session that took it, so it is held on a connection kept for it:
// when the process dies or the connection breaks, Postgres releases the
// lock and another replica takes over, and the replica that lost it stops
// working as soon as it notices.
package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Lease is one named lock and the work done under it.
type Lease struct {
	Pool *pgxpool.Pool
	// Key is the advisory lock's key (Key derives one from a name).
	Key int64
	// Retry is how often a replica without the lock tries to take it
	// (5 s).
	Retry time.Duration
	// Check is how often the holder checks its connection is alive, and
	// so that it still holds the lock (2 s). Until it notices a broken
	// connection, another replica may have taken the lock: keep Check
	// below Retry, and the work such that two at once do no harm (two
	// pollers: Telegram ends one with 409).
	Check time.Duration
	Log   *slog.Logger
}

// Key derives an advisory lock key from a name (FNV-1a, 64 bits).
func Key(name string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	// Any 64 bits make a key: the conversion wraps, as intended.
	return int64(h.Sum64())
}

const (
	// releaseTimeout bounds giving the lock back on the way out.
	releaseTimeout = 5 * time.Second
	// pingTimeout is the least time the lock's connection gets to answer
	// a check before it is taken for broken.
	pingTimeout = 2 * time.Second
)

// Run runs work whenever this replica holds the lock, until ctx ends.
// work's context ends when ctx does or the lock is lost (its connection
// broke); Run waits for work to return, gives the lock back, and tries
// again every Retry. An error from work is logged, and the lock given
// back so another replica may have a go.
func (l *Lease) Run(ctx context.Context, work func(context.Context) error) error {
	retry, check := l.Retry, l.Check
	if retry <= 0 {
		retry = 5 * time.Second
	}
	if check <= 0 {
		check = 2 * time.Second
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := l.hold(ctx, check, work); err != nil && ctx.Err() == nil {
			l.Log.WarnContext(ctx, "lease lost or not taken", "key", l.Key, "error", err)
		}
		t.Reset(retry)
	}
}

// hold takes the lock if it is free and runs work while it holds it.
func (l *Lease) hold(ctx context.Context, check time.Duration, work func(context.Context) error) error {
	conn, err := l.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire a connection: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", l.Key).Scan(&got); err != nil {
		// The session is in an unknown state: do not give it back.
		_ = conn.Hijack().Close(context.WithoutCancel(ctx))
		return fmt.Errorf("try the advisory lock: %w", err)
	}
	if !got {
		conn.Release()
		return nil
	}
	l.Log.InfoContext(ctx, "lease taken", "key", l.Key)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- work(wctx) }()

	tick := time.NewTicker(check)
	defer tick.Stop()
	var lost error
loop:
	for {
		select {
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				l.Log.ErrorContext(ctx, "work under lease failed", "key", l.Key, "error", err)
			}
			done = nil
			break loop
		case <-ctx.Done():
			break loop
		case <-tick.C:
			// A slow answer is not a broken connection: however often it
			// checks, a busy database gets pingTimeout to answer.
			pctx, cancel := context.WithTimeout(ctx, max(check, pingTimeout))
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				lost = fmt.Errorf("the lock's connection broke: %w", err)
				break loop
			}
		}
	}
	stop()
	if done != nil {
		if err := <-done; err != nil && lost == nil && ctx.Err() == nil {
			l.Log.ErrorContext(ctx, "work under lease failed", "key", l.Key, "error", err)
		}
	}
	if lost != nil {
		_ = conn.Hijack().Close(context.WithoutCancel(ctx))
		return lost
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	var released bool
	if err := conn.QueryRow(rctx, "SELECT pg_advisory_unlock($1)", l.Key).Scan(&released); err != nil || !released {
		// Closing the session releases the lock too.
		_ = conn.Hijack().Close(rctx)
		if err == nil {
			err = errors.New("the lock was not held")
		}
		return fmt.Errorf("give the lock back: %w", err)
	}
	conn.Release()
	l.Log.InfoContext(ctx, "lease given back", "key", l.Key)
	return nil
}
