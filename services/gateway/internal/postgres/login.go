package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// LoginAttempt counts an attempt to log in as name at now, before its
// password is checked: the attempts in a row without a login start again
// when l.UserWindow has passed since the last one and the end of the last
// lock. The attempt that makes l.UserFailures, and each one after, locks
// name at once, for l.LockBase doubling up to l.LockMax; a login removes
// the lock (LoginSucceeded). Locking before the check bounds the attempts
// in flight at once, across replicas. While name is locked, the attempt
// is not counted and the lock's end is returned; zero means go on.
func (s *Store) LoginAttempt(ctx context.Context, name string, now time.Time, l access.LoginLimits) (time.Time, error) {
	var (
		counted bool
		until   *time.Time
	)
	// The attempts in a row, this one included (in SET, f is the row
	// before it).
	const n = `(CASE WHEN greatest(f.last_failure_at, f.locked_until) < $2::timestamptz - $3::interval THEN 1 ELSE f.failures + 1 END)`
	err := s.pool.QueryRow(ctx, `WITH attempt AS (
			INSERT INTO login_failures AS f (name, failures, last_failure_at, locked_until)
			VALUES ($1, 1, $2, CASE WHEN $4 <= 1 THEN $2::timestamptz + $5::interval END)
			ON CONFLICT (name) DO UPDATE SET
				failures = `+n+`,
				last_failure_at = $2,
				locked_until = CASE WHEN `+n+` >= $4
					THEN $2::timestamptz + least($5::interval * power(2, least(`+n+` - $4, 30)), $6::interval) END
			WHERE f.locked_until IS NULL OR f.locked_until <= $2
			RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM attempt), (SELECT locked_until FROM login_failures WHERE name = $1)`,
		name, now, l.UserWindow, l.UserFailures, l.LockBase, l.LockMax).Scan(&counted, &until)
	if err != nil || counted {
		return time.Time{}, err
	}
	if val(until).After(now) {
		return *until, nil
	}
	// Not counted, so locked when the attempt met the row; but this
	// statement's snapshot predates the lock (set by an attempt that
	// committed while this one waited for the row): read it afresh.
	if err := s.pool.QueryRow(ctx, `SELECT locked_until FROM login_failures WHERE name = $1`, name).Scan(&until); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, err
	}
	if val(until).After(now) {
		return *until, nil
	}
	// Unlocked since, by a login: refused all the same, briefly.
	return now.Add(time.Second), nil
}

// LoginSucceeded forgets name's failed logins.
func (s *Store) LoginSucceeded(ctx context.Context, name string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE name = $1`, name)
	return err
}
