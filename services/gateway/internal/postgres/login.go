package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// LoginLockedUntil is when name's login lock ends; zero when it has none.
func (s *Store) LoginLockedUntil(ctx context.Context, name string) (time.Time, error) {
	var until *time.Time
	err := s.pool.QueryRow(ctx, `SELECT locked_until FROM login_failures WHERE name = $1`, name).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return val(until), err
}

// LoginFailed counts a failed login of name at now and returns how many
// there have been in a row: the count starts again when window has passed
// since the last failure and the end of the last lock.
func (s *Store) LoginFailed(ctx context.Context, name string, now time.Time, window time.Duration) (int, error) {
	var n int
	err := s.pool.QueryRow(ctx, `INSERT INTO login_failures AS f (name, failures, last_failure_at) VALUES ($1, 1, $2)
		ON CONFLICT (name) DO UPDATE SET
			failures = CASE WHEN greatest(f.last_failure_at, f.locked_until) < $2::timestamptz - $3::interval THEN 1 ELSE f.failures + 1 END,
			last_failure_at = $2
		RETURNING failures`, name, now, window).Scan(&n)
	return n, err
}

// LockLogin locks name's logins until until.
func (s *Store) LockLogin(ctx context.Context, name string, until time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE login_failures SET locked_until = greatest(locked_until, $2) WHERE name = $1`, name, until)
	return err
}

// LoginSucceeded forgets name's failed logins.
func (s *Store) LoginSucceeded(ctx context.Context, name string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE name = $1`, name)
	return err
}
